//! `berth exec [-e] [-u] [-w] CONTAINER CMD…`: a process in a running container, with this
//! command's stdio; exits with its status.

use anyhow::Context;
use berth_engine::ExecOptions;
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
    /// Keep stdin open (not supported yet).
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-terminal (not supported yet).
    #[arg(short = 't', long)]
    tty: bool,
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
    if args.interactive || args.tty {
        anyhow::bail!("exec -i and -t are not supported yet: run without them");
    }
    let engine = args.data.engine()?;
    let rec = engine.inspect(&args.container)?;
    let user = match &args.user {
        None => None,
        Some(u) => {
            let root = rec
                .attachments
                .rootfs_mount
                .clone()
                .unwrap_or_else(|| rec.bundle.join("rootfs"));
            let r = berth_image::spec::resolve_user(&root, u, &rec.image)?;
            Some(format!("{}:{}", r.uid, r.gid))
        }
    };
    // the container's environment with -e on top, as docker passes it (crun's --env
    // replaces the process environment rather than adding to it)
    let mut env: Vec<String> = std::fs::read(rec.bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v["process"]["env"].as_array().map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();
    let host_env = crate::dirs::host_env();
    for e in &args.env {
        let kv = if e.contains('=') {
            e.clone()
        } else {
            let v = host_env
                .get(e)
                .with_context(|| format!("-e {e}: not set in this environment; give KEY=VALUE"))?;
            format!("{e}={v}")
        };
        let key = kv
            .split_once('=')
            .map_or(kv.as_str(), |(k, _)| k)
            .to_owned();
        env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
        env.push(kv);
    }
    let opts = ExecOptions {
        env,
        user,
        cwd: args.workdir.clone(),
    };
    engine
        .exec_with(&args.container, &args.command, &opts)
        .with_context(|| format!("failed to exec in container {}", args.container))
}
