//! The receiving end of `--console-socket`: a unix socket in a tempdir to which the
//! runtime sends the container's pty master over `SCM_RIGHTS` (runc's protocol), and a
//! reader that collects what the container writes to its terminal.

use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};

use crate::wait_until;

/// How long the accepting thread waits for the runtime to connect.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(120);

/// A listening console socket; one thread accepts one connection and receives one fd.
#[derive(Debug)]
pub struct ConsoleSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    rx: mpsc::Receiver<Result<OwnedFd, String>>,
}

impl Default for ConsoleSocket {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleSocket {
    pub fn new() -> ConsoleSocket {
        let dir = tempfile::Builder::new()
            .prefix("berth-console-")
            .tempdir()
            .expect("tempdir for the console socket");
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).expect("bind the console socket");
        listener
            .set_nonblocking(true)
            .expect("non-blocking console socket");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(receive_one(&listener));
        });
        ConsoleSocket {
            _dir: dir,
            path,
            rx,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the runtime sent; panics when none came within `timeout`.
    #[track_caller]
    pub fn master(&self, timeout: Duration) -> OwnedFd {
        match self.rx.recv_timeout(timeout) {
            Ok(Ok(fd)) => fd,
            Ok(Err(e)) => panic!("no pty master on the console socket: {e}"),
            Err(e) => panic!("no pty master on the console socket within {timeout:?}: {e}"),
        }
    }
}

fn receive_one(listener: &UnixListener) -> Result<OwnedFd, String> {
    let mut conn = None;
    wait_until(ACCEPT_TIMEOUT, || {
        conn = listener.accept().ok();
        conn.is_some()
    });
    let (stream, _) = conn.ok_or("the runtime never connected")?;
    stream
        .set_nonblocking(false)
        .map_err(|e| format!("blocking mode: {e}"))?;
    stream
        .set_read_timeout(Some(ACCEPT_TIMEOUT))
        .map_err(|e| format!("read timeout: {e}"))?;
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    recvmsg(&stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
        .map_err(|e| format!("recvmsg: {e}"))?;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = msg
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err("a message without SCM_RIGHTS".to_owned())
}

/// Everything a pty master yields until the last slave closes (EIO) or `timeout`: a
/// thread reads, the caller waits with a deadline.
pub fn read_pty(master: OwnedFd, timeout: Duration) -> Vec<u8> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut f = File::from(master);
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(chunk) => out.extend(chunk),
            Err(_) => break,
        }
    }
    out
}
