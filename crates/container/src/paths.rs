//! On-disk layout of the runtime state. The only place that builds these paths.
//!
//! ```text
//! <root>/                 --root (default /run/berth-runtime), 0700
//!   <id>/                 one container, 0700; flock(2)ed by every command that changes it
//!     state.json          State (layout version STATE_VERSION), written atomically
//!     exec.fifo           exists while the container is "created": its init blocks opening
//!                         it for writing; `start` opens it for reading and removes it
//! ```

use std::path::{Path, PathBuf};

/// Version of the state.json layout.
pub(crate) const STATE_VERSION: u32 = 1;
/// The default `--root`.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

pub(crate) fn container_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

pub(crate) fn state_file(root: &Path, id: &str) -> PathBuf {
    root.join(id).join("state.json")
}

pub fn exec_fifo(root: &Path, id: &str) -> PathBuf {
    root.join(id).join("exec.fifo")
}
