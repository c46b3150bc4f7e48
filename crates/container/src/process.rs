//! The container process's own settings, applied by the init (or exec) process just before
//! it executes the user's program: user and groups, rlimits, umask, oomScoreAdj,
//! no_new_privs, LSM labels, the session keyring, cwd and the PATH lookup.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_runtime_spec::{PosixRlimitType, Process};
use rustix::process::{Resource, Rlimit};

use crate::ipc::{Context, Failure};

/// What will be executed.
#[derive(Debug)]
pub(crate) struct ExecPlan {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

fn cstr(s: &str, what: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| Failure::new(format!("{what} {s:?} contains a NUL byte")))
}

/// Resolve `args[0]` like execvp with the *container's* PATH (called inside the rootfs,
/// after pivot_root) and build argv/envp; errors here surface at `create`, as with runc.
pub(crate) fn exec_plan(process: &Process, extra_env: &[String]) -> Result<ExecPlan, Failure> {
    let args = process.args.as_deref().unwrap_or_default();
    let prog = args
        .first()
        .ok_or_else(|| Failure::new("process.args is empty"))?;
    let mut env: Vec<String> = process.env.clone().unwrap_or_default();
    env.extend(extra_env.iter().cloned());
    let path_var = env
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .to_owned();
    let path = if prog.contains('/') {
        PathBuf::from(prog)
    } else {
        lookup(prog, &path_var).ok_or_else(|| Failure {
            what: format!("exec: {prog:?}: executable file not found in $PATH"),
            errno: Some(libc::ENOENT),
        })?
    };
    // check now so a wrong path is an error of `create`, not of the container
    match rustix::fs::access(path.as_path(), rustix::fs::Access::EXEC_OK) {
        Ok(()) => {}
        Err(e) => {
            return Err(Failure::io(format!("exec: {}", path.display()), &e.into()));
        }
    }
    Ok(ExecPlan {
        path: CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Failure::new("executable path contains a NUL byte"))?,
        argv: args
            .iter()
            .map(|a| cstr(a, "argument"))
            .collect::<Result<_, _>>()?,
        envp: env
            .iter()
            .map(|e| cstr(e, "environment entry"))
            .collect::<Result<_, _>>()?,
    })
}

fn lookup(prog: &str, path_var: &str) -> Option<PathBuf> {
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(prog);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Some(candidate);
            }
        }
    }
    None
}

fn rlimit_resource(t: PosixRlimitType) -> Option<Resource> {
    Some(match t {
        PosixRlimitType::RlimitCpu => Resource::Cpu,
        PosixRlimitType::RlimitFsize => Resource::Fsize,
        PosixRlimitType::RlimitData => Resource::Data,
        PosixRlimitType::RlimitStack => Resource::Stack,
        PosixRlimitType::RlimitCore => Resource::Core,
        PosixRlimitType::RlimitRss => Resource::Rss,
        PosixRlimitType::RlimitNproc => Resource::Nproc,
        PosixRlimitType::RlimitNofile => Resource::Nofile,
        PosixRlimitType::RlimitMemlock => Resource::Memlock,
        PosixRlimitType::RlimitAs => Resource::As,
        PosixRlimitType::RlimitLocks => Resource::Locks,
        PosixRlimitType::RlimitSigpending => Resource::Sigpending,
        PosixRlimitType::RlimitMsgqueue => Resource::Msgqueue,
        PosixRlimitType::RlimitNice => Resource::Nice,
        PosixRlimitType::RlimitRtprio => Resource::Rtprio,
        PosixRlimitType::RlimitRttime => Resource::Rttime,
    })
}

/// `process.rlimits`.
pub(crate) fn set_rlimits(process: &Process) -> Result<(), Failure> {
    for r in process.rlimits.iter().flatten() {
        let res = rlimit_resource(r.typ)
            .ok_or_else(|| Failure::new(format!("unknown rlimit {:?}", r.typ)))?;
        let lim = Rlimit {
            current: (r.soft != u64::MAX).then_some(r.soft),
            maximum: (r.hard != u64::MAX).then_some(r.hard),
        };
        rustix::process::setrlimit(res, lim).ctx(|| format!("failed to set rlimit {:?}", r.typ))?;
    }
    Ok(())
}

