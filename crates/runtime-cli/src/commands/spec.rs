//! `spec` (`--bundle`, `--rootless`, `--runc-compat`): write a default config.json, locked
//! down (Docker's seccomp profile, no new privileges, few capabilities, masked paths), or
//! with `--runc-compat` runc's own, byte for byte.

use std::path::PathBuf;

use crate::args::{Flag, Matches, UsageError};
use anyhow::Context;
use berth_runtime_spec::defaults::{self, Flavor};

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
    Flag::bool(
        "runc-compat",
        None,
        "write runc's default configuration byte for byte (no seccomp profile) instead of \
         berth's locked-down one",
    ),
];

#[derive(Debug, PartialEq, Eq)]
pub struct SpecArgs {
    pub bundle: Option<PathBuf>,
    pub rootless: bool,
    pub runc_compat: bool,
}

impl SpecArgs {
    pub fn from_matches(m: &Matches) -> Result<Self, UsageError> {
        m.positionals("spec", 0, 0)?;
        Ok(SpecArgs {
            bundle: m.path("bundle"),
            rootless: m.flag("rootless"),
            runc_compat: m.flag("runc-compat"),
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
        berth_cgroups::detect_mode(),
        Ok(berth_cgroups::CgroupMode::Unified)
    );
    let flavor = if a.runc_compat {
        Flavor::RuncCompat
    } else {
        Flavor::Locked
    };
    let text = defaults::to_json(&defaults::spec(flavor, ids, v2))
        .context("failed to serialize the default config")?;
    berth_fsutil::atomic_write(&path, text.as_bytes())
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(0)
}
