//! `flock(2)` guards: the store's and the snapshotter's locks.
//!
//! A lock belongs to an open file description, so every acquisition opens the lock file
//! afresh: two threads of one process sharing a `Store` exclude each other exactly as two
//! processes do. The lock is released when the guard (and with it the file) is dropped, also
//! when the process dies.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::FlockOperation;

/// A held `flock`; dropping it unlocks.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Wait for a shared lock on `path` (created if missing).
    pub fn shared(path: &Path) -> io::Result<FileLock> {
        Self::blocking(path, FlockOperation::LockShared)
    }

    /// Wait for an exclusive lock on `path` (created if missing).
    pub fn exclusive(path: &Path) -> io::Result<FileLock> {
        Self::blocking(path, FlockOperation::LockExclusive)
    }

    fn blocking(path: &Path, op: FlockOperation) -> io::Result<FileLock> {
        let file = open_lock_file(path)?;
        loop {
            match rustix::fs::flock(&file, op) {
                Ok(()) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(FileLock { _file: file })
    }

    /// Try to take an exclusive lock on `path`, a lock file that its owner deletes (with its
    /// directory) when done. Returns `Ok(None)` when someone else holds it.
    ///
    /// Because the file can be unlinked while we wait to lock it, a lock is only kept once
    /// `path` still names the very inode that was locked; otherwise it is retried.
    /// `prepare` is called before each attempt to (re)create the parent directory.
    pub fn try_exclusive_unlinkable(
        path: &Path,
        mut prepare: impl FnMut() -> io::Result<()>,
    ) -> io::Result<Option<FileLock>> {
        const ATTEMPTS: usize = 16;
        let mut last = io::Error::other("lock file kept being replaced");
        for _ in 0..ATTEMPTS {
            prepare()?;
            let file = match open_lock_file(path) {
                Ok(f) => f,
                // the directory was removed between prepare and open: try again
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    last = e;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let held = file.metadata()?;
            match std::fs::metadata(path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(Some(FileLock { _file: file }));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_within_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let held = FileLock::exclusive(&p).unwrap();
        assert!(
            FileLock::try_exclusive_unlinkable(&p, || Ok(()))
                .unwrap()
                .is_none()
        );
        drop(held);
        assert!(
            FileLock::try_exclusive_unlinkable(&p, || Ok(()))
                .unwrap()
                .is_some()
        );
        // shared locks coexist
        let _a = FileLock::shared(&p).unwrap();
        let _b = FileLock::shared(&p).unwrap();
    }
}
