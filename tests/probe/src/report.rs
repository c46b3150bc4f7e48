//! Report steps: what the probe sees, each as one JSON value. A report that cannot be made
//! is `{"error": "...", "errno": n}` and makes the probe exit 1.

use std::ffi::CStr;
use std::io;

use serde_json::{Map, Value, json};

use crate::Action;
use crate::names::{cap_names, errno_name};
use crate::procfs;
use crate::step::{Step, UsageError};

/// A failed observation: what could not be read, and why.
#[derive(Debug)]
pub struct ReportError {
    pub what: String,
    pub source: io::Error,
}

impl ReportError {
    pub fn to_json(&self) -> Value {
        let errno = self.source.raw_os_error();
        json!({
            "error": format!("failed to read {}: {}", self.what, self.source),
            "errno": errno,
            "errno_name": errno.map(errno_name),
        })
    }
}

fn read(path: &str) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError {
        what: path.to_owned(),
        source,
    })
}

fn malformed(what: &str) -> ReportError {
    ReportError {
        what: what.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, "unexpected format"),
    }
}

/// The report steps this module knows, for the usage text.
pub const REPORTS: &[&str] = &[
    "identity",
    "pids",
    "self",
    "caps",
    "nnp",
    "seccomp",
    "mounts",
    "fds",
    "cwd",
    "env",
    "rlimits",
    "umask",
    "oom_score_adj",
    "cgroup",
    "tty",
    "ns",
    "clocks",
    "netdevs",
    "sysctl:<dotted.name>",
];

/// Plan a report step (arguments checked, nothing read yet); `Ok(None)` when `step` is not
/// a report. The action's value is `{"error": …}` when the report could not be made.
pub fn plan(step: &Step) -> Result<Option<Action>, UsageError> {
    let known = REPORTS
        .iter()
        .any(|r| r.split(':').next() == Some(step.name.as_str()));
    if !known {
        return Ok(None);
    }
    if step.name != "sysctl" {
        step.arity(0, 0)?;
    }
    let f: Box<dyn FnOnce() -> Result<Value, ReportError>> = match step.name.as_str() {
        "identity" => Box::new(identity),
        "pids" => Box::new(pids),
        "self" => Box::new(|| Ok(self_ids())),
        "caps" => Box::new(caps),
        "nnp" => Box::new(nnp),
        "seccomp" => Box::new(seccomp),
        "mounts" => Box::new(|| read("/proc/self/mountinfo").map(|t| procfs::mountinfo(&t))),
        "fds" => Box::new(fds),
        "cwd" => Box::new(cwd),
        "env" => Box::new(|| Ok(env())),
        "rlimits" => Box::new(|| Ok(rlimits())),
        "umask" => Box::new(umask),
        "oom_score_adj" => Box::new(oom_score_adj),
        "cgroup" => Box::new(|| read("/proc/self/cgroup").map(|t| procfs::cgroup(&t))),
        "tty" => Box::new(|| Ok(tty())),
        "ns" => Box::new(|| Ok(namespaces())),
        "clocks" => Box::new(clocks),
        "netdevs" => Box::new(|| read("/proc/self/net/dev").map(|t| procfs::net_devs(&t))),
        _ => {
            // sysctl
            step.arity(1, 1)?;
            let name = step.str_arg(0, "");
            if name.is_empty() || name.split('.').any(|p| p.is_empty() || p.contains('/')) {
                return Err(step.usage("needs a sysctl name like net.ipv4.ip_forward"));
            }
            let path = format!("/proc/sys/{}", name.replace('.', "/"));
            Box::new(move || read(&path).map(|v| json!({"path": path, "value": v.trim_end()})))
        }
    };
    Ok(Some(Box::new(move || f().unwrap_or_else(|e| e.to_json()))))
}

