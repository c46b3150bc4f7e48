//! seccomp: OCI `linux.seccomp` compiled to a classic BPF filter and loaded.
//!
//! STAND-IN for the agreed contract, replaced wholesale by the real compiler: any
//! `linux.seccomp` section is refused with a clear error.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use berth_oci::oci_spec::runtime::LinuxSeccomp;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profiles are not yet supported by this build")]
    Unsupported,
}

/// A compiled filter, ready to load.
#[derive(Debug)]
pub struct Filter {
    len: usize,
}

impl Filter {
    /// Load the filter into the calling thread; the notify listener when it uses NOTIFY.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        Err(SeccompError::Unsupported)
    }
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Whether a rule uses SCMP_ACT_NOTIFY.
    pub fn uses_notify(&self) -> bool {
        false
    }
}

/// Compile the config's profile.
pub fn compile(_config: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    Err(SeccompError::Unsupported)
}

/// Send the notify listener fd and the container state to `listenerPath`.
pub fn send_listener(
    _listener_path: &Path,
    _listener: BorrowedFd<'_>,
    _state_json: &[u8],
) -> Result<(), SeccompError> {
    Err(SeccompError::Unsupported)
}

/// The runtime-spec features "linux.seccomp" object.
#[derive(Debug, Clone, Serialize)]
pub struct SeccompFeatures {
    pub enabled: bool,
}

/// What this build's seccomp support can do.
pub fn features() -> SeccompFeatures {
    SeccompFeatures { enabled: false }
}
