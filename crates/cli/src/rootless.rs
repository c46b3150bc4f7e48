//! Rootless berth: an ordinary user's `berth` runs as root of a user namespace of its own,
//! as podman does.
//!
//! The namespace maps root to the user and ids 1… to the user's subordinate ids
//! (`/etc/subuid` and `/etc/subgid`, through `newuidmap`/`newgidmap`), so the layers of an
//! image keep their owners (on disk: the user and the subordinate ids) and overlayfs,
//! which the kernel lets root of a user namespace mount, shares them between containers.
//! The namespace, and a mount namespace it owns, are held by a *pause process*
//! (`berth __pause`, its pid in `$XDG_RUNTIME_DIR/berth/pause.pid`) that sleeps until it
//! is killed: every later `berth` command joins them (`setns`), so the containers' root
//! filesystems, mounted there, are seen by `ps`, `exec`, `stop` and `rm` alike, and each
//! container's monitor lives there. Containers share the namespace (container root is the
//! user; no per-container range within the 65 537 ids) and get no cgroup limits unless a
//! cgroup was delegated to the user (the runtime's rootless cgroup manager).
//!
//! Entering happens first thing in `main`, while the process is single-threaded (`setns`
//! into a user namespace requires it).

#![expect(
    clippy::disallowed_methods,
    reason = "binaries read the environment; libraries take configuration as arguments"
)]

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::commands::container::MONITOR_BIN;
use anyhow::Context;
use berth_image::spec::{IdRange, subid_ranges};

/// The argument that starts the pause process.
pub const PAUSE_ARG: &str = "__pause";
/// After [`PAUSE_ARG`]: hold the namespaces the parent joined instead of new ones.
const JOINED_ARG: &str = "--joined";

static ACTIVE: AtomicBool = AtomicBool::new(false);
static USER: AtomicU32 = AtomicU32::new(0);

/// Whether this process is an ordinary user's berth, now root of the rootless namespace.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The effective uid the user ran berth with (0 inside the rootless namespace is them).
pub fn caller_euid() -> u32 {
    if active() {
        USER.load(Ordering::Relaxed)
    } else {
        rustix::process::geteuid().as_raw()
    }
}

/// For an ordinary user (effective uid not 0): join the user's rootless namespace, starting
/// its pause process first when there is none. Nothing for root. Must run while the process
/// has one thread.
pub fn enter() -> anyhow::Result<()> {
    let uid = rustix::process::getuid().as_raw();
    if rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let cwd = std::env::current_dir().ok();
    let dir = runtime_dir(uid)?;
    let lock_path = dir.join("pause.lock");
    let lock = berth_fsutil::FileLock::exclusive(&lock_path)
        .with_context(|| format!("failed to lock {}", lock_path.display()))?;
    match live_pause(&dir, uid) {
        Some(pid) => join_pause(pid)?,
        // the pause process was killed while containers run: their monitors still hold the
        // namespace; join it and hold it with a new pause process, so that they stay within
        // reach (`exec`, `stop`, their mounts), as podman does through conmon
        None => match monitor_in_other_namespace(uid) {
            Some(monitor) => {
                join(monitor).with_context(|| {
                    format!("failed to join the rootless namespace of monitor {monitor}")
                })?;
                hold_joined(&dir)?;
            }
            None => {
                let pid = start_pause(&dir, uid)?;
                join_pause(pid)?;
            }
        },
    }
    drop(lock);
    // joining a mount namespace moves the working directory to its root: back to where the
    // user was (the same path; the namespace began as a copy of the user's mounts)
    if let Some(cwd) = cwd {
        std::env::set_current_dir(&cwd)
            .with_context(|| format!("failed to return to {}", cwd.display()))?;
    }
    USER.store(uid, Ordering::Relaxed);
    ACTIVE.store(true, Ordering::Relaxed);
    Ok(())
}

