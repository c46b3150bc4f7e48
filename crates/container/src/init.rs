//! The container side: what runs in the processes the runtime forks.
//!
//! ```text
//! runtime ──fork──▶ stage 1: join namespaces by path (user first); unshare the user
//!                   namespace and wait for the runtime to write the maps and apply the
//!                   cgroup; unshare the other namespaces; write time offsets
//!                   ──fork──▶ init (pid 1 of a new pid namespace): rootfs, hooks
//!                   reports the init's pid, exits        handshake, pivot_root, process
//!                                                        settings, exec fifo, execve
//! ```
//!
//! Both processes are forks of the (single-threaded) runtime, so they share its parsed
//! config; nothing is re-parsed. Every failure goes back to the runtime as a
//! [`Failure`] on the sync channel, then the process exits.

use std::convert::Infallible;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use berth_runtime_spec::{Process, Spec};
use rustix::thread::UnshareFlags;
use serde::{Deserialize, Serialize};

use crate::hooks;
use crate::ipc::{Channel, Context, Failure};
use crate::namespaces::{self, Plan};
use crate::process;
use crate::rootfs::{self, RootfsPlan};
use crate::seccomp::Filter;
use crate::sys::{self, Fork};
use crate::{caps, tty};

/// Container side → runtime.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ChildMsg {
    /// Stage 1 joined its namespaces (and unshared the user namespace): write the id maps,
    /// apply the cgroup, then send `Continue`.
    Stage1,
    /// Stage 1 forked the init.
    InitPid {
        pid: i32,
    },
    /// Mounts done: run prestart and createRuntime hooks, then send `HooksDone` (sent only
    /// when the config has such hooks).
    Hooks,
    /// The pty master is attached.
    Pty,
    /// Everything is set up; the init now waits on the exec fifo (create) or executes (exec).
    Ready,
    Failed(Failure),
}

/// Runtime → container side.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ParentMsg {
    Continue,
    /// The init may proceed; `state` is the runtime-spec state (for hooks and the seccomp
    /// listener).
    Start {
        state: String,
    },
    HooksDone,
}

/// What a container process needs; borrowed from the runtime's memory (we are its fork).
#[derive(Debug)]
pub(crate) struct ChildConfig<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub process: &'a Process,
    /// `create`: the root filesystem to build. `None` for `exec`.
    pub rootfs: Option<RootfsPlan<'a>>,
    pub ns: &'a Plan,
    /// `create`: O_PATH descriptor of the exec fifo.
    pub fifo: Option<BorrowedFd<'a>>,
    /// `exec`: the container init's root directory, to chroot into after joining.
    pub exec_root: Option<BorrowedFd<'a>>,
    /// Descriptors [3, keep_fds) are passed to the container (LISTEN_FDS + --preserve-fds).
    pub keep_fds: i32,
    pub extra_env: Vec<String>,
    pub no_new_keyring: bool,
    pub seccomp: Option<&'a Filter>,
}

/// Stage 1 (see the module docs). Never returns.
pub(crate) fn stage1(cfg: &ChildConfig<'_>, chan: &Channel) -> ! {
    let code = match stage1_inner(cfg, chan) {
        Ok(()) => 0,
        Err(f) => {
            let _ = chan.send(&ChildMsg::Failed(f));
            1
        }
    };
    std::process::exit(code)
}

