//! `berth login REGISTRY`: check credentials against the registry, then store them in
//! docker's `config.json` (or its credential helper).

use std::io::Read;
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
    /// User name.
    #[arg(long, short)]
    username: String,
    /// Read the password (or token) from stdin.
    #[arg(long, required = true)]
    password_stdin: bool,
    #[command(flatten)]
    flags: RegistryFlags,
}

pub fn run(args: LoginArgs) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("failed to read the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        anyhow::bail!("the password read from stdin is empty");
    }
    let password = Secret::new(password);
    let registry = args
        .registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let credential = Credential::Basic {
        username: args.username.clone(),
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
        .login(registry, &args.username, &password)
        .with_context(|| {
            format!(
                "failed to store the credentials in {}",
                config.path.display()
            )
        })?;
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "login succeeded");
    Ok(())
}
