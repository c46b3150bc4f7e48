//! Events as the kernel side reports them, decoded from the ring buffer. Every event carries
//! the cgroup v2 id of the task (`bpf_get_current_cgroup_id()`: the inode number of its
//! directory in the cgroup2 hierarchy, `/sys/fs/cgroup/…` on a unified host,
//! `/sys/fs/cgroup/unified/…` on a hybrid one), which is how it is attributed to a container.

use std::net::SocketAddr;

use serde::Serialize;

/// Where an executed file comes from, as the kernel saw it at exec time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOrigin {
    /// An overlayfs file with no upper dentry: as the image's layers shipped it.
    Lower,
    /// An overlayfs file present in the upper (writable) layer: written or copied up in the
    /// container.
    Upper,
    /// Not on overlayfs (a bind mount, a tmpfs, the host's root for a bundle without layers).
    NotOverlay,
}

/// A successful `execve`/`execveat` (the `sched_process_exec` tracepoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exec {
    pub cgroup_id: u64,
    /// Thread-group id (the process id as user space sees it, in the initial pid namespace).
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    /// Nanoseconds since boot (`bpf_ktime_get_boot_ns`).
    pub boot_ns: u64,
    /// The path the program was executed by (the tracepoint's `filename`), as the process
    /// named it, relative to its root.
    pub filename: String,
    /// The arguments, cut to the probe's bound; `argv_truncated` when some were cut.
    pub argv: Vec<String>,
    pub argv_truncated: bool,
    /// The program is a script (`#!`) or a binfmt_misc format run by an interpreter: then
    /// `ino`, `dev` and `origin` are the interpreter's file (the kernel has closed the
    /// script's by the time the probe runs), `filename` is the script's path as executed, and
    /// `argv` is what the interpreter gets (its path, the script's, the arguments). Whoever
    /// judges drift must look the script up by `filename` (in the process' root and working
    /// directory) to know where it came from.
    pub interpreted: bool,
    /// The executed file's inode number and device (`st_ino`, `st_dev` as user space sees
    /// them through the container's mount).
    pub ino: u64,
    pub dev: u64,
    pub origin: FileOrigin,
    /// The inode number of the mount namespace the program runs in (`st_ino` of
    /// `/proc/PID/ns/mnt`); 0 when the kernel side could not tell.
    pub mnt_ns: u64,
    /// How deep the process' pid namespace is (0: the initial one).
    pub pid_ns_level: u32,
}

/// An `openat`/`openat2`/`open`/`creat` for writing (`O_WRONLY`, `O_RDWR`, `O_CREAT` or `O_TRUNC`)
/// of a path under one of the configured prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenWrite {
    pub cgroup_id: u64,
    pub pid: u32,
    pub uid: u32,
    pub boot_ns: u64,
    /// The path as passed to the call (relative paths are relative to the process' cwd or
    /// the directory descriptor, and reported as given).
    pub path: String,
    pub flags: u32,
}

/// An outbound `connect` of an IPv4 or IPv6 socket (`cgroup/connect4`, `cgroup/connect6`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connect {
    pub cgroup_id: u64,
    pub pid: u32,
    pub uid: u32,
    pub boot_ns: u64,
    pub destination: SocketAddr,
    /// `true` for TCP (`SOCK_STREAM`), `false` for UDP.
    pub stream: bool,
    /// The connect was refused with `EPERM` by the enforcement map.
    pub blocked: bool,
}

/// A `bind(2)` to a port (not 0: an ephemeral port a client asks for is not reported): where
/// the process will listen (TCP) or receive (UDP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bind {
    pub cgroup_id: u64,
    pub pid: u32,
    pub uid: u32,
    pub boot_ns: u64,
    pub address: SocketAddr,
    /// `true` for TCP (`SOCK_STREAM`), `false` for UDP.
    pub stream: bool,
}

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Exec(Exec),
    OpenWrite(OpenWrite),
    Connect(Connect),
    Bind(Bind),
    /// Events the kernel side could not deliver (ring buffer full) since the last report:
    /// counted, never lost silently.
    Dropped {
        count: u64,
    },
}

impl Event {
    /// The cgroup the event happened in (`None` for [`Event::Dropped`]).
    pub fn cgroup_id(&self) -> Option<u64> {
        match self {
            Event::Exec(e) => Some(e.cgroup_id),
            Event::OpenWrite(e) => Some(e.cgroup_id),
            Event::Connect(e) => Some(e.cgroup_id),
            Event::Bind(e) => Some(e.cgroup_id),
            Event::Dropped { .. } => None,
        }
    }
}

/// An absolute path as the kernel resolves its names, without following symlinks: empty
/// and `.` components dropped, `..` taking the one before it away (`/..` is `/`). So that
/// `//etc/passwd` and `/tmp/../etc/passwd` are seen under `/etc` as the kernel sees them.
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len());
    for c in parts {
        out.push('/');
        out.push_str(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn paths_are_cleaned_as_the_kernel_resolves_names() {
        for (path, clean) in [
            ("/etc/passwd", "/etc/passwd"),
            ("//etc//passwd", "/etc/passwd"),
            ("/etc/./passwd", "/etc/passwd"),
            ("/tmp/../etc/passwd", "/etc/passwd"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/etc/", "/etc"),
            ("/", "/"),
            ("/..", "/"),
        ] {
            assert_eq!(clean_path(path), clean, "{path}");
        }
    }
}
