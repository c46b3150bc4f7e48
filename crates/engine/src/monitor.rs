//! The per-container monitor (conmon's and containerd's shim's job), run as
//! `MONITOR STATE_ROOT ID [--start] [--wait]` (the `berth` binary's hidden `__monitor` mode,
//! or the `berth-monitor` binary): single-threaded, no async runtime.
//!
//! It forks once more and the parent exits (so the caller reaps it at once and the monitor
//! is reparented away from the `berth` command), starts a new session (with `--wait`, then
//! waits for `go` on its stdin: started before its container was prepared), becomes the
//! child subreaper, holds `monitor.lock` for its whole life (how others tell that it is
//! alive), runs `RUNTIME create` (`--start`: `RUNTIME run --detach`) with the container's
//! stdout/stderr on two pipes, relays those to the log (`crate::logs`), waits for the init (a
//! pidfd in the same poll as the pipes), records the exit code, runs `RUNTIME delete --force`
//! and, for `--rm`, removes the record (the `delete` running meanwhile).
//!
//! It talks to the engine through its stdout, a pipe: `ok\n` once the container is created
//! (or `error: MESSAGE\n`), `log\n` whenever the log grew (never blocking: dropped when the
//! pipe is full), then `exit CODE\n` (`exit unknown\n`) when the init is gone.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};

use berth_fsutil::FileLock;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{
    Pid, PidfdFlags, WaitOptions, getpid, pidfd_open, set_child_subreaper, setsid, wait,
};

use crate::logs::LogWriter;
use crate::record::{self, Layout, Status};
use crate::runtime::Runtime;

/// The monitor's entry point; returns the process exit status.
pub fn main(args: &[OsString]) -> i32 {
    let usage = || {
        let _ = writeln!(
            std::io::stderr(),
            "usage: MONITOR STATE_ROOT CONTAINER_ID [{START_FLAG}] [{WAIT_FLAG}]"
        );
        2
    };
    let [root, id, flags @ ..] = args else {
        return usage();
    };
    let (mut start, mut wait) = (false, false);
    for f in flags {
        match f.to_str() {
            Some(START_FLAG) => start = true,
            Some(WAIT_FLAG) => wait = true,
            _ => return usage(),
        }
    }
    let Some(id) = id.to_str().map(str::to_owned) else {
        return 2;
    };
    // SAFETY: the monitor is single-threaded (it is a fresh process that started no thread),
    // so the child of fork() may run any code.
    #[allow(
        unsafe_code,
        reason = "fork: the daemonizing second fork, no rustix equivalent"
    )]
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => {
            let _ = writeln!(
                std::io::stdout(),
                "error: fork: {}",
                std::io::Error::last_os_error()
            );
            return 1;
        }
        0 => {}
        _ => return 0,
    }
    let _ = setsid();
    let layout = Layout {
        root: PathBuf::from(root),
    };
    if wait && !wait_for_go(&layout, &id) {
        return 0;
    }
    let mut ready = std::io::stdout();
    match monitor(&layout, &id, start, &mut ready) {
        Ok(()) => 0,
        Err(message) => {
            let _ = writeln!(ready, "error: {}", message.replace('\n', " "));
            let _ = writeln!(std::io::stderr(), "monitor {id}: {message}");
            1
        }
    }
}

/// What the monitor writes on its report pipe when the container's log grew (between `ok`
/// and `exit`; readers skip it, or look at the log again).
pub const REPORT_LOG: &[u8] = b"log\n";

/// Set or clear `O_NONBLOCK` on `fd`; whether it worked.
fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>, on: bool) -> bool {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let Ok(flags) = fcntl_getfl(fd) else {
        return false;
    };
    let flags = if on {
        flags | OFlags::NONBLOCK
    } else {
        flags & !OFlags::NONBLOCK
    };
    fcntl_setfl(fd, flags).is_ok()
}

/// The monitor's flag to wait, before it touches anything, until the engine writes [`GO`]
/// on its stdin (a pipe; [`crate::Engine::spawn_monitor`]): started ahead of its container.
pub const WAIT_FLAG: &str = "--wait";

/// What the engine writes to a waiting monitor once the container's record exists.
pub const GO: &[u8] = b"go\n";