fn stage1_inner(cfg: &ChildConfig<'_>, chan: &Channel) -> Result<(), Failure> {
    sys::reset_signals();
    let mut keep: Vec<i32> = (0..cfg.keep_fds).collect();
    keep.push(chan.fd().as_raw_fd());
    keep.extend(cfg.fifo.map(|f| f.as_raw_fd()));
    keep.extend(cfg.exec_root.map(|f| f.as_raw_fd()));
    sys::close_fds_except(&keep).ctx(|| "failed to close inherited descriptors".to_owned())?;
    // die with the runtime while we are only a helper
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    // Non-dumpable until the container's program is executed (CVE-2016-9962, as runc's
    // nsexec): once this process and the init it forks have joined the container and
    // dropped to its credentials, a process of the container (or of a sibling sharing the
    // pid namespace) could otherwise open their /proc/<pid>/mem, their descriptors (the
    // host's exec fifo) or ptrace them — before the seccomp filter is loaded. The fork
    // inherits it; execve of the container's program sets dumpability anew. With no
    // namespace to join or create there is no other security context to guard against,
    // and runc leaves the process dumpable then (it would only break rootless use).
    let guarded = !cfg.ns.new.is_empty() || !cfg.ns.join.is_empty();
    if guarded {
        sys::set_dumpable(false)
            .ctx(|| "failed to make the runtime process non-dumpable".to_owned())?;
    }

    if cfg.ns.join()? {
        // root of the joined user namespace (its maps exist already): what the runtime
        // makes in the container (mounts, /dev) must have owners mapped there
        become_root()?;
    }
    if let Some(root) = &cfg.exec_root {
        rustix::process::fchdir(root)
            .ctx(|| "failed to change directory to the container root".to_owned())?;
        rustix::process::chroot(".")
            .ctx(|| "failed to chroot into the container root".to_owned())?;
    }
    let new_user = cfg.ns.new.contains(UnshareFlags::NEWUSER);
    if new_user {
        sys::unshare_namespaces(UnshareFlags::NEWUSER)
            .ctx(|| "failed to create the user namespace".to_owned())?;
    }
    if new_user && guarded {
        // the runtime (an ordinary user when rootless, or newuidmap checking that user
        // owns us) writes our id maps through /proc/<pid>: dumpable for that moment only,
        // as runc. Nothing of the container can see this process yet: it is in no pid
        // namespace but the runtime's, and its new user namespace has no mapping.
        sys::set_dumpable(true)
            .ctx(|| "failed to make stage 1 dumpable for the id maps".to_owned())?;
    }
    chan.send(&ChildMsg::Stage1)
        .map_err(|e| Failure::new(e.to_string()))?;
    expect_msg(chan, |m| matches!(m, ParentMsg::Continue))?;
    if new_user && guarded {
        sys::set_dumpable(false)
            .ctx(|| "failed to make the runtime process non-dumpable".to_owned())?;
    }
    if new_user {
        // become root of the new namespace (the runtime wrote the maps)
        become_root()?;
    }
    let rest = cfg.ns.new - UnshareFlags::NEWUSER;
    if !rest.is_empty() {
        sys::unshare_namespaces(rest).ctx(|| "failed to create namespaces".to_owned())?;
    }
    if rest.contains(UnshareFlags::NEWTIME)
        && let Some(linux) = &cfg.spec.linux
    {
        namespaces::write_time_offsets(linux)?;
    }
    // stage 1 is the child of a fork: single-threaded whatever the runtime was
    let proof = crate::threads::SingleThreaded::in_forked_child();
    match sys::fork(proof).ctx(|| "failed to fork the container init".to_owned())? {
        Fork::Child => init(cfg, chan),
        Fork::Parent(pid) => {
            chan.send(&ChildMsg::InitPid { pid })
                .map_err(|e| Failure::new(e.to_string()))?;
            Ok(())
        }
    }
}

fn expect_msg(chan: &Channel, ok: impl Fn(&ParentMsg) -> bool) -> Result<ParentMsg, Failure> {
    let m: ParentMsg = chan
        .recv()
        .map_err(|e| Failure::new(format!("sync with the runtime failed: {e}")))?;
    if ok(&m) {
        Ok(m)
    } else {
        Err(Failure::new(format!(
            "unexpected message from the runtime: {m:?}"
        )))
    }
}

