//! The one seam that reads a process' files: the executed file's content hash, its working
//! directory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_oci::{Algorithm, Digest, Digester};
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::containers::Container;
use crate::event::{Exec, FileOrigin};

/// An executed file's content hash and how it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedFile {
    pub sha256: Digest,
    pub size: u64,
    /// `root` (the path through the process' root), `exe` (`/proc/PID/exe`), `upperdir` or
    /// `init_root` (the path through the container init's root).
    pub via: &'static str,
    /// The hash was known: the same inode, unchanged since (size, mtime and ctime), was
    /// hashed before.
    pub cached: bool,
}

/// Why an executed file could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    #[error(
        "the file process {pid} executed ({filename}) could not be opened as the same inode {ino} (it exited, or the file was replaced)"
    )]
    Gone {
        pid: u32,
        filename: String,
        ino: u64,
    },
    #[error("{filename} is {size} bytes, over the limit of {limit} for hashing an executed file")]
    TooLarge {
        filename: String,
        size: u64,
        limit: u64,
    },
    #[error("{filename}, executed by process {pid}, is no longer a regular file")]
    NotAFile { pid: u32, filename: String },
    #[error("failed to read {filename} executed by process {pid}")]
    Read {
        pid: u32,
        filename: String,
        #[source]
        source: io::Error,
    },
}

/// The seam that reads a process' files.
pub trait ProcessFiles {
    /// The content hash of the file the kernel executed (same inode as the event's): for an
    /// [`Exec::interpreted`] one, the interpreter.
    fn hash_executed(&self, exec: &Exec, container: &Container) -> Result<HashedFile, HashError>;
    /// The content hash of the script (or binfmt_misc file) an interpreted exec ran, found by
    /// its path: the event has no inode of it.
    fn hash_script(&self, exec: &Exec, container: &Container) -> Result<HashedFile, HashError>;
    /// The process' working directory, as a path inside its root, when readable.
    fn cwd(&self, pid: u32) -> Option<String>;
}

/// [`ProcessFiles`] through procfs: the file is opened once, in the process' root
/// (`openat2(RESOLVE_IN_ROOT)` on `/proc/PID/root`, so its symlinks resolve as the process
/// sees them), else `/proc/PID/exe`, else (an upper-layer file of a process that has
/// exited) in the container's upper directory, else (a process that has exited, in the
/// container init's mount namespace) in the init's root; checked to be the executed inode
/// (and device), and read up to `max_bytes`. Hashes are kept per inode while its size, mtime and ctime stay the
/// same (a write or a chmod changes its ctime), up to [`HASH_CACHE_ENTRIES`] files: a
/// binary a container runs again and again is read once.
#[derive(Debug, Clone)]
pub struct ProcFiles {
    pub proc: PathBuf,
    pub max_bytes: u64,
    cache: Arc<Mutex<HashMap<FileKey, (Digest, u64)>>>,
}

/// How many file hashes [`ProcFiles`] keeps (the cache is emptied when it is full).
pub const HASH_CACHE_ENTRIES: usize = 4096;

/// `st_dev` as one number.
#[allow(
    clippy::useless_conversion,
    reason = "the stat fields' integer types differ between architectures"
)]
fn dev_of(st: &rustix::fs::Stat) -> u64 {
    u64::from(st.st_dev)
}

/// An inode and the times that change when its content or metadata does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i128, i128),
    ctime: (i128, i128),
}

impl ProcFiles {
    /// `/proc`, executables up to 1 GiB.
    pub fn new(proc: &Path) -> ProcFiles {
        ProcFiles {
            proc: proc.to_owned(),
            max_bytes: 1 << 30,
            cache: Arc::default(),
        }
    }

    fn open_in(dir: &Path, path: &str) -> io::Result<OwnedFd> {
        let d = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(rustix::fs::openat2(
            &d,
            path.trim_start_matches('/'),
            // O_NONBLOCK: a FIFO put where the executed file was must not hang the watcher
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )?)
    }

    /// `exec.filename` opened in the process' root (or its working directory, for a
    /// relative one).
    fn by_path(&self, exec: &Exec) -> io::Result<OwnedFd> {
        let pid_dir = self.proc.join(exec.pid.to_string());
        if exec.filename.starts_with('/') {
            ProcFiles::open_in(&pid_dir.join("root"), &exec.filename)
        } else {
            ProcFiles::open_in(&pid_dir.join("cwd"), &exec.filename)
        }
    }

    /// `exec.filename` (absolute) opened in the root of the container's init, if the exec
    /// ran in the init's mount namespace: where a process that has exited found its file.
    fn in_init_root(&self, exec: &Exec, container: &Container) -> Option<OwnedFd> {
        let same_ns = exec.mnt_ns != 0 && container.mnt_ns == Some(exec.mnt_ns);
        if !same_ns || !exec.filename.starts_with('/') || container.pid == 0 {
            return None;
        }
        let root = self.proc.join(container.pid.to_string()).join("root");
        ProcFiles::open_in(&root, &exec.filename).ok()
    }

