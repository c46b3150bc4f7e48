//! `berth login REGISTRY`: check credentials against the registry, then store them in
//! docker's `config.json` (or its credential helper). As `docker login`: the user name and
//! password are prompted for on a terminal (the password without echo), read with
//! `--password-stdin` in scripts, and refused from a non-terminal otherwise.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::Arc;

use anyhow::Context;
use berth_distribution::{
    Client, ClientOptions, Credential, CredentialsConfig, PlainHttp, Secret, StaticCredentials,
};
use clap::Args;

use super::image::RegistryFlags;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry host (`ghcr.io`, `127.0.0.1:5000`; `docker.io` for Docker Hub).
    registry: String,
    /// User name (prompted for on a terminal when missing).
    #[arg(long, short)]
    username: Option<String>,
    /// The password or token; visible to other users in the process list: prefer
    /// --password-stdin or the prompt.
    #[arg(long, short, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password (or token) from stdin.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    #[command(flatten)]
    flags: RegistryFlags,
}

pub fn run(args: LoginArgs) -> anyhow::Result<()> {
    let (username, password) = credentials(&args)?;
    let password = Secret::new(password.as_str());
    let registry = args
        .registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let credential = Credential::Basic {
        username: username.clone(),
        password: password.clone(),
    };
    let client = Client::new(ClientOptions {
        credentials: Some(Arc::new(
            StaticCredentials::new().with(registry, credential),
        )),
        plain_http: if args.flags.plain_http {
            PlainHttp::Always
        } else {
            PlainHttp::Auto
        },
        insecure_skip_verify: args.flags.insecure,
        ..ClientOptions::default()
    })
    .context("failed to set up the registry client")?;
    super::image::runtime()?
        .block_on(client.ping(registry))
        .with_context(|| format!("login to {registry} failed"))?;
    let config = CredentialsConfig::new(crate::dirs::docker_config()?);
    config
        .login(registry, &username, &password)
        .with_context(|| {
            format!(
                "failed to store the credentials in {}",
                config.path.display()
            )
        })?;
    let _ = writeln!(std::io::stderr().lock(), "login succeeded");
    Ok(())
}

/// The user name and password, from the flags, stdin, or prompts on the terminal.
fn credentials(args: &LoginArgs) -> anyhow::Result<(String, String)> {
    if args.password_stdin {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .context("failed to read the password from stdin")?;
        let password = password.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            anyhow::bail!("the password read from stdin is empty");
        }
        let username = args.username.clone().unwrap_or_default();
        return Ok((username, password));
    }
    if let (Some(u), Some(p)) = (&args.username, &args.password) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "warning: a password on the command line is visible to other users; use --password-stdin"
        );
        return Ok((u.clone(), p.clone()));
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        anyhow::bail!(
            "cannot prompt for credentials: stdin is not a terminal\nhint: pipe the password into `berth login --username USER --password-stdin {}`",
            args.registry
        );
    }
    let username = match &args.username {
        Some(u) => u.clone(),
        None => {
            let u = prompt("Username: ", true)?;
            if u.is_empty() {
                anyhow::bail!("no user name given");
            }
            u
        }
    };
    let password = match &args.password {
        Some(p) => p.clone(),
        None => prompt("Password: ", false)?,
    };
    if password.is_empty() {
        anyhow::bail!("no password given");
    }
    Ok((username, password))
}

/// Ask on stderr, read one line from the terminal on stdin; without echo unless `echo`.
fn prompt(question: &str, echo: bool) -> anyhow::Result<String> {
    // echo off before the question, as getpass(3): what is typed once the prompt shows (or
    // ahead of it) is never echoed
    let _restore = if echo {
        None
    } else {
        Some(EchoOff::new().context("failed to turn off the terminal's echo")?)
    };
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let stdin = std::io::stdin();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("failed to read from the terminal")?;
    if !echo {
        let _ = writeln!(err);
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Turns the echo of the terminal on stdin off until dropped.
struct EchoOff {
    saved: rustix::termios::Termios,
}

impl EchoOff {
    fn new() -> std::io::Result<EchoOff> {
        let fd = rustix::stdio::stdin();
        let saved = rustix::termios::tcgetattr(fd)?;
        let mut quiet = saved.clone();
        quiet.local_modes &= !rustix::termios::LocalModes::ECHO;
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &quiet)?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            rustix::stdio::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}
