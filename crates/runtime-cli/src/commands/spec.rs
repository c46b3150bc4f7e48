//! `spec` (`--bundle`, `--rootless`): write runc's default config.json.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// path to the root of the bundle directory
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
    /// generate a configuration for a rootless container
    #[arg(long)]
    pub rootless: bool,
}

pub fn run(a: SpecArgs) -> anyhow::Result<u8> {
    let dir = a.bundle.unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("config.json");
    if path.exists() {
        anyhow::bail!("File {} exists. Remove it first", path.display());
    }
    let ids = a.rootless.then(|| {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    });
    let v2 = matches!(
        berth_container::cgroups::detect_mode(),
        Ok(berth_container::cgroups::CgroupMode::Unified)
    );
    let text = berth_container::default_spec::default_spec(ids, v2);
    berth_fsutil::atomic_write(&path, text.as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(0)
}