    fn hash_fd(
        &self,
        fd: OwnedFd,
        exec: &Exec,
        via: &'static str,
    ) -> Result<HashedFile, HashError> {
        let read_err = |source| HashError::Read {
            pid: exec.pid,
            filename: exec.filename.clone(),
            source,
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| read_err(e.into()))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(HashError::NotAFile {
                pid: exec.pid,
                filename: exec.filename.clone(),
            });
        }
        let size = u64::try_from(st.st_size).unwrap_or(0);
        if size > self.max_bytes {
            return Err(HashError::TooLarge {
                filename: exec.filename.clone(),
                size,
                limit: self.max_bytes,
            });
        }
        #[allow(
            clippy::useless_conversion,
            reason = "the stat fields' integer types differ between architectures"
        )]
        let key = FileKey {
            dev: u64::from(st.st_dev),
            ino: u64::from(st.st_ino),
            size: i64::from(st.st_size),
            mtime: (i128::from(st.st_mtime), i128::from(st.st_mtime_nsec)),
            ctime: (i128::from(st.st_ctime), i128::from(st.st_ctime_nsec)),
        };
        if let Some((sha256, size)) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(HashedFile {
                sha256,
                size,
                via,
                cached: true,
            });
        }
        let mut d = Digester::new(Algorithm::Sha256);
        let mut f = File::from(fd).take(self.max_bytes);
        io::copy(&mut f, &mut d).map_err(read_err)?;
        let size = d.bytes_hashed();
        let sha256 = d.finalize();
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= HASH_CACHE_ENTRIES {
                c.clear();
            }
            c.insert(key, (sha256.clone(), size));
        }
        Ok(HashedFile {
            sha256,
            size,
            via,
            cached: false,
        })
    }
}

impl ProcessFiles for ProcFiles {
    fn hash_executed(&self, exec: &Exec, container: &Container) -> Result<HashedFile, HashError> {
        let pid_dir = self.proc.join(exec.pid.to_string());
        // the executed inode (any regular file when the event has none)
        let same = |fd: &OwnedFd| {
            rustix::fs::fstat(fd).is_ok_and(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
                    && (exec.ino == 0 || st.st_ino == exec.ino)
            })
        };
        // an interpreted exec's filename is the script's, not the executed file's
        if !exec.interpreted
            && let Ok(fd) = self.by_path(exec)
            && same(&fd)
        {
            return self.hash_fd(fd, exec, "root");
        }
        if let Ok(fd) = rustix::fs::open(
            pid_dir.join("exe"),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) && same(&fd)
        {
            return self.hash_fd(fd, exec, "exe");
        }
        if exec.origin == FileOrigin::Upper
            && !exec.interpreted
            && exec.filename.starts_with('/')
            && let Some(upper) = container.overlay.as_ref().and_then(|o| o.upper.as_ref())
            && let Ok(fd) = ProcFiles::open_in(upper, &exec.filename)
        {
            // the upper directory's inode is not the overlay's: no inode check here
            return self.hash_fd(fd, exec, "upperdir");
        }
        // the process has exited (`echo` is gone in a millisecond): the same path in the
        // container init's root, when the process ran in the init's mount namespace and the
        // inode there is the one executed (a plain-directory root has no upper directory)
        if !exec.interpreted
            && let Some(fd) = self.in_init_root(exec, container)
            && same(&fd)
            && (exec.dev == 0 || rustix::fs::fstat(&fd).is_ok_and(|st| dev_of(&st) == exec.dev))
        {
            return self.hash_fd(fd, exec, "init_root");
        }
        Err(HashError::Gone {
            pid: exec.pid,
            filename: exec.filename.clone(),
            ino: exec.ino,
        })
    }

    fn hash_script(&self, exec: &Exec, container: &Container) -> Result<HashedFile, HashError> {
        let regular = |fd: &OwnedFd| {
            rustix::fs::fstat(fd).is_ok_and(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
            })
        };
        if let Ok(fd) = self.by_path(exec)
            && regular(&fd)
        {
            return self.hash_fd(fd, exec, "root");
        }
        // the process has exited (or changed root): a script in the upper layer is still there
        if exec.filename.starts_with('/')
            && let Some(upper) = container.overlay.as_ref().and_then(|o| o.upper.as_ref())
            && let Ok(fd) = ProcFiles::open_in(upper, &exec.filename)
            && regular(&fd)
        {
            return self.hash_fd(fd, exec, "upperdir");
        }
        if let Some(fd) = self.in_init_root(exec, container)
            && regular(&fd)
        {
            return self.hash_fd(fd, exec, "init_root");
        }
        Err(HashError::Gone {
            pid: exec.pid,
            filename: exec.filename.clone(),
            ino: 0,
        })
    }

    fn cwd(&self, pid: u32) -> Option<String> {
        let link = std::fs::read_link(self.proc.join(pid.to_string()).join("cwd")).ok()?;
        Some(link.to_string_lossy().into_owned())
    }
}
