//! A pseudo-terminal the test owns, with a command running on it: the command's stdin,
//! stdout and stderr are the pty's slave (as when a user types `runc run -t` in a
//! terminal), the test holds the master: it reads what the command shows, types into it,
//! and changes the window size.
//!
//! The command gets no controlling terminal (no `setsid`, which would need `pre_exec`):
//! the kernel then sends no SIGWINCH on a resize, and [`PtySession::resize`] sends it
//! itself, as a terminal emulator's kernel would.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::pty::OpenptFlags;

use crate::{ChildGuard, wait_until};

/// A command on a pty; killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct PtySession {
    master: File,
    child: ChildGuard,
    screen: Arc<Mutex<Vec<u8>>>,
    /// Set by the reader once the master reads EOF or EIO (every slave closed).
    hung_up: Arc<AtomicBool>,
}

/// How long [`PtySession::wait`] waits, once the command exited, for what it wrote to
/// reach the screen (the kernel hands writes to the master asynchronously).
const DRAIN: Duration = Duration::from_secs(10);

fn open_pair() -> (OwnedFd, OwnedFd) {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .expect("open /dev/ptmx");
    rustix::pty::grantpt(&master).expect("grantpt");
    rustix::pty::unlockpt(&master).expect("unlockpt");
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .expect("open the pty's slave");
    (master, slave)
}

fn winsize(rows: u16, cols: u16) -> rustix::termios::Winsize {
    rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl PtySession {
    /// Spawn `cmd` on a new pty of `rows`×`cols`. The slave is closed here once the
    /// command has it (`cmd` is consumed for that), so the master reads EOF (EIO) when
    /// the command and its children have all closed it.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> PtySession {
        let (master, slave) = open_pair();
        rustix::termios::tcsetwinsize(&slave, winsize(rows, cols)).expect("set the window size");
        let dup = |fd: &OwnedFd| fd.try_clone().expect("dup the pty's slave");
        cmd.stdin(dup(&slave))
            .stdout(dup(&slave))
            .stderr(File::from(slave));
        let child = ChildGuard::spawn(&mut cmd);
        drop(cmd);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = File::from(master.try_clone().expect("dup the pty's master"));
        let sink = Arc::clone(&screen);
        let hung_up = Arc::new(AtomicBool::new(false));
        let hup = Arc::clone(&hung_up);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => match sink.lock() {
                        Ok(mut s) => s.extend_from_slice(&buf[..n]),
                        Err(_) => break,
                    },
                }
            }
            hup.store(true, Ordering::SeqCst);
        });
        PtySession {
            master: File::from(master),
            child,
            screen,
            hung_up,
        }
    }

    /// The command's pid.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("spawned")
    }

    /// Everything shown so far, carriage returns removed.
    pub fn screen(&self) -> String {
        let s = self.screen.lock().map(|s| s.clone()).unwrap_or_default();
        String::from_utf8_lossy(&s).replace('\r', "")
    }

    /// Wait until the screen shows `needle` (after the first `skip` bytes of
    /// [`PtySession::screen`]); whether it did within `timeout`.
    pub fn wait_for(&self, needle: &str, skip: usize, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.screen()
                .get(skip..)
                .is_some_and(|tail| tail.contains(needle))
        })
    }

    /// Type `text` into the terminal.
    pub fn type_text(&mut self, text: &str) {
        self.master
            .write_all(text.as_bytes())
            .and_then(|()| self.master.flush())
            .expect("write to the pty's master");
    }

    /// Change the terminal's window size, then send SIGWINCH to the command (what the
    /// kernel does for a controlling terminal's foreground process group).
    pub fn resize(&self, rows: u16, cols: u16) {
        rustix::termios::tcsetwinsize(&self.master, winsize(rows, cols))
            .expect("set the window size");
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid()).expect("a pid"))
            .expect("a pid");
        rustix::process::kill_process(pid, rustix::process::Signal::WINCH).expect("SIGWINCH");
    }

    /// Wait for the command to exit; its status, or `None` if it still ran after
    /// `timeout`. Once it exited, what it wrote is on the screen: the reader is given
    /// until the last slave closes (at most [`DRAIN`]; a process the command left behind
    /// may hold it).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.child().expect("spawned");
        let mut status = None;
        wait_until(timeout, || {
            status = child.try_wait().ok().flatten();
            status.is_some()
        });
        if status.is_some() {
            wait_until(DRAIN, || self.hung_up.load(Ordering::SeqCst));
        }
        status
    }
}