/// Wait for [`GO`] on stdin; `false` when the pipe closed without it (the engine gave up:
/// exit without a trace). Then stdin becomes /dev/null and stderr the container's
/// `monitor.log`, as for a monitor started the ordinary way.
fn wait_for_go(layout: &Layout, id: &str) -> bool {
    let mut got = Vec::with_capacity(GO.len());
    let mut buf = [0u8; 8];
    while got.len() < GO.len() {
        match rustix::io::read(rustix::stdio::stdin(), &mut buf) {
            Ok(0) => return false,
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
    if got != GO {
        return false;
    }
    if let Ok(null) = File::open("/dev/null") {
        let _ = rustix::stdio::dup2_stdin(&null);
    }
    if let Ok(log) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.dir(id).join("monitor.log"))
    {
        let _ = rustix::stdio::dup2_stderr(&log);
    }
    true
}

/// The monitor's optional third argument: start the container as soon as it is created, and
/// record it `running` in the same record write that records its pids (`run`, `run -d`:
/// nobody attaches between the create and the start), then report `ok`.
pub const START_FLAG: &str = "--start";

fn monitor(layout: &Layout, id: &str, start: bool, ready: &mut impl Write) -> Result<(), String> {
    let lock_path = layout.monitor_lock(id);
    let _alive = FileLock::exclusive(&lock_path)
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    set_child_subreaper(Some(getpid())).map_err(|e| format!("PR_SET_CHILD_SUBREAPER: {e}"))?;
    let rec = record::read(layout, id).map_err(|e| e.to_string())?;
    let rt = Runtime {
        path: rec.runtime.clone(),
        root: rec.runtime_root.clone(),
    };
    let dir = layout.dir(id);
    let pid_file = dir.join("init.pid");
    let rt_log = dir.join("runtime.log");
    let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("pipe: {e}"))?;
    let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("pipe: {e}"))?;
    // -i without -t: the init's stdin is a pipe whose write end we keep
    let (stdin_r, stdin_w) = if rec.stdin && !rec.terminal {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| format!("pipe: {e}"))?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    // sockets are named through /proc/PID/fd/DIRFD/NAME: a state root deep enough makes
    // their full paths longer than a sockaddr_un holds (108 bytes)
    let dir_fd = rustix::fs::open(
        &dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("opening {}: {e}", dir.display()))?;
    let short = |name: &str| {
        PathBuf::from(format!(
            "/proc/{}/fd/{}/{name}",
            getpid().as_raw_nonzero(),
            dir_fd.as_raw_fd()
        ))
    };
    let console_path = layout.console_socket(id);
    let console = if rec.terminal {
        let _ = std::fs::remove_file(&console_path);
        let l = UnixListener::bind(short("console.sock"))
            .map_err(|e| format!("binding {}: {e}", console_path.display()))?;
        Some(l)
    } else {
        None
    };
    let attach_path = layout.attach_socket(id);
    let _ = std::fs::remove_file(&attach_path);
    let attach = UnixListener::bind(short("attach.sock"))
        .map_err(|e| format!("binding {}: {e}", attach_path.display()))?;
    std::fs::set_permissions(&attach_path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", attach_path.display()))?;
    let mut log = LogWriter::open(&rec.log_path, rec.log_max_size)
        .map_err(|e| format!("opening the log {}: {e}", rec.log_path.display()))?;

    // started at once: `RUNTIME run --detach` is `create` then `start` in one runtime
    // process (runc, crun and berth-runtime all have it), one process fewer than the two
    let op = if start { "run" } else { "create" };
    let status = {
        let mut cmd = rt.command([
            "--log".as_ref(),
            rt_log.as_os_str(),
            op.as_ref(),
            "--bundle".as_ref(),
            rec.bundle.as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
        ]);
        if op == "run" {
            cmd.arg("--detach");
        }
        if console.is_some() {
            cmd.arg("--console-socket").arg(short("console.sock"));
        }
        cmd.arg(id);
        cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
        if let Some(r) = stdin_r {
            cmd.stdin(Stdio::from(r));
        }
        cmd.status()
        // cmd (and with it our copies of the write ends) is dropped here
    };
    let status = status.map_err(|e| format!("running {} {op}: {e}", rt.path.display()))?;
    if !status.success() {
        let mut msg = std::fs::read_to_string(&rt_log).unwrap_or_default();
        // what the runtime wrote before it exited, without waiting for the end of the pipe:
        // a runtime that died after making the init leaves it holding the write end
        let mut err = Vec::new();
        if set_nonblocking(err_r.as_fd(), true) {
            let _ = File::from(err_r).read_to_end(&mut err);
        }
        msg.push_str(&String::from_utf8_lossy(&err));
        return Err(format!(
            "{} {op} exited with {status}: {}",
            rt.path.display(),
            msg.trim()
        ));
    }
    // the runtime connected and sent the master before `create` returned: it waits in the
    // listener's backlog
    let master = match console {
        Some(l) => {
            let m = receive_master(&l).map_err(|e| {
                format!(
                    "{} create sent no pty master to {}: {e}",
                    rt.path.display(),
                    console_path.display()
                )
            })?;
            drop(l);
            let _ = std::fs::remove_file(&console_path);
            Some(m)
        }
        None => None,
    };
    let pid_text = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("reading {}: {e}", pid_file.display()))?;
    let init: i32 = pid_text
        .trim()
        .parse()
        .map_err(|_| format!("bad pid file {}: {pid_text:?}", pid_file.display()))?;
    let init_pid =
        Pid::from_raw(init).ok_or_else(|| format!("bad pid {init} in {}", pid_file.display()))?;
    let init_start = record::proc_start_time(init);
    if start && op == "create" {
        // the init is our child: however soon it exits, it waits for the relay below
        rt.start(id).map_err(|e| match e {
            crate::EngineError::Runtime { stderr, .. } => {
                format!("{} start failed: {stderr}", rt.path.display())
            }
            e => e.to_string(),
        })?;
    }
    // one durable write: `created`, or (started) `running` with its start time
    record::update(layout, id, |r| {
        r.status = if start {
            Status::Running
        } else {
            Status::Created
        };
        if start {
            r.started = Some(record::now());
        }
        r.monitor_pid = Some(getpid().as_raw_nonzero().get());
        r.init_pid = Some(init);
        r.init_start = init_start;
    })
    .map_err(|e| e.to_string())?;
    let _ = ready.write_all(b"ok\n");
    let _ = ready.flush();

    let pidfd = pidfd_open(init_pid, PidfdFlags::empty()).ok();
    let mut io =
        Io::new(attach, out_r, err_r, master, stdin_w, rec.stdin).map_err(|e| e.to_string())?;
    // `log` on the report pipe whenever the log grew, for a foreground `run` relaying it (no
    // inotify watch there: closing one waits for an SRCU grace period, milliseconds at
    // every exit). Never blocking: when the pipe is full the reader has lines still to read,
    // each of which makes it look at the log again; nobody reading (`run -d`) is EPIPE.
    let report = std::io::stdout();
    let stdout = report.as_fd();
    let notify_ok = set_nonblocking(stdout, true);
    let mut notify = || {
        if notify_ok {
            let _ = rustix::io::write(stdout, REPORT_LOG);
        }
    };
    let (code, note) = relay(&mut log, &mut io, pidfd, init_pid, &mut notify);
    if notify_ok {
        set_nonblocking(stdout, false);
    }
    drop(io);
    let _ = std::fs::remove_file(&attach_path);
    let _ = log.flush();
    // read before `delete` removes the cgroup
    let oom_killed = crate::oom::killed(&rec.bundle);
    // `delete` (the runtime's state and the cgroup) runs while an `--rm` container's own
    // removal (unmount, snapshot, record) goes on here: neither needs the other's part
    // (berth gives the runtime no hooks that could want the root filesystem)
    let deleting = if rec.auto_remove {
        rt.spawn_delete_force(id).ok()
    } else {
        let _ = rt.delete_force(id);
        None
    };
    let exited = |r: &mut record::Record| {
        r.oom_killed = oom_killed;
        r.status = Status::Exited;
        r.exit_code = code;
        r.finished = Some(record::now());
        r.note = note.clone();
    };
    let mut leftovers = None;
    if rec.auto_remove {
        // --rm: removed at once, without first writing (and fsyncing) an `exited` record
        // that is deleted right after. A crash before the removal leaves the `running`
        // record, which `ps` reconciles to exited (as after a crash a moment earlier); a
        // failed removal records the exit and leaves the container for `rm`.
        // (not found: removed meanwhile, `rm -f`)
        if let Ok(current) = record::read(layout, id) {
            match record::remove_leaving(layout, &current) {
                Ok(left) => leftovers = Some(left),
                Err(e) => {
                    let _ = record::update(layout, id, exited);
                    if let Some(d) = deleting {
                        let _ = d.finish();
                    }
                    return Err(e.to_string());
                }
            }
        }
    } else {
        // removed meanwhile (`rm -f`): nothing to record
        let _ = record::update(layout, id, exited);
    }
    if let Some(d) = deleting {
        let _ = d.finish();
    }
    // reported last: whoever waits sees the record (or its absence, for --rm) final
    let _ = match code {
        Some(c) => writeln!(ready, "exit {c}"),
        None => writeln!(ready, "exit unknown"),
    };
    let _ = ready.flush();
    // a container kept after its exit gives its networks back now, as docker's and podman's
    // do (after the report: a foreground `run` does not wait for the plugins' DEL; `rm`
    // waits for this monitor before it reads the record)
    if !rec.auto_remove
        && let Err(e) = crate::network::release_exited(layout, id)
        && !matches!(e, crate::EngineError::NotFound(_))
    {
        // `rm` detaches what is still recorded
        let _ = writeln!(std::io::stderr(), "monitor {id}: {e}");
    }
    // the removed container's files (its snapshot's upper and work directories, its own
    // directory) are deleted after the report: nothing names them any more, and deleting
    // them (a discard per freed extent on a disk mounted with `discard`) is no part of the
    // answer `run --rm` waits for
    if let Some(left) = leftovers
        && let Err(e) = left.delete()
    {
        // a later sweep (the engine's next start, the snapshot store's next open) retries
        let _ = writeln!(std::io::stderr(), "monitor {id}: {e}");
    }
    Ok(())
}

