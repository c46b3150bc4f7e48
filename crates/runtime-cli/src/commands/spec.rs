//! `spec` (`--bundle`, `--rootless`): write runc's default config.json.

use std::path::PathBuf;

use crate::args::{Flag, Matches, UsageError};
use anyhow::Context;

pub const FLAGS: &[Flag] = &[
    Flag::value(
        "bundle",
        Some('b'),
        "path to the root of the bundle directory",
    ),
    Flag::bool(
        "rootless",
        None,
        "generate a configuration for a rootless container",
    ),
];

#[derive(Debug, PartialEq, Eq)]
pub struct SpecArgs {
    pub bundle: Option<PathBuf>,
    pub rootless: bool,
}

impl SpecArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        m.positionals("spec", 0, 0)?;
        Ok(SpecArgs {
            bundle: m.path("bundle"),
            rootless: m.flag("rootless"),
        })
    }
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