/// `process.oomScoreAdj`.
pub(crate) fn set_oom_score_adj(process: &Process) -> Result<(), Failure> {
    if let Some(adj) = &process.oom_score_adj {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/oom_score_adj")
            .ctx(|| "failed to open /proc/self/oom_score_adj".to_owned())?;
        f.write_all(adj.to_string().as_bytes())
            .ctx(|| format!("failed to write {adj} to /proc/self/oom_score_adj"))?;
    }
    Ok(())
}

/// Switch to the process's user: supplementary groups, gid, uid (setres*).
pub(crate) fn set_user(process: &Process, setgroups_allowed: bool) -> Result<(), Failure> {
    let user = &process.user;
    if setgroups_allowed {
        let groups: Vec<rustix::process::Gid> = user
            .additional_gids
            .iter()
            .flatten()
            .map(|g| rustix::process::Gid::from_raw(*g))
            .collect();
        rustix::thread::set_thread_groups(&groups)
            .ctx(|| "failed to set supplementary groups".to_owned())?;
    } else if user.additional_gids.as_ref().is_some_and(|g| !g.is_empty()) {
        return Err(Failure::new(
            "cannot set additional gids: setgroups is denied in this user namespace",
        ));
    }
    let gid = rustix::process::Gid::from_raw(user.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid)
        .ctx(|| format!("failed to set gid {}", user.gid))?;
    let uid = rustix::process::Uid::from_raw(user.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid)
        .ctx(|| format!("failed to set uid {}", user.uid))?;
    Ok(())
}

/// Whether setgroups(2) is allowed in this process's user namespace.
pub(crate) fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// `process.user.umask` (runc's default: 0022).
pub(crate) fn set_umask(process: &Process) {
    let mask = process.user.umask.unwrap_or(0o022);
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask & 0o777));
}

/// chdir into `process.cwd` and check the result is inside the container's root: a cwd
/// reached through a leaked descriptor (CVE-2024-21626) would not be.
pub(crate) fn enter_cwd(process: &Process) -> Result<(), Failure> {
    let cwd = &process.cwd;
    rustix::process::chdir(cwd.as_path())
        .ctx(|| format!("failed to change directory to {}", cwd.display()))?;
    let now = rustix::process::getcwd(Vec::new())
        .ctx(|| "failed to read the working directory".to_owned())?;
    if !now.as_bytes().starts_with(b"/") {
        return Err(Failure::new(format!(
            "working directory {} is outside the container",
            cwd.display()
        )));
    }
    Ok(())
}

/// Which LSM, if any, the host runs.
fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Refuse (at create time, in the runtime) a profile or label the host cannot apply.
pub(crate) fn check_lsm(process: &Process) -> Result<(), Failure> {
    if let Some(p) = process
        .apparmor_profile
        .as_deref()
        .filter(|p| !p.is_empty())
        && !apparmor_enabled()
    {
        return Err(Failure::new(format!(
            "apparmor profile {p:?} requested, but AppArmor is not enabled on this host"
        )));
    }
    if let Some(l) = process.selinux_label.as_deref().filter(|l| !l.is_empty())
        && !selinux_enabled()
    {
        return Err(Failure::new(format!(
            "selinux label {l:?} requested, but SELinux is not enabled on this host"
        )));
    }
    Ok(())
}

/// Arrange for the AppArmor profile / SELinux label to apply at exec.
pub(crate) fn apply_lsm(process: &Process) -> Result<(), Failure> {
    if let Some(p) = process
        .apparmor_profile
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
            "/proc/self/attr/apparmor/exec"
        } else {
            "/proc/self/attr/exec"
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(attr)
            .ctx(|| format!("failed to open {attr}"))?;
        f.write_all(format!("exec {p}").as_bytes())
            .ctx(|| format!("failed to apply apparmor profile {p}"))?;
    }
    if let Some(l) = process.selinux_label.as_deref().filter(|l| !l.is_empty()) {
        let attr = "/proc/self/attr/exec";
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(attr)
            .ctx(|| format!("failed to open {attr}"))?;
        f.write_all(l.as_bytes())
            .ctx(|| format!("failed to apply selinux label {l}"))?;
    }
    Ok(())
}