/// Receive the pty master the runtime sent to the console socket (runc's protocol: one
/// message with the fd in `SCM_RIGHTS`).
fn receive_master(l: &UnixListener) -> std::io::Result<OwnedFd> {
    l.set_nonblocking(true)?;
    let (conn, _) = l.accept()?;
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    recvmsg(&conn, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
    let mut master = None;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for fd in fds {
                // the first one is the master; others (none expected) are closed here
                if master.is_none() {
                    master = Some(fd);
                }
            }
        }
    }
    master.ok_or_else(|| std::io::Error::other("a message without SCM_RIGHTS"))
}

/// One attached caller.
struct Client {
    conn: UnixStream,
    buf: Vec<u8>,
    /// It feeds stdin, and its detach closes it (docker's `StdinOnce`).
    feeds_stdin: bool,
}

/// What the monitor relays: the init's output (two pipes, or the pty master), its input (a
/// pipe's write end, or the master), the attach listener and the attached callers.
struct Io {
    /// stdout pipe, stderr pipe, pty master (logged and sent as stdout).
    outputs: [Option<OwnedFd>; 3],
    /// Where callers' stdin goes; `None` once closed (or without `-i`).
    input: Option<OwnedFd>,
    /// The pty master, for window sizes.
    tty: Option<OwnedFd>,
    pending_in: Vec<u8>,
    close_input: bool,
    listener: UnixListener,
    clients: Vec<Client>,
}

