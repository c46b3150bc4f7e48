//! `berth logout REGISTRY`: forget the stored credentials of a registry.

use anyhow::Context;
use berth_distribution::CredentialsConfig;
use clap::Args;

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry host.
    registry: String,
}

pub fn run(args: LogoutArgs) -> anyhow::Result<()> {
    let config = CredentialsConfig::new(crate::dirs::docker_config()?);
    let removed = config
        .logout(&args.registry)
        .with_context(|| format!("failed to update {}", config.path.display()))?;
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    if removed {
        let _ = writeln!(err, "removed the credentials for {}", args.registry);
    } else {
        let _ = writeln!(err, "not logged in to {}", args.registry);
    }
    Ok(())
}
