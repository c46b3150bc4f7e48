//! `berth exec [-d] [-i] [-t] [-e] [-u] [-w] CONTAINER CMD…`: a process in a running container, with
//! this command's stdio; exits with its status (`-d`: returns at once, the process runs on).

use anyhow::Context;
use berth_engine::{AttachStdio, ExecOptions};
use clap::Args;

use super::{DataArgs, Failure};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Set an environment variable (KEY=VALUE).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// The user (name or uid, optionally :group; names from the container's /etc/passwd).
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    user: Option<String>,
    /// The working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// Keep stdin open: this command's stdin is the process's.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-terminal (relayed to this command's terminal).
    #[arg(short = 't', long)]
    tty: bool,
    /// Detached: start the process and return at once; it runs on, its output going
    /// nowhere (as docker's).
    #[arg(short = 'd', long)]
    detach: bool,
    #[command(flatten)]
    data: DataArgs,
    /// The container (name, id or unique id prefix).
    container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn run(args: ExecArgs) -> Result<i32, Failure> {
    exec(args).map_err(Failure::run)
}

fn exec(args: ExecArgs) -> anyhow::Result<i32> {
    let engine = args.data.engine()?;
    // `-e KEY` takes KEY's value from this environment, as docker does; the engine adds
    // the variables to the container's own environment and resolves `-u NAME` inside it
    let host_env = crate::dirs::host_env();
    let env = args
        .env
        .iter()
        .map(|e| {
            if e.contains('=') {
                Ok(e.clone())
            } else {
                host_env
                    .get(e)
                    .map(|v| format!("{e}={v}"))
                    .with_context(|| format!("-e {e}: not set in this environment; give KEY=VALUE"))
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = ExecOptions {
        args: args.command.clone(),
        env,
        user: args.user.clone(),
        cwd: args.workdir.clone(),
        terminal: args.tty,
        stdin: args.interactive,
        detach: args.detach,
    };
    let io = AttachStdio::inherit(args.interactive).context("duplicating this command's stdio")?;
    engine
        .exec_with(&args.container, &opts, &io)
        .with_context(|| format!("failed to exec in container {}", args.container))
}