impl Io {
    fn new(
        listener: UnixListener,
        out: OwnedFd,
        err: OwnedFd,
        master: Option<OwnedFd>,
        stdin: Option<OwnedFd>,
        open_stdin: bool,
    ) -> std::io::Result<Io> {
        listener.set_nonblocking(true)?;
        let (input, tty) = match &master {
            Some(m) => {
                // non-blocking: a container that reads no input must not stall the monitor
                rustix::io::ioctl_fionbio(m, true)?;
                // `-t` without `-i`: nobody types into the pty (docker's OpenStdin=false)
                let input = if open_stdin {
                    Some(rustix::io::dup(m)?)
                } else {
                    None
                };
                (input, Some(rustix::io::dup(m)?))
            }
            None => {
                if let Some(i) = &stdin {
                    rustix::io::ioctl_fionbio(i, true)?;
                }
                (stdin, None)
            }
        };
        Ok(Io {
            outputs: [Some(out), Some(err), master],
            input,
            tty,
            pending_in: Vec::new(),
            close_input: false,
            listener,
            clients: Vec::new(),
        })
    }

    /// Send output to every caller; one that does not take it within the timeout is dropped.
    fn broadcast(&mut self, stream: u8, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let f = crate::attach::frame(stream, data);
        let mut gone = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            if c.conn.write_all(&f).is_err() {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.drop_client(i);
        }
    }