fn join_pause(pid: i32) -> anyhow::Result<()> {
    join(pid).with_context(|| {
        format!(
            "failed to join the rootless namespace of pause process {pid}\nhint: kill {pid} to \
             start a new one"
        )
    })
}

/// A process of `uid` running `berth-monitor` or `berth __monitor` in a user namespace other
/// than this process's: a container's monitor, in the namespace of a pause process that is
/// gone.
fn monitor_in_other_namespace(uid: u32) -> Option<i32> {
    let own = std::fs::read_link("/proc/self/ns/user").ok()?;
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter().find(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut argv = cmdline.split(|b| *b == 0);
        let program = argv.next().unwrap_or_default();
        let is_monitor = program
            .rsplit(|b| *b == b'/')
            .next()
            .is_some_and(|name| name == MONITOR_BIN.as_bytes())
            || argv.next().is_some_and(|a| a == b"__monitor");
        is_monitor
            && process_uid(*pid) == Some(uid)
            && std::fs::read_link(format!("/proc/{pid}/ns/user")).is_ok_and(|ns| ns != own)
    })
}

/// The real uid of `pid`, as `/proc/PID/status` gives it.
fn process_uid(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// A new pause process in the namespaces this process has joined (`__pause --joined`: no
/// unshare), its pid recorded.
fn hold_joined(dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("failed to find the berth binary")?;
    let child = Command::new(&exe)
        .args([PAUSE_ARG, JOINED_ARG])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to start {} {PAUSE_ARG}", exe.display()))?;
    let pid_file = dir.join("pause.pid");
    berth_fsutil::atomic_write(&pid_file, format!("{}\n", child.id()).as_bytes())
        .with_context(|| format!("failed to write {}", pid_file.display()))?;
    drop(child);
    Ok(())
}

/// `$XDG_RUNTIME_DIR/berth`, else `/tmp/berth-run-UID` (created 0700, and refused when
/// someone else owns it).
fn runtime_dir(uid: u32) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("berth"),
        None => std::env::temp_dir().join(format!("berth-run-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e).with_context(|| format!("failed to create {}", dir.display()));
        }
    }
    let meta = std::fs::symlink_metadata(&dir)
        .with_context(|| format!("failed to read {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
        anyhow::bail!(
            "{} is not a directory of yours that only you can write (owner {}, mode {:o})\n\
             hint: remove it, or set XDG_RUNTIME_DIR to a directory of yours",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    Ok(dir)
}

/// The pid in `DIR/pause.pid` if it is a live pause process of `uid`'s berth.
fn live_pause(dir: &Path, uid: u32) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join("pause.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let is_pause = cmdline
        .split(|b| *b == 0)
        .nth(1)
        .is_some_and(|a| a == PAUSE_ARG.as_bytes());
    (is_pause && process_uid(pid) == Some(uid)).then_some(pid)
}

/// Start the pause process, map its user namespace's ids and record its pid.
fn start_pause(dir: &Path, uid: u32) -> anyhow::Result<i32> {
    let gid = rustix::process::getgid().as_raw();
    let user = user_name(uid)?;
    let uids = subordinate("/etc/subuid", &user, uid)?;
    let gids = subordinate("/etc/subgid", &user, uid)?;
    let exe = std::env::current_exe().context("failed to find the berth binary")?;
    let mut child = Command::new(&exe)
        .arg(PAUSE_ARG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to start {} {PAUSE_ARG}", exe.display()))?;
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!(
            "cannot create a user namespace as uid {uid}: {}\nhint: unprivileged user \
             namespaces must be allowed (sysctl user.max_user_namespaces, and \
             kernel.unprivileged_userns_clone where the kernel has it)",
            line.trim()
                .strip_prefix("error: ")
                .unwrap_or("the pause process failed")
        );
    }
    let mapped =
        map_ids("newuidmap", pid, uid, &uids).and_then(|()| map_ids("newgidmap", pid, gid, &gids));
    if let Err(e) = mapped {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let pid_file = dir.join("pause.pid");
    berth_fsutil::atomic_write(&pid_file, format!("{pid}\n").as_bytes())
        .with_context(|| format!("failed to write {}", pid_file.display()))?;
    // not waited for: it outlives this command, reparented to init when berth exits
    drop(child);
    Ok(pid)
}

/// `TOOL PID 0 ID 1 1 START COUNT …`: root is the user, then each subordinate range.
fn map_ids(tool: &str, pid: i32, id: u32, ranges: &[IdRange]) -> anyhow::Result<()> {
    let mut args = vec![pid.to_string(), "0".into(), id.to_string(), "1".into()];
    let mut next: u64 = 1;
    for r in ranges {
        args.extend([
            next.to_string(),
            r.host_start.to_string(),
            r.size.to_string(),
        ]);
        next += u64::from(r.size);
    }
    let out = Command::new(tool)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "failed to run {tool}\nhint: install it (Debian: apt-get install uidmap); rootless \
                 berth maps the subordinate ids with it"
            )
        })?;
    if !out.status.success() {
        anyhow::bail!(
            "{tool} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The user's subordinate ranges in `file`, by name or uid; none is an error saying what to
/// add.
fn subordinate(file: &str, user: &str, uid: u32) -> anyhow::Result<Vec<IdRange>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("failed to read {file}")),
    };
    let ranges = subid_ranges(&text, user, uid);
    if ranges.is_empty() {
        anyhow::bail!(
            "{file} grants no subordinate ids to {user} (uid {uid}): rootless berth maps an \
             image's owners to them\nhint: as root, `usermod --add-subuids 100000-165535 \
             --add-subgids 100000-165535 {user}` (or add `{user}:100000:65536` to /etc/subuid \
             and /etc/subgid)"
        );
    }
    Ok(ranges)
}

/// The name `/etc/passwd` gives `uid` (else the number, which /etc/subuid may use too).
fn user_name(uid: u32) -> anyhow::Result<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    Ok(passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)? == uid.to_string()).then(|| name.to_owned())
        })
        .unwrap_or_else(|| uid.to_string()))
}

