//! Waiting in the foreground (`run`, `exec` without `--detach`): signals received are
//! forwarded to the process, SIGWINCH resizes its terminal, the terminal is copied to and
//! from our stdio, and the process's exit status becomes ours (128+n for a signal).
//!
//! As runc's `signals.go`: every signal is forwarded except SIGCHLD (reaping), SIGWINCH
//! (resize) and SIGURG (ignored: Go uses it for preemption, and runc drops it). The caller
//! takes the signals with [`catch_signals`] before it creates the container, as runc
//! installs its handler before `Run`: a SIGTERM that arrives during create, hooks or start
//! is held and forwarded once the process runs, instead of killing the runtime and
//! leaving a half-made container behind.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{PollFd, PollFlags};
use rustix::process::WaitOptions;

use crate::sys;

/// What to wait for.
#[derive(Debug)]
pub struct ForegroundOptions {
    /// Host pid of the process (a child of ours: we are its subreaper).
    pub pid: i32,
    /// The terminal's master when the process has one and no console socket took it.
    pub pty: Option<OwnedFd>,
    /// The signalfd from [`catch_signals`], taken before the process was made; `None`:
    /// take the signals now.
    pub signals: Option<OwnedFd>,
}

/// Block every signal (but SIGKILL and SIGSTOP) and return a signalfd receiving them, for
/// [`ForegroundOptions::signals`]. Processes forked from here on reset their mask (the
/// container's stage 1 and its process do, hooks are spawned by `std::process`, which
/// does).
pub fn catch_signals() -> std::io::Result<OwnedFd> {
    sys::block_signals_to_fd()
}

/// The terminal the foreground process's terminal is proxied to, as runc's
/// `initHostConsole`: the first of stderr, stdout and stdin that is a terminal, else the
/// controlling terminal (`/dev/tty`). An error when there is none: then nothing can show
/// the container's terminal nor switch it to raw mode, and runc refuses the same way.
pub fn host_console() -> std::io::Result<OwnedFd> {
    use rustix::stdio::{stderr, stdin, stdout};
    for fd in [stderr(), stdout(), stdin()] {
        if rustix::termios::isatty(fd) {
            return Ok(rustix::io::fcntl_dupfd_cloexec(fd, 3)?);
        }
    }
    let tty = rustix::fs::open(
        "/dev/tty",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    Ok(tty)
}

fn exit_code(status: rustix::process::WaitStatus) -> Option<i32> {
    if let Some(code) = status.exit_status() {
        return Some(code);
    }
    status.terminating_signal().map(|s| 128 + s)
}

/// Reap children until the target is among them; its exit code.
fn reap(target: i32) -> Option<i32> {
    let mut found = None;
    loop {
        // wait(): any child (pid -1); waitpid(None) is wait4(0), only this process group,
        // and a container with a terminal runs in a session of its own.
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                if pid.as_raw_nonzero().get() == target {
                    found = exit_code(status);
                }
            }
            _ => return found,
        }
    }
}

fn resize(pty: &OwnedFd, console: Option<&OwnedFd>) {
    let Some(console) = console else { return };
    if let Ok(ws) = rustix::termios::tcgetwinsize(console) {
        let _ = rustix::termios::tcsetwinsize(pty, ws);
    }
}

/// Wait for the process; returns its exit code.
pub fn wait_foreground(mut opts: ForegroundOptions) -> std::io::Result<i32> {
    let sigfd = match opts.signals.take() {
        Some(fd) => fd,
        None => sys::block_signals_to_fd()?,
    };
    let console = opts.pty.as_ref().and_then(|_| host_console().ok());
    let saved = match (&opts.pty, &console) {
        (Some(pty), Some(con)) => {
            resize(pty, Some(con));
            match rustix::termios::tcgetattr(con) {
                Ok(t) => {
                    let mut raw = t.clone();
                    raw.make_raw();
                    let _ = rustix::termios::tcsetattr(
                        con,
                        rustix::termios::OptionalActions::Now,
                        &raw,
                    );
                    Some(t)
                }
                Err(_) => None,
            }
        }
        _ => None,
    };
    let result = loop_until_exit(&opts, &sigfd, console.as_ref());
    if let (Some(t), Some(con)) = (saved, &console) {
        let _ = rustix::termios::tcsetattr(con, rustix::termios::OptionalActions::Now, &t);
    }
    result
}