    fn drop_client(&mut self, i: usize) {
        if i < self.clients.len() {
            let c = self.clients.remove(i);
            if c.feeds_stdin && self.tty.is_none() {
                self.close_input = true;
            }
        }
    }

    /// Accept a caller and do its handshake (bounded by timeouts: callers are root).
    fn accept(&mut self) {
        let Ok((conn, _)) = self.listener.accept() else {
            return;
        };
        let hello = || -> std::io::Result<Client> {
            conn.set_nonblocking(false)?;
            conn.set_read_timeout(Some(crate::attach::HANDSHAKE_TIMEOUT))?;
            conn.set_write_timeout(Some(crate::attach::HANDSHAKE_TIMEOUT))?;
            let mut head = [0u8; 5];
            (&conn).read_exact(&mut head)?;
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            if head[0] != crate::attach::HELLO || len > 64 {
                return Err(std::io::Error::other("not a hello"));
            }
            let mut p = vec![0u8; len];
            (&conn).read_exact(&mut p)?;
            if let Some((rows, cols)) = crate::attach::parse_size(&p) {
                self.resize(rows, cols);
            }
            let feeds_stdin = p
                .get(4)
                .is_some_and(|f| f & crate::attach::HELLO_STDIN != 0);
            (&conn).write_all(&crate::attach::frame(crate::attach::ACK, &[]))?;
            conn.set_read_timeout(None)?;
            Ok(Client {
                conn: conn.try_clone()?,
                buf: Vec::new(),
                feeds_stdin,
            })
        };
        if let Ok(c) = hello() {
            self.clients.push(c);
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        if let Some(t) = &self.tty
            && rows > 0
            && cols > 0
        {
            let ws = rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let _ = rustix::termios::tcsetwinsize(t, ws);
        }
    }

    /// Read what caller `i` sent; `false` when it is gone.
    fn read_client(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let Some(c) = self.clients.get_mut(i) else {
            return false;
        };
        let n = match (&c.conn).read(buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        c.buf.extend_from_slice(buf.get(..n).unwrap_or_default());
        let mut frames = Vec::new();
        loop {
            match crate::attach::take_frame(&mut c.buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => return false,
            }
        }
        for (kind, p) in frames {
            match kind {
                crate::attach::STDIN if self.input.is_some() && !self.close_input => {
                    self.pending_in.extend_from_slice(&p);
                }
                crate::attach::STDIN_CLOSE if self.tty.is_none() => self.close_input = true,
                crate::attach::DETACH => {
                    // detach keys: this caller leaves, the container's stdin stays open
                    if let Some(c) = self.clients.get_mut(i) {
                        c.feeds_stdin = false;
                    }
                }
                crate::attach::RESIZE => {
                    if let Some((r, c)) = crate::attach::parse_size(&p) {
                        self.resize(r, c);
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Write pending input without blocking; close the input once asked and flushed.
    fn flush_input(&mut self) {
        if let Some(fd) = &self.input {
            while !self.pending_in.is_empty() {
                match rustix::io::write(fd, &self.pending_in) {
                    Ok(n) => {
                        self.pending_in.drain(..n);
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(rustix::io::Errno::AGAIN) => return,
                    Err(_) => {
                        // the reader is gone
                        self.pending_in.clear();
                        self.input = None;
                        return;
                    }
                }
            }
        }
        if self.close_input && self.pending_in.is_empty() && self.tty.is_none() {
            self.input = None;
        }
    }
}

/// Relay the output to the log and the attached callers, and callers' input to the init,
/// until the init has exited and the output is drained (or stays quiet for a moment: a
/// process outside a pid namespace may keep a pipe open).
fn relay(
    log: &mut LogWriter,
    io: &mut Io,
    pidfd: Option<OwnedFd>,
    init: Pid,
    notify: &mut dyn FnMut(),
) -> (Option<i32>, Option<String>) {
    const LISTENER: usize = 3;
    const PIDFD: usize = 4;
    const INPUT: usize = 5;
    const CLIENT: usize = 6;
    let mut exit: Option<(Option<i32>, Option<String>)> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let drain = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    let tick = rustix::event::Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        if exit.is_some() && io.outputs.iter().all(Option::is_none) {
            break;
        }
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(8);
        let mut which: Vec<usize> = Vec::with_capacity(8);
        for (i, p) in io.outputs.iter().enumerate() {
            if let Some(p) = p {
                fds.push(PollFd::new(p, PollFlags::IN));
                which.push(i);
            }
        }
        fds.push(PollFd::new(&io.listener, PollFlags::IN));
        which.push(LISTENER);
        if exit.is_none()
            && let Some(pfd) = &pidfd
        {
            fds.push(PollFd::new(pfd, PollFlags::IN));
            which.push(PIDFD);
        }
        if !io.pending_in.is_empty()
            && let Some(i) = &io.input
        {
            fds.push(PollFd::new(i, PollFlags::OUT));
            which.push(INPUT);
        }
        // callers are not read while input is backed up (the container is not reading)
        if io.pending_in.len() < 64 * 1024 {
            for (k, c) in io.clients.iter().enumerate() {
                fds.push(PollFd::new(&c.conn, PollFlags::IN));
                which.push(CLIENT + k);
            }
        }
        // without a pidfd, look at the init once a second
        let timeout = if exit.is_some() {
            Some(&drain)
        } else if pidfd.is_none() {
            Some(&tick)
        } else {
            None
        };
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => 0,
        };
        let ready: Vec<(usize, PollFlags)> = fds
            .iter()
            .zip(&which)
            .map(|(f, &w)| (w, f.revents()))
            .collect();
        drop(fds);
        if n == 0 && exit.is_some() {
            break;
        }
        let mut gone_clients = Vec::new();
        let mut logged = false;
        for (w, rev) in ready {
            if rev.is_empty() {
                continue;
            }
            match w {
                0..=2 => {
                    let Some(fd) = io.outputs[w].as_ref() else {
                        continue;
                    };
                    match rustix::io::read(fd.as_fd(), &mut buf) {
                        // EIO: a pty master whose last slave closed
                        Ok(0) => io.outputs[w] = None,
                        Ok(k) => {
                            let data = buf.get(..k).unwrap_or_default();
                            let stream = if w == 1 { 1 } else { 0 };
                            let _ = log.feed(stream, data);
                            logged = true;
                            let kind = if w == 1 {
                                crate::attach::STDERR
                            } else {
                                crate::attach::STDOUT
                            };
                            io.broadcast(kind, data);
                        }
                        Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                        Err(_) => io.outputs[w] = None,
                    }
                }
                LISTENER => io.accept(),
                INPUT => io.flush_input(),
                PIDFD => {}
                k => {
                    if !io.read_client(k - CLIENT, &mut buf) {
                        gone_clients.push(k - CLIENT);
                    }
                }
            }
        }
        if logged {
            notify();
        }
        gone_clients.sort_unstable();
        for i in gone_clients.into_iter().rev() {
            io.drop_client(i);
        }
        io.flush_input();
        // reap every child we have (runtime leftovers reparented to us, and the init)
        loop {
            // wait(), not waitpid(None): that is wait4(0), our process group only, and the
            // init leads its own. __WALL: runc's init is a clone() child that does not signal SIGCHLD on exit
            // (CLONE_PARENT from its stage-1), which a plain wait does not see
            let all = WaitOptions::from_bits_retain(libc::__WALL.cast_unsigned());
            match wait(WaitOptions::NOHANG | all) {
                Ok(Some((pid, st))) => {
                    if pid == init {
                        let code = st
                            .exit_status()
                            .or_else(|| st.terminating_signal().map(|s| 128 + s));
                        exit = Some((code, None));
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    // no children: the init is not ours (or is gone)
                    if exit.is_none() && !record::alive(init.as_raw_nonzero().get(), None) {
                        exit = Some((
                            None,
                            Some("the init was not the monitor's child".to_owned()),
                        ));
                    }
                    break;
                }
            }
        }
    }
    exit.unwrap_or((None, None))
}