fn identity() -> Result<Value, ReportError> {
    let status = read("/proc/self/status")?;
    let uid = procfs::status_numbers(&status, "Uid").ok_or_else(|| malformed("Uid"))?;
    let gid = procfs::status_numbers(&status, "Gid").ok_or_else(|| malformed("Gid"))?;
    let groups = procfs::status_numbers(&status, "Groups").unwrap_or_default();
    let uid_map = read("/proc/self/uid_map").map(|t| procfs::id_map(&t))?;
    let gid_map = read("/proc/self/gid_map").map(|t| procfs::id_map(&t))?;
    // absent on kernels before 3.19; not an error
    let setgroups = std::fs::read_to_string("/proc/self/setgroups")
        .ok()
        .map(|s| s.trim().to_owned());
    let (hostname, domainname) = uname()?;
    Ok(json!({
        "uid": uid.first(), "euid": uid.get(1), "suid": uid.get(2), "fsuid": uid.get(3),
        "gid": gid.first(), "egid": gid.get(1), "sgid": gid.get(2), "fsgid": gid.get(3),
        "groups": groups,
        "uid_map": uid_map,
        "gid_map": gid_map,
        "setgroups": setgroups,
        "hostname": hostname,
        "domainname": domainname,
    }))
}

#[expect(unsafe_code, reason = "uname(2) through libc")]
fn uname() -> Result<(String, String), ReportError> {
    // SAFETY: utsname is plain old data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(ReportError {
            what: "uname".to_owned(),
            source: io::Error::last_os_error(),
        });
    }
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| c.to_ne_bytes()[0])
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok((field(&u.nodename), field(&u.domainname)))
}

fn pids() -> Result<Value, ReportError> {
    let dir = std::fs::read_dir("/proc").map_err(|source| ReportError {
        what: "/proc".to_owned(),
        source,
    })?;
    let names = dir.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()));
    Ok(json!(procfs::pids(names)))
}

#[expect(unsafe_code, reason = "process ids through libc")]
fn self_ids() -> Value {
    // SAFETY: these calls take no pointers and cannot fail for the calling process.
    let (pid, ppid, pgid, sid) = unsafe {
        (
            libc::getpid(),
            libc::getppid(),
            libc::getpgid(0),
            libc::getsid(0),
        )
    };
    json!({"pid": pid, "ppid": ppid, "pgid": pgid, "sid": sid})
}

fn caps() -> Result<Value, ReportError> {
    let status = read("/proc/self/status")?;
    let mut out = Map::new();
    for (key, name) in [
        ("CapInh", "inheritable"),
        ("CapPrm", "permitted"),
        ("CapEff", "effective"),
        ("CapBnd", "bounding"),
        ("CapAmb", "ambient"),
    ] {
        let mask = procfs::status_hex(&status, key).ok_or_else(|| malformed(key))?;
        out.insert(name.to_owned(), json!(cap_names(mask)));
    }
    Ok(Value::Object(out))
}

fn nnp() -> Result<Value, ReportError> {
    let status = read("/proc/self/status")?;
    let v = procfs::status_field(&status, "NoNewPrivs").ok_or_else(|| malformed("NoNewPrivs"))?;
    Ok(json!(v == "1"))
}

fn seccomp() -> Result<Value, ReportError> {
    let status = read("/proc/self/status")?;
    let mode: u64 = procfs::status_field(&status, "Seccomp")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| malformed("Seccomp"))?;
    // Seccomp_filters exists since Linux 5.9
    let filters: Option<u64> =
        procfs::status_field(&status, "Seccomp_filters").and_then(|v| v.parse().ok());
    let name = match mode {
        0 => "disabled",
        1 => "strict",
        2 => "filter",
        _ => "unknown",
    };
    Ok(json!({"mode": mode, "mode_name": name, "filters": filters}))
}

fn fds() -> Result<Value, ReportError> {
    let dir = std::fs::read_dir("/proc/self/fd").map_err(|source| ReportError {
        what: "/proc/self/fd".to_owned(),
        source,
    })?;
    let mut fds: Vec<(u64, String)> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let fd: u64 = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|e| format!("<unreadable: {e}>"));
            Some((fd, target))
        })
        .collect();
    fds.sort();
    // the directory being listed is itself an open fd; leave it out
    let own = fds
        .iter()
        .filter(|(_, t)| t.starts_with("/proc/") && t.ends_with("/fd"))
        .map(|(fd, _)| *fd)
        .max();
    Ok(Value::Array(
        fds.into_iter()
            .filter(|(fd, _)| Some(*fd) != own)
            .map(|(fd, target)| json!({"fd": fd, "target": target}))
            .collect(),
    ))
}

