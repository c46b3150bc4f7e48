//! What failed in the CNI runtime side, on what.

use std::path::PathBuf;
use std::time::Duration;

use berth_errdefs::ErrorKind;

/// The error JSON a plugin prints when it fails (SPEC.md, "Error"): a well-known `code`
/// (0–99, e.g. 7 invalid network config, 11 try again later) or a plugin's own (100+), a
/// short `msg` and longer `details`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct PluginError {
    #[serde(default)]
    pub code: u32,
    #[serde(default)]
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

/// A failure of the CNI runtime side.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("failed to read the CNI network configuration {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A configuration is unusable: `origin` is the file (or `<bytes>`), `field` the JSON
    /// path of what is wrong (`plugins[1].type`).
    #[error("invalid CNI network configuration {origin}: {field}: {reason}")]
    InvalidConfig {
        origin: String,
        field: String,
        reason: String,
    },
    #[error(
        "no CNI network named {name:?} in {dirs:?}{}\nhint: `berth network ls` lists the networks; a network is a .conflist (or .conf) file in one of these directories",
        broken_note(.broken)
    )]
    NetworkNotFound {
        name: String,
        dirs: Vec<PathBuf>,
        /// Files that could not be read or parsed, with why: one of them may be the network.
        broken: Vec<String>,
    },
    /// An attachment parameter (container id, interface name, network name) the spec does
    /// not allow.
    #[error("invalid CNI {what} {value:?}: {reason}")]
    InvalidParameter {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error(
        "CNI plugin {plugin:?} of network {network:?} is not in the plugin directories {dirs:?}\nhint: install the plugins (Debian: containernetworking-plugins, in /usr/lib/cni) or add their directory to the CNI path"
    )]
    PluginNotFound {
        network: String,
        plugin: String,
        dirs: Vec<PathBuf>,
    },
    #[error("failed to run CNI plugin {path} ({command})")]
    Spawn {
        path: PathBuf,
        command: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "CNI plugin {plugin} ({command}) on network {network:?} did not finish within {timeout:?}; it was killed{}",
        stderr_note(.stderr)
    )]
    Timeout {
        network: String,
        plugin: String,
        command: &'static str,
        timeout: Duration,
        stderr: String,
    },
    /// The plugin failed and said why in its error JSON.
    #[error(
        "CNI plugin {plugin} failed {command} on network {network:?}: code {}: {}{}{}",
        .error.code, .error.msg, details_note(&.error.details), stderr_note(.stderr)
    )]
    Plugin {
        network: String,
        plugin: String,
        command: &'static str,
        error: Box<PluginError>,
        stderr: String,
    },
    /// The plugin failed without a usable error JSON.
    #[error(
        "CNI plugin {plugin} failed {command} on network {network:?} ({status}){}",
        output_note("output", .output)
    )]
    PluginFailed {
        network: String,
        plugin: String,
        command: &'static str,
        status: String,
        /// What it printed: stdout, then stderr.
        output: String,
    },
    /// The plugin succeeded but its output is not what the spec says it prints.
    #[error(
        "CNI plugin {plugin} ({command}) on network {network:?} printed an unusable result: {reason}{}",
        output_note("stdout", .stdout)
    )]
    BadOutput {
        network: String,
        plugin: String,
        command: &'static str,
        reason: String,
        stdout: String,
    },
    #[error(
        "network {network:?} asks for CNI version {wanted}, which plugin {plugin} does not support (it supports {supported:?})\nhint: set the network's \"cniVersion\" to one of these, or add one to its \"cniVersions\""
    )]
    VersionUnsupported {
        network: String,
        wanted: String,
        plugin: String,
        supported: Vec<String>,
    },
    #[error(
        "network {network:?} uses CNI version {version}, which has no {command} (CHECK needs 0.4.0, GC and STATUS 1.1.0)"
    )]
    CommandUnsupported {
        network: String,
        version: String,
        command: &'static str,
    },
    #[error(
        "no cached ADD result for container {container_id} on network {network:?} ({ifname}) in {path}: CHECK needs the result of the ADD\nhint: the container was never attached, or was already detached"
    )]
    NotAttached {
        network: String,
        container_id: String,
        ifname: String,
        path: PathBuf,
    },
    #[error("failed to read the CNI result cache {path}")]
    ReadCache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the CNI result cache {path} is corrupt: {reason}\nhint: remove it once the container's networking was cleaned up by hand"
    )]
    CorruptCache { path: PathBuf, reason: String },
    #[error("failed to write the CNI result cache")]
    WriteCache {
        #[source]
        source: berth_fsutil::FsError,
    },
    #[error("failed to remove the CNI result cache {path}")]
    RemoveCache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// ADD failed, and so did the DEL that was to undo what it had done: resources may be left.
    #[error(
        "{add}; undoing it with DEL failed too, so resources may be left behind\nhint: retry the removal (`berth rm`), which runs DEL from the result cache"
    )]
    RollbackFailed {
        add: Box<CniError>,
        #[source]
        source: Box<CniError>,
    },
    /// [`crate::Cni::readd`] of a plugin that is not the list's last one, or not in it.
    #[error(
        "network {network:?} does not end with a {plugin} plugin: only the last plugin of a list can be re-run on a live attachment (a plugin earlier in the chain would need every later one re-run)"
    )]
    NotLastPlugin { network: String, plugin: String },
    /// The caller's step between DEL and ADD of [`crate::Cni::readd`] failed.
    #[error("failed to prepare network {network:?} for re-adding plugin {plugin}: {reason}")]
    Prepare {
        network: String,
        plugin: String,
        reason: String,
    },
    /// GC went on past failures; these are all of them.
    #[error("CNI GC of network {network:?} had {} failure(s): {}", .errors.len(), join_errors(.errors))]
    Gc {
        network: String,
        errors: Vec<CniError>,
    },
}

