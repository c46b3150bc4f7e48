//! `run --init [--init-path PATH]`: a small init as the container's PID 1 that forwards
//! signals to the command and reaps orphaned zombies, as docker (tini as
//! `/sbin/docker-init`) and podman (catatonit) do.
//!
//! The init is a static binary found on the host (`--init-path`, else the first of
//! [`INIT_NAMES`] on the search path or in [`INIT_DIRS`]), bind-mounted read-only at
//! `berth_engine::setup::INIT_DEST` (docker's path) and prepended to the process's arguments with `--`: the
//! image needs nothing of its own, not even a libc.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The init binaries looked for, in order: all of them statically linked (Debian's `tini`
/// ships `tini-static`; docker's `docker-init` and podman's `catatonit` are static builds).
pub const INIT_NAMES: [&str; 3] = ["docker-init", "tini-static", "catatonit"];

/// Directories looked in besides the search path (docker's and podman's helper dirs).
pub const INIT_DIRS: [&str; 2] = ["/usr/libexec/docker", "/usr/libexec/podman"];

/// The init to run: `init_path` when given (it must be an executable file), else the first
/// of [`INIT_NAMES`] found in `search` or [`INIT_DIRS`].
pub fn find(init_path: Option<&Path>, search: &[PathBuf]) -> anyhow::Result<PathBuf> {
    if let Some(p) = init_path {
        if !is_executable(p) {
            anyhow::bail!(
                "--init-path {}: not an executable file\nhint: give a static init such as \
                 /usr/bin/tini-static (Debian's tini package)",
                p.display()
            );
        }
        return std::fs::canonicalize(p)
            .with_context(|| format!("--init-path {}: failed to resolve it", p.display()));
    }
    let dirs = search
        .iter()
        .cloned()
        .chain(INIT_DIRS.iter().map(PathBuf::from));
    for dir in dirs {
        for name in INIT_NAMES {
            let p = dir.join(name);
            if is_executable(&p) {
                return std::fs::canonicalize(&p)
                    .with_context(|| format!("failed to resolve the init {}", p.display()));
            }
        }
    }
    anyhow::bail!(
        "--init: no init found (looked for {} on the search path and in {})\nhint: install \
         Debian's tini package (/usr/bin/tini-static) or give a static init with --init-path PATH",
        INIT_NAMES.join(", "),
        INIT_DIRS.join(", ")
    )
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn the_first_executable_init_on_the_search_path_is_taken() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        // not executable: skipped
        berth_fsutil::atomic_write(a.join("docker-init"), b"x").unwrap();
        berth_fsutil::atomic_write(b.join("tini-static"), b"x").unwrap();
        std::fs::set_permissions(
            b.join("tini-static"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let found = find(None, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(found, b.join("tini-static").canonicalize().unwrap());
        let e = find(Some(&a.join("docker-init")), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("--init-path"), "{e:#}");
    }
}
