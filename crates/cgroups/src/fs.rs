//! The seam between the cgroup code and the kernel, and the file helpers every controller uses.
//!
//! Every read, write, `mkdir`, `rmdir` and eBPF attachment goes through [`CgroupFs`]. On a real
//! host that is [`KernelFs`] (plain files under the cgroup mounts, `bpf(2)`); the unit tests use a
//! fake that lays out a tempdir like cgroupfs and records each write, so every controller is
//! tested without root. Values are written with `O_WRONLY|O_TRUNC` and never created: a file the
//! kernel does not offer is reported as missing, as runc does.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::CgroupError;
use super::v2::bpf::Program;

/// File operations on a cgroup filesystem (real or fake).
pub(crate) trait CgroupFs: fmt::Debug + Send + Sync {
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// One write(2) of `value` to an existing file.
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    /// `mkdir` (mode 0755); `AlreadyExists` when present.
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// `rmdir` of a cgroup directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Whether a file or directory exists.
    fn exists(&self, path: &Path) -> bool;
    /// The sub-directories (child cgroups) of a directory.
    fn subdirs(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    /// The names of the files (not directories) in a directory.
    fn files(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Load `program` as a `BPF_PROG_TYPE_CGROUP_DEVICE` program and attach it to the cgroup
    /// directory `dir` (cgroup v2), replacing the programs attached there before.
    fn attach_device_filter(&self, dir: &Path, program: &Program) -> Result<(), CgroupError>;
}

/// The real kernel: files under the cgroup mounts and `bpf(2)`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KernelFs;

impl CgroupFs for KernelFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        // cgroupfs takes one value per write(2): never split it.
        let written = file.write(value.as_bytes())?;
        if written != value.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write ({written} of {} bytes)", value.len()),
            ));
        }
        Ok(())
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new().mode(0o755).create(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.symlink_metadata().is_ok()
    }

    fn subdirs(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    fn files(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                files.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        files.sort();
        Ok(files)
    }

    fn attach_device_filter(&self, dir: &Path, program: &Program) -> Result<(), CgroupError> {
        super::v2::bpf::attach_device_filter(dir, program)
    }
}

/// Wait a little between two attempts at a kernel operation that is not done yet
/// (a freezing cgroup, a busy `rmdir`, a task not yet ready to move).
#[expect(
    clippy::disallowed_methods,
    reason = "bounded back-off between kernel retries; the kernel offers no event to wait on here"
)]
pub(crate) fn pause(duration: Duration) {
    std::thread::sleep(duration);
}

pub(crate) fn write(
    fs: &dyn CgroupFs,
    dir: &Path,
    file: &str,
    value: &str,
) -> Result<(), CgroupError> {
    let path = dir.join(file);
    fs.write(&path, value).map_err(|source| CgroupError::Write {
        path,
        value: value.to_owned(),
        source,
    })
}

pub(crate) fn read(fs: &dyn CgroupFs, dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs.read(&path)
        .map_err(|source| CgroupError::Read { path, source })
}

/// A file's content without surrounding whitespace.
pub(crate) fn read_trimmed(
    fs: &dyn CgroupFs,
    dir: &Path,
    file: &str,
) -> Result<String, CgroupError> {
    Ok(read(fs, dir, file)?.trim().to_owned())
}

/// A number as cgroupfs prints it: "max" is `u64::MAX`; negative values (kernel bugs in some
/// memory counters) are 0, as runc reads them.
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    let text = text.trim();
    if text == "max" {
        return Ok(u64::MAX);
    }
    if let Ok(value) = text.parse::<u64>() {
        return Ok(value);
    }
    if text.starts_with('-') && text[1..].bytes().all(|b| b.is_ascii_digit()) && text.len() > 1 {
        return Ok(0);
    }
    Err(CgroupError::Parse {
        path: path.to_owned(),
        reason: format!("{text:?} is not an unsigned number"),
    })
}

pub(crate) fn read_u64(fs: &dyn CgroupFs, dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let text = read(fs, dir, file)?;
    parse_u64(&dir.join(file), &text)
}

pub(crate) fn read_i64(fs: &dyn CgroupFs, dir: &Path, file: &str) -> Result<i64, CgroupError> {
    let text = read(fs, dir, file)?;
    let text = text.trim();
    if text == "max" {
        return Ok(i64::MAX);
    }
    text.parse().map_err(|_| CgroupError::Parse {
        path: dir.join(file),
        reason: format!("{text:?} is not a number"),
    })
}

/// `Ok(None)` when the file does not exist.
pub(crate) fn optional<T>(result: Result<T, CgroupError>) -> Result<Option<T>, CgroupError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// The "key value" lines of a flat-keyed file (memory.stat, cpu.stat, memory.events...).
pub(crate) fn parse_flat_keyed(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<String, u64>, CgroupError> {
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some((key, value)) = line.split_once(' ') else {
            return Err(CgroupError::Parse {
                path: path.to_owned(),
                reason: format!("line {line:?} is not in \"key value\" format"),
            });
        };
        if key.is_empty() {
            return Err(CgroupError::Parse {
                path: path.to_owned(),
                reason: format!("line {line:?} has no key"),
            });
        }
        map.insert(key.to_owned(), parse_u64(path, value)?);
    }
    Ok(map)
}

pub(crate) fn read_flat_keyed(
    fs: &dyn CgroupFs,
    dir: &Path,
    file: &str,
) -> Result<BTreeMap<String, u64>, CgroupError> {
    let text = read(fs, dir, file)?;
    parse_flat_keyed(&dir.join(file), &text)
}