/// The init (or exec) process. Never returns.
fn init(cfg: &ChildConfig<'_>, chan: &Channel) -> ! {
    let mut ready = false;
    let Err(f) = init_inner(cfg, chan, &mut ready);
    if ready {
        // the runtime is gone: stderr is all we have
        let _ = writeln!(
            std::io::stderr(),
            "berth-runtime: {}{}",
            f.what,
            f.os_error().map(|e| format!(": {e}")).unwrap_or_default()
        );
        std::process::exit(127);
    }
    let _ = chan.send(&ChildMsg::Failed(f));
    std::process::exit(1)
}

fn init_inner(
    cfg: &ChildConfig<'_>,
    chan: &Channel,
    ready: &mut bool,
) -> Result<Infallible, Failure> {
    let _ = rustix::process::set_parent_process_death_signal(None);
    let state = match expect_msg(chan, |m| matches!(m, ParentMsg::Start { .. }))? {
        ParentMsg::Start { state } => state,
        _ => String::new(),
    };
    let spec = cfg.spec;
    let process = cfg.process;
    let all_hooks = spec.hooks.as_ref();
    if let Some(rp) = &cfg.rootfs {
        // without a mount namespace of its own this is the runtime's: see `rootfs`
        rootfs::prepare_root(rp)?;
        let root = rootfs::open_root(rp)?;
        rootfs::mount_all(rp, root.as_fd())?;
        rootfs::create_devices(spec, root.as_fd(), rp.userns)?;
        rootfs::dev_symlinks(spec, root.as_fd())?;
        drop(root);
        // the runtime runs prestart and createRuntime hooks now; without any, no round trip
        let runtime_hooks = all_hooks.is_some_and(|h| {
            h.prestart.as_ref().is_some_and(|v| !v.is_empty())
                || h.create_runtime.as_ref().is_some_and(|v| !v.is_empty())
        });
        if runtime_hooks {
            chan.send(&ChildMsg::Hooks)
                .map_err(|e| Failure::new(e.to_string()))?;
            expect_msg(chan, |m| matches!(m, ParentMsg::HooksDone))?;
        }
        if let Some(h) = all_hooks.and_then(|h| h.create_container.as_deref()) {
            hooks::run("createContainer", h, state.as_bytes())
                .map_err(|e| Failure::new(error_chain(&e)))?;
        }
        rootfs::enter(rp)?;
        rootfs::finish(rp)?;
    }
    if cfg.rootfs.is_some() {
        if let Some(h) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
            rustix::system::sethostname(h.as_bytes())
                .ctx(|| format!("failed to set hostname {h}"))?;
        }
        if let Some(d) = spec.domainname.as_deref().filter(|d| !d.is_empty()) {
            rustix::system::setdomainname(d.as_bytes())
                .ctx(|| format!("failed to set domainname {d}"))?;
        }
        rootfs::write_sysctls(spec)?;
        rootfs::readonly_paths(spec)?;
        rootfs::mask_paths(spec)?;
        rootfs::unbindable_root(spec)?;
    }
    if !cfg.no_new_keyring {
        match sys::join_session_keyring(&format!("_ses.{}", cfg.id)) {
            Ok(()) => {}
            // no keyring support (or a seccomp profile of an outer runtime refusing it)
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {}
            Err(e) => return Err(Failure::io("failed to join a new session keyring", &e)),
        }
    }
    process::set_oom_score_adj(process)?;
    process::set_rlimits(process)?;
    if process.terminal.unwrap_or(false) {
        let master = tty::setup_pty(process)?;
        chan.send_with_fds(&ChildMsg::Pty, &[master.as_fd()])
            .map_err(|e| Failure::new(e.to_string()))?;
    }
    process::enter_cwd(process)?;
    let plan = process::exec_plan(process, &cfg.extra_env)?;
    // Nothing of the runtime crosses exec but stdio and the descriptors handed over. Marked
    // now, before the seccomp filter is loaded: nothing after the filter may depend on a
    // system call the profile can deny (close_range is missing from many profiles). Every
    // descriptor opened from here on is close-on-exec.
    sys::cloexec_from(cfg.keep_fds as u32)
        .ctx(|| "failed to mark descriptors close-on-exec".to_owned())?;
    for fd in 3..cfg.keep_fds {
        if let Some(owned) = sys::inherited_fd(fd) {
            let _ = rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::empty());
            std::mem::forget(owned);
        }
    }
    process::apply_lsm(process)?;
    let nnp = process.no_new_privileges.unwrap_or(false);
    if nnp {
        rustix::thread::set_no_new_privs(true).ctx(|| "failed to set no_new_privs".to_owned())?;
    }
    let mut listener = None;
    if let Some(f) = cfg.seccomp.filter(|_| !nnp) {
        listener = f.load().map_err(|e| Failure::new(error_chain(&e)))?;
    }
    let setgroups = process::setgroups_allowed();
    if let Some(c) = &process.capabilities {
        caps::drop_bounding(c)?;
        rustix::thread::set_keep_capabilities(true).ctx(|| "failed to set keepcaps".to_owned())?;
        process::set_user(process, setgroups)?;
        rustix::thread::set_keep_capabilities(false)
            .ctx(|| "failed to clear keepcaps".to_owned())?;
        caps::apply(c)?;
    } else {
        process::set_user(process, setgroups)?;
    }
    process::set_umask(process);
    if let Some(f) = cfg.seccomp.filter(|_| nnp) {
        listener = f.load().map_err(|e| Failure::new(error_chain(&e)))?;
    }
    if let Some(l) = listener
        && let Some(path) = spec
            .linux
            .as_ref()
            .and_then(|l| l.seccomp.as_ref())
            .and_then(|s| s.listener_path.as_ref())
    {
        let meta = spec
            .linux
            .as_ref()
            .and_then(|l| l.seccomp.as_ref())
            .and_then(|s| s.listener_metadata.clone())
            .unwrap_or_default();
        let st: serde_json::Value = serde_json::from_str(&state).unwrap_or_default();
        let msg = serde_json::json!({
            "ociVersion": spec.version,
            "fds": ["seccompFd"],
            "pid": st.get("pid").cloned().unwrap_or_default(),
            "metadata": meta,
            "state": st,
        });
        crate::seccomp::send_listener(path, l.as_fd(), msg.to_string().as_bytes())
            .map_err(|e| Failure::new(error_chain(&e)))?;
    }
    chan.send(&ChildMsg::Ready)
        .map_err(|e| Failure::new(e.to_string()))?;
    *ready = true;
    // the runtime is done with us: the sync socket carries nothing more (errors from here
    // on go to the container's stderr); shut it down so that it is dead while we wait
    let _ = rustix::net::shutdown(chan.fd(), rustix::net::Shutdown::Both);
    if let Some(fifo) = &cfg.fifo {
        // blocks until `start` opens the fifo for reading
        let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
        let f = rustix::fs::open(
            path.as_str(),
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ctx(|| "failed to open the exec fifo".to_owned())?;
        rustix::io::write(&f, b"0").ctx(|| "failed to write to the exec fifo".to_owned())?;
        drop(f);
        if let Some(h) = all_hooks.and_then(|h| h.start_container.as_deref()) {
            hooks::run("startContainer", h, state.as_bytes())
                .map_err(|e| Failure::new(error_chain(&e)))?;
        }
    }
    sys::reset_signals();
    Err(Failure::io(
        format!("failed to execute {}", plan.path.to_string_lossy()),
        &sys::execve(&plan.path, &plan.argv, &plan.envp),
    ))
}

pub(crate) use berth_errdefs::error_chain;

/// setresgid/setresuid to 0 in the user namespace just created or joined.
fn become_root() -> Result<(), Failure> {
    let root_g = rustix::process::Gid::ROOT;
    rustix::thread::set_thread_res_gid(root_g, root_g, root_g)
        .ctx(|| "failed to become gid 0 in the user namespace".to_owned())?;
    let root_u = rustix::process::Uid::ROOT;
    rustix::thread::set_thread_res_uid(root_u, root_u, root_u)
        .ctx(|| "failed to become uid 0 in the user namespace".to_owned())?;
    Ok(())
}