fn loop_until_exit(
    opts: &ForegroundOptions,
    sigfd: &OwnedFd,
    console: Option<&OwnedFd>,
) -> std::io::Result<i32> {
    let mut buf = [0u8; 8192];
    if let Some(code) = reap(opts.pid) {
        // it may have exited before we got here, its output still in the terminal
        drain_pty(opts, &mut buf);
        return Ok(code);
    }
    let stdin = rustix::stdio::stdin();
    let mut stdin_open = opts.pty.is_some();
    let mut pty_open = opts.pty.is_some();
    loop {
        let mut fds = vec![PollFd::new(sigfd, PollFlags::IN)];
        if let (Some(p), true) = (&opts.pty, pty_open) {
            fds.push(PollFd::new(p, PollFlags::IN));
        }
        if stdin_open {
            fds.push(PollFd::from_borrowed_fd(stdin, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let rev: Vec<PollFlags> = fds.iter().map(|f| f.revents()).collect();
        drop(fds);
        if !rev[0].is_empty() {
            let sig = sys::read_signalfd(sigfd.as_fd())?;
            if sig == libc::SIGCHLD {
                if let Some(code) = reap(opts.pid) {
                    drain_pty(opts, &mut buf);
                    return Ok(code);
                }
            } else if sig == libc::SIGWINCH {
                if let Some(p) = &opts.pty {
                    resize(p, console);
                }
            } else if sig == libc::SIGURG {
                // runc ignores it (the Go runtime's preemption signal)
            } else if opts.pid > 0 {
                // realtime signals too, which rustix's `Signal` does not name
                let _ = sys::kill_raw(opts.pid, sig);
            }
        }
        let mut i = 1;
        if let (Some(p), true) = (&opts.pty, pty_open) {
            if !rev[i].is_empty() {
                match rustix::io::read(p, &mut buf) {
                    Ok(0) | Err(_) => pty_open = false,
                    Ok(n) => {
                        let mut out = std::io::stdout();
                        let _ = out.write_all(&buf[..n]);
                        let _ = out.flush();
                    }
                }
            }
            i += 1;
        }
        if stdin_open && !rev[i].is_empty() {
            match std::io::stdin().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if let Some(p) = &opts.pty {
                        let _ = rustix::io::write(p, &buf[..n]);
                    }
                }
            }
        }
    }
}

/// How long draining waits for more output once the terminal went quiet: the kernel moves
/// what the process wrote to the master asynchronously (a work queue), so a read right
/// after its exit can find nothing yet.
const DRAIN_QUIET: std::time::Duration = std::time::Duration::from_millis(200);

/// The longest draining goes on (a process left in the container may keep writing).
const DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// After the process exited, copy what is left in the terminal: until the last slave is
/// closed (EIO, once everything written was read) or, when another process still holds
/// it, until nothing came for [`DRAIN_QUIET`] (and never longer than [`DRAIN_MAX`]).
fn drain_pty(opts: &ForegroundOptions, buf: &mut [u8]) {
    let Some(p) = &opts.pty else { return };
    let quiet = rustix::event::Timespec::try_from(DRAIN_QUIET).ok();
    let deadline = std::time::Instant::now() + DRAIN_MAX;
    let mut out = std::io::stdout();
    while std::time::Instant::now() < deadline {
        let mut fds = [PollFd::new(p, PollFlags::IN)];
        match rustix::event::poll(&mut fds, quiet.as_ref()) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        if fds[0].revents().is_empty() {
            break;
        }
        match rustix::io::read(p, &mut *buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let _ = out.write_all(&buf[..n]);
            }
        }
    }
    let _ = out.flush();
}