/// The value of `key` in a flat-keyed file, 0 when the key is absent (as runc's `GetValueByKey`).
pub(crate) fn read_key(
    fs: &dyn CgroupFs,
    dir: &Path,
    file: &str,
    key: &str,
) -> Result<u64, CgroupError> {
    let text = read(fs, dir, file)?;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(' ')
            && k == key
        {
            return parse_u64(&dir.join(file), v);
        }
    }
    Ok(0)
}

/// Create `path` and any missing parents below `root` (which must exist). Returns the
/// directories created, top-down.
pub(crate) fn mkdir_all(
    fs: &dyn CgroupFs,
    root: &Path,
    path: &Path,
) -> Result<Vec<PathBuf>, CgroupError> {
    let relative = path
        .strip_prefix(root)
        .map_err(|_| CgroupError::InvalidState {
            reason: format!(
                "{} is not below the cgroup mount {}",
                path.display(),
                root.display()
            ),
        })?;
    let mut created = Vec::new();
    let mut current = root.to_path_buf();
    for component in relative.components() {
        current.push(component);
        match fs.create_dir(&current) {
            Ok(()) => created.push(current.clone()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::CreateDir {
                    path: current,
                    source,
                });
            }
        }
    }
    Ok(created)
}

/// Move `pid` into the cgroup `dir` (write it to `cgroup.procs`). A pid of -1 only checks
/// nothing and returns, as runc's `WriteCgroupProc`.
pub(crate) fn join(fs: &dyn CgroupFs, dir: &Path, pid: i32) -> Result<(), CgroupError> {
    if pid == -1 {
        return Ok(());
    }
    let path = dir.join("cgroup.procs");
    let value = pid.to_string();
    let mut attempt = 0;
    loop {
        match fs.write(&path, &value) {
            Ok(()) => return Ok(()),
            // EINVAL: the task may still be TASK_NEW (just forked); runc retries 5 times.
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) && attempt < 5 => {
                attempt += 1;
                pause(Duration::from_millis(30));
            }
            Err(source) => {
                return Err(CgroupError::Join {
                    pid,
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

/// The pids in `cgroup.procs` of one cgroup (`cgroup.threads` for a threaded cgroup).
pub(crate) fn read_procs(fs: &dyn CgroupFs, dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    let text = match fs.read(&path) {
        Ok(text) => text,
        Err(err) if err.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            read(fs, dir, "cgroup.threads")?
        }
        Err(source) => return Err(CgroupError::Read { path, source }),
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse::<i32>().map_err(|_| CgroupError::Parse {
                path: path.clone(),
                reason: format!("{l:?} is not a pid"),
            })
        })
        .collect()
}

/// Deepest cgroup tree walked (pids, removal): far beyond any real container.
const MAX_DEPTH: usize = 64;

/// All pids in `dir` and its descendants, sorted and without duplicates.
pub(crate) fn all_pids(fs: &dyn CgroupFs, dir: &Path) -> Result<Vec<i32>, CgroupError> {
    fn walk(
        fs: &dyn CgroupFs,
        dir: &Path,
        depth: usize,
        out: &mut Vec<i32>,
    ) -> Result<(), CgroupError> {
        out.extend(read_procs(fs, dir)?);
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        let subdirs = match fs.subdirs(dir) {
            Ok(subdirs) => subdirs,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(CgroupError::ReadDir {
                    path: dir.to_owned(),
                    source,
                });
            }
        };
        for sub in subdirs {
            match walk(fs, &sub, depth + 1, out) {
                // A child cgroup removed while we walk is fine.
                Err(err) if err.is_not_found() => {}
                other => other?,
            }
        }
        Ok(())
    }
    let mut pids = Vec::new();
    walk(fs, dir, 0, &mut pids)?;
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// How long `rmdir` retries EBUSY (processes still exiting) over one removal, about runc's
/// 10 doubling retries from 1 ms.
pub(crate) const REMOVE_BUSY_BUDGET: Duration = Duration::from_secs(1);

/// `rmdir` with retries on EBUSY until `deadline` (None: no retry), as runc's `rmdir`.
fn rmdir(fs: &dyn CgroupFs, path: &Path, deadline: Option<Instant>) -> Result<(), CgroupError> {
    let mut delay = Duration::from_millis(1);
    for _ in 0..1000 {
        match fs.remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err)
                if err.raw_os_error() == Some(libc::EBUSY)
                    && deadline.is_some_and(|d| Instant::now() + delay < d) =>
            {
                pause(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(CgroupError::RemoveDir {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    }
    Err(CgroupError::RemoveDir {
        path: path.to_owned(),
        source: io::Error::from_raw_os_error(libc::EINTR),
    })
}

/// Remove a cgroup directory and its child cgroups, bottom-up; fine when already gone. EBUSY
/// is retried until `deadline`.
pub(crate) fn remove_path(
    fs: &dyn CgroupFs,
    path: &Path,
    deadline: Instant,
) -> Result<(), CgroupError> {
    fn remove(
        fs: &dyn CgroupFs,
        path: &Path,
        depth: usize,
        deadline: Instant,
    ) -> Result<(), CgroupError> {
        if rmdir(fs, path, None).is_ok() {
            return Ok(());
        }
        let subdirs = match fs.subdirs(path) {
            Ok(subdirs) => subdirs,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(CgroupError::ReadDir {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if depth < MAX_DEPTH {
            for sub in subdirs {
                remove(fs, &sub, depth + 1, deadline)?;
            }
        }
        rmdir(fs, path, Some(deadline))
    }
    remove(fs, path, 0, deadline)
}