fn cwd() -> Result<Value, ReportError> {
    std::env::current_dir()
        .map(|p| json!(p.to_string_lossy()))
        .map_err(|source| ReportError {
            what: "the current directory".to_owned(),
            source,
        })
}

fn env() -> Value {
    Value::Object(
        std::env::vars_os()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), json!(v.to_string_lossy())))
            .collect(),
    )
}

const RLIMITS: [(&str, libc::__rlimit_resource_t); 16] = [
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
];

/// Every rlimit as `{"soft": n, "hard": n}`; unlimited is `u64::MAX` (RLIM_INFINITY), as
/// in a config.json.
#[expect(unsafe_code, reason = "getrlimit(2) through libc")]
fn rlimits() -> Value {
    let mut out = Map::new();
    for (name, res) in RLIMITS {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `r` is a valid, writable rlimit.
        let v = if unsafe { libc::getrlimit(res, &mut r) } == 0 {
            json!({"soft": r.rlim_cur, "hard": r.rlim_max})
        } else {
            ReportError {
                what: format!("rlimit {name}"),
                source: io::Error::last_os_error(),
            }
            .to_json()
        };
        out.insert(name.to_owned(), v);
    }
    Value::Object(out)
}

fn umask() -> Result<Value, ReportError> {
    // Umask: in status (Linux 4.7+) reads it without the set-and-restore race of umask(2)
    let status = read("/proc/self/status")?;
    let v = procfs::status_field(&status, "Umask").ok_or_else(|| malformed("Umask"))?;
    u32::from_str_radix(v, 8)
        .map(|m| json!(m))
        .map_err(|_| malformed("Umask"))
}

fn oom_score_adj() -> Result<Value, ReportError> {
    let v = read("/proc/self/oom_score_adj")?;
    v.trim()
        .parse::<i64>()
        .map(|n| json!(n))
        .map_err(|_| malformed("/proc/self/oom_score_adj"))
}

#[expect(unsafe_code, reason = "isatty(3) and ttyname_r(3) through libc")]
fn tty() -> Value {
    let mut out = Map::new();
    for (fd, name) in [(0, "stdin"), (1, "stdout"), (2, "stderr")] {
        // SAFETY: isatty takes an fd number only.
        let is = unsafe { libc::isatty(fd) } == 1;
        let mut buf = [0 as libc::c_char; 256];
        // SAFETY: `buf` is writable for its full length, which is passed.
        let path =
            (is && unsafe { libc::ttyname_r(fd, buf.as_mut_ptr(), buf.len()) } == 0).then(|| {
                // SAFETY: ttyname_r succeeded, so `buf` holds a NUL-terminated string.
                unsafe { CStr::from_ptr(buf.as_ptr()) }
                    .to_string_lossy()
                    .into_owned()
            });
        out.insert(name.to_owned(), json!({"isatty": is, "ttyname": path}));
    }
    Value::Object(out)
}

/// The namespaces the probe is in: `{"net": "net:[4026531840]", …}` (the links under
/// /proc/self/ns; a kernel without a type has no link, reported as null).
fn namespaces() -> Value {
    let mut out = Map::new();
    for name in [
        "cgroup",
        "ipc",
        "mnt",
        "net",
        "pid",
        "pid_for_children",
        "time",
        "user",
        "uts",
    ] {
        let link = std::fs::read_link(format!("/proc/self/ns/{name}"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        out.insert(name.to_owned(), json!(link));
    }
    Value::Object(out)
}

/// CLOCK_MONOTONIC and CLOCK_BOOTTIME in seconds (as the time namespace offsets them).
#[expect(unsafe_code, reason = "clock_gettime(2) through libc")]
fn clocks() -> Result<Value, ReportError> {
    let mut out = Map::new();
    for (id, name) in [
        (libc::CLOCK_MONOTONIC, "monotonic"),
        (libc::CLOCK_BOOTTIME, "boottime"),
    ] {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
            return Err(ReportError {
                what: format!("clock {name}"),
                source: io::Error::last_os_error(),
            });
        }
        out.insert(
            name.to_owned(),
            json!({"secs": ts.tv_sec, "nanos": ts.tv_nsec}),
        );
    }
    Ok(Value::Object(out))
}
