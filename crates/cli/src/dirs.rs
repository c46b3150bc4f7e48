//! Where berth keeps its data: `--data`, else `$XDG_DATA_HOME/berth`, else `/var/lib/berth`
//! for root, else `~/.local/share/berth`.

#![expect(
    clippy::disallowed_methods,
    reason = "binaries read the environment; libraries take configuration as arguments"
)]
use std::path::PathBuf;

pub fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = flag {
        return Ok(d);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("berth"));
    }
    if rustix::process::geteuid().is_root() {
        return Ok(PathBuf::from("/var/lib/berth"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/berth")),
        None => anyhow::bail!(
            "cannot choose a data directory: HOME and XDG_DATA_HOME are unset\nhint: pass --data DIR"
        ),
    }
}

/// Docker's client configuration: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".docker/config.json")),
        None => anyhow::bail!(
            "cannot find docker's config.json: HOME and DOCKER_CONFIG are unset\nhint: set DOCKER_CONFIG to a directory"
        ),
    }
}