fn broken_note(broken: &[String]) -> String {
    if broken.is_empty() {
        String::new()
    } else {
        format!(
            "; {} file(s) could not be read: {}",
            broken.len(),
            broken.join("; ")
        )
    }
}

fn details_note(details: &str) -> String {
    if details.is_empty() {
        String::new()
    } else {
        format!(" ({details})")
    }
}

fn stderr_note(stderr: &str) -> String {
    output_note("stderr", stderr)
}

fn output_note(what: &str, s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return String::new();
    }
    const MAX: usize = 2000;
    let cut = if s.len() > MAX {
        let mut end = MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_owned()
    };
    format!("; its {what}: {cut}")
}

fn join_errors(errors: &[CniError]) -> String {
    errors
        .iter()
        .map(|e| berth_errdefs::error_chain(e))
        .collect::<Vec<_>>()
        .join("; ")
}

impl CniError {
    /// The class of the failure (containerd's errdefs).
    pub fn kind(&self) -> ErrorKind {
        match self {
            CniError::ReadConfig { source, .. } | CniError::ReadCache { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ErrorKind::NotFound
            }
            CniError::NetworkNotFound { .. }
            | CniError::PluginNotFound { .. }
            | CniError::NotAttached { .. } => ErrorKind::NotFound,
            CniError::InvalidConfig { .. }
            | CniError::InvalidParameter { .. }
            | CniError::VersionUnsupported { .. }
            | CniError::CommandUnsupported { .. }
            | CniError::NotLastPlugin { .. } => ErrorKind::InvalidInput,
            CniError::Plugin { error, .. } => match error.code {
                1 | 2 | 4 | 6 | 7 => ErrorKind::InvalidInput,
                3 => ErrorKind::NotFound,
                11 | 50 | 51 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            CniError::Timeout { .. } => ErrorKind::Unavailable,
            CniError::RollbackFailed { add, .. } => add.kind(),
            _ => ErrorKind::Internal,
        }
    }

    /// The plugin's own error JSON, when a plugin failed and printed one.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match self {
            CniError::Plugin { error, .. } => Some(&**error),
            CniError::RollbackFailed { add, .. } => add.plugin_error(),
            _ => None,
        }
    }
}

pub type Result<T, E = CniError> = std::result::Result<T, E>;