/// Join the user and mount namespaces of `pid`.
fn join(pid: i32) -> anyhow::Result<()> {
    use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
    let open = |ns: &str| {
        let p = format!("/proc/{pid}/ns/{ns}");
        std::fs::File::open(&p).with_context(|| format!("failed to open {p}"))
    };
    let user = open("user")?;
    let mnt = open("mnt")?;
    move_into_link_name_space(user.as_fd(), Some(LinkNameSpaceType::User))
        .context("setns into the user namespace")?;
    move_into_link_name_space(mnt.as_fd(), Some(LinkNameSpaceType::Mount))
        .context("setns into the mount namespace")?;
    Ok(())
}

/// `berth __pause`: new user and mount namespaces, "ready" on stdout once they exist (the
/// parent then maps the ids), then sleep until killed; `berth __pause --joined`: sleep in
/// the namespaces it was started in.
pub fn pause_main() -> ExitCode {
    let _ = rustix::process::setsid();
    if std::env::args_os().nth(2).is_some_and(|a| a == JOINED_ARG) {
        loop {
            rustix::event::pause();
        }
    }
    let mut out = std::io::stdout().lock();
    // SAFETY: no FILES flag; the process is single-threaded (dispatched first thing in main).
    #[expect(unsafe_code, reason = "unshare: the pause process's namespaces")]
    let unshared = unsafe {
        rustix::thread::unshare_unsafe(
            rustix::thread::UnshareFlags::NEWUSER | rustix::thread::UnshareFlags::NEWNS,
        )
    };
    if let Err(e) = unshared {
        let _ = writeln!(out, "error: unshare(CLONE_NEWUSER|CLONE_NEWNS): {e}");
        return ExitCode::from(1);
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);
    // nothing more to say: stdout becomes /dev/null, so the parent's pipe closes
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
    }
    loop {
        rustix::event::pause();
    }
}
