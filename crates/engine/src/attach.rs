//! Attaching a caller to a container's stdio through its monitor.
//!
//! The monitor listens on `containers/ID/attach.sock` (0600, in a 0700 directory). The wire
//! format is frames both ways: `[kind: u8][len: u32 big-endian][payload]`.
//!
//! caller → monitor: [`HELLO`] first (payload `rows: u16, cols: u16, flags: u8`, flag
//! [`HELLO_STDIN`]: this caller feeds stdin and its detach closes it, docker's `StdinOnce`),
//! then [`STDIN`] data, [`STDIN_CLOSE`], [`RESIZE`] (`rows: u16, cols: u16`).
//!
//! monitor → caller: [`ACK`] (empty) once the hello is applied (so a window size sent in
//! the hello is in place before the caller starts the container), then [`STDOUT`] and
//! [`STDERR`] data (a pty's output is all `STDOUT`). The monitor closes the connection when
//! the container has exited and its output is drained.
//!
//! The caller's side ([`relay`]) puts the caller's terminal in raw mode for a `-t` container
//! (restored when the relay returns, on every path, by a guard), forwards its window size at
//! the start and on `SIGWINCH`, and copies bytes both ways.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};

/// Frame kinds.
pub const HELLO: u8 = 0x10;
pub const STDIN: u8 = 0x11;
pub const STDIN_CLOSE: u8 = 0x12;
pub const RESIZE: u8 = 0x13;
pub const ACK: u8 = 0x00;
pub const STDOUT: u8 = 0x01;
pub const STDERR: u8 = 0x02;
/// The caller detaches (its detach keys were typed): the container's stdin stays open.
pub const DETACH: u8 = 0x14;
/// [`HELLO`] flag: this caller feeds stdin.
pub const HELLO_STDIN: u8 = 1;

/// docker's default detach keys: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// How a [`relay`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed {
    /// The monitor closed the connection: the container exited and its output is drained.
    Ended,
    /// The caller typed its detach keys: the container runs on.
    Detached,
}

/// Parse docker's `--detach-keys` syntax: comma-separated keys, each a single character or
/// `ctrl-X` with X one of `a`…`z`, `@`, `[`, `\`, `]`, `^`, `_` (docker's
/// `term.ToBytes`).
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in spec.split(',') {
        let k = key.trim();
        let lower = k.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-").filter(|c| c.len() == 1) {
            let b = c.as_bytes()[0];
            let code = match b {
                b'a'..=b'z' => b - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => {
                    return Err(format!(
                        "invalid detach key {k:?}: ctrl- takes a-z, @, [, \\, ], ^ or _"
                    ));
                }
            };
            out.push(code);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!(
                "invalid detach key {k:?}: give a single character or ctrl-X, comma-separated (ctrl-p,ctrl-q)"
            ));
        }
    }
    Ok(out)
}

/// Watches the caller's input for its detach keys: bytes that may begin them are held back
/// until they match in full (detach) or stop matching (then passed on).
struct DetachMatcher<'a> {
    keys: &'a [u8],
    matched: usize,
}

impl DetachMatcher<'_> {
    /// Feed `input`; what to send on, and whether the keys were typed in full.
    fn feed(&mut self, input: &[u8], send: &mut Vec<u8>) -> bool {
        for &b in input {
            if self.keys.is_empty() {
                send.push(b);
                continue;
            }
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            send.extend_from_slice(self.keys.get(..self.matched).unwrap_or_default());
            self.matched = 0;
            if self.keys.first() == Some(&b) {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                send.push(b);
            }
        }
        false
    }
}

/// The largest payload a frame may carry.
pub const MAX_FRAME: usize = 64 * 1024;

/// How long the handshake may take either way.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The caller's stdio for an attached `run`, `attach` or `exec`.
#[derive(Debug)]
pub struct Stdio {
    /// `None`: the container's stdin is not fed (no `-i`).
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl Stdio {
    /// Duplicates of this process's own stdin (when `stdin`), stdout and stderr (the CLI).
    pub fn inherit(stdin: bool) -> std::io::Result<Stdio> {
        let dup = |fd: BorrowedFd<'_>| -> std::io::Result<OwnedFd> {
            Ok(rustix::io::fcntl_dupfd_cloexec(fd, 3)?)
        };
        Ok(Stdio {
            stdin: if stdin {
                Some(dup(rustix::stdio::stdin())?)
            } else {
                None
            },
            stdout: dup(rustix::stdio::stdout())?,
            stderr: dup(rustix::stdio::stderr())?,
        })
    }

    /// The caller's terminal's window size (rows, cols), if it sits at one.
    pub fn window_size(&self) -> Option<(u16, u16)> {
        let w = rustix::termios::tcgetwinsize(self.tty()?).ok()?;
        (w.ws_row > 0 && w.ws_col > 0).then_some((w.ws_row, w.ws_col))
    }

    /// The terminal the caller sits at: stdin if it is one, else stdout.
    fn tty(&self) -> Option<BorrowedFd<'_>> {
        if let Some(i) = &self.stdin
            && rustix::termios::isatty(i)
        {
            return Some(i.as_fd());
        }
        rustix::termios::isatty(&self.stdout).then(|| self.stdout.as_fd())
    }
}

/// Encode one frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + payload.len());
    f.push(kind);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A frame larger than [`MAX_FRAME`]: the peer is not speaking this protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OversizedFrame;

/// Take one complete frame off the front of `buf`: `Ok(None)` when incomplete.
pub fn take_frame(buf: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>)>, OversizedFrame> {
    let Some(head) = buf.get(..5) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(OversizedFrame);
    }
    if buf.len() < 5 + len {
        return Ok(None);
    }
    let kind = head[0];
    let payload = buf.get(5..5 + len).unwrap_or_default().to_vec();
    buf.drain(..5 + len);
    Ok(Some((kind, payload)))
}

/// A window size payload (`rows`, `cols`), as in [`HELLO`] and [`RESIZE`].
pub fn size_payload(rows: u16, cols: u16) -> [u8; 4] {
    let (r, c) = (rows.to_be_bytes(), cols.to_be_bytes());
    [r[0], r[1], c[0], c[1]]
}

/// Parse a window size payload.
pub fn parse_size(p: &[u8]) -> Option<(u16, u16)> {
    match p {
        [r0, r1, c0, c1, ..] => Some((
            u16::from_be_bytes([*r0, *r1]),
            u16::from_be_bytes([*c0, *c1]),
        )),
        _ => None,
    }
}

/// Connect to a monitor's attach socket and do the handshake.
pub fn connect(socket: &Path, io: &Stdio, feeds_stdin: bool) -> std::io::Result<UnixStream> {
    let mut s = connect_long(socket)?;
    s.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    s.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let (rows, cols) = io.window_size().unwrap_or((0, 0));
    let mut hello = size_payload(rows, cols).to_vec();
    hello.push(if feeds_stdin { HELLO_STDIN } else { 0 });
    s.write_all(&frame(HELLO, &hello))?;
    let mut head = [0u8; 5];
    s.read_exact(&mut head)?;
    if head != [ACK, 0, 0, 0, 0] {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the monitor did not acknowledge the attach",
        ));
    }
    s.set_read_timeout(None)?;
    s.set_write_timeout(None)?;
    Ok(s)
}

/// Connect to a unix socket whose path may be longer than a `sockaddr_un` holds: through
/// `/proc/self/fd/DIRFD/NAME`.
fn connect_long(socket: &Path) -> std::io::Result<UnixStream> {
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return UnixStream::connect(socket);
    };
    let d = rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mut short = std::path::PathBuf::from(format!("/proc/self/fd/{}", d.as_raw_fd()));
    short.push(name);
    UnixStream::connect(short)
}

/// Relay between the caller's stdio and an attached monitor connection until the monitor
/// closes it (the container exited) or the caller types `detach` keys on its stdin. With
/// `terminal`, the caller's terminal is put in raw mode and its window size follows
/// `SIGWINCH`.
pub fn relay(
    mut conn: UnixStream,
    io: &Stdio,
    terminal: bool,
    detach: Option<&[u8]>,
) -> std::io::Result<Relayed> {
    let mut matcher = DetachMatcher {
        keys: detach.unwrap_or_default(),
        matched: 0,
    };
    let mut send = Vec::new();
    let tty = if terminal { io.tty() } else { None };
    let _raw = match (&io.stdin, tty) {
        (Some(i), Some(_)) if rustix::termios::isatty(i) => Some(RawMode::enter(i.as_fd())?),
        _ => None,
    };
    let winch = match tty {
        Some(_) => Some(Winch::install()?),
        None => None,
    };
    let mut stdin_open = io.stdin.is_some();
    let mut inbuf = vec![0u8; 16 * 1024];
    let mut from_monitor: Vec<u8> = Vec::new();
    loop {
        let mut fds = Vec::with_capacity(3);
        fds.push(PollFd::new(&conn, PollFlags::IN));
        let stdin_at = match (&io.stdin, stdin_open) {
            (Some(i), true) => {
                fds.push(PollFd::new(i, PollFlags::IN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let winch_at = winch.as_ref().map(|w| {
            fds.push(PollFd::new(&w.read, PollFlags::IN));
            fds.len() - 1
        });
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let rev: Vec<PollFlags> = fds.iter().map(PollFd::revents).collect();
        drop(fds);
        if let Some(k) = winch_at
            && !rev[k].is_empty()
            && let Some(w) = &winch
        {
            w.drain();
            if let Some(t) = tty
                && let Ok(ws) = rustix::termios::tcgetwinsize(t)
            {
                conn.write_all(&frame(RESIZE, &size_payload(ws.ws_row, ws.ws_col)))?;
            }
        }
        if let (Some(k), Some(i)) = (stdin_at, &io.stdin)
            && !rev[k].is_empty()
        {
            match rustix::io::read(i, &mut inbuf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    // the monitor may be gone already; what it says next tells
                    let _ = conn.write_all(&frame(STDIN_CLOSE, &[]));
                }
                Ok(n) => {
                    send.clear();
                    let detached = matcher.feed(inbuf.get(..n).unwrap_or_default(), &mut send);
                    if !send.is_empty() && conn.write_all(&frame(STDIN, &send)).is_err() {
                        stdin_open = false;
                    }
                    if detached {
                        // the monitor keeps the container's stdin open for a later attach
                        let _ = conn.write_all(&frame(DETACH, &[]));
                        return Ok(Relayed::Detached);
                    }
                }
            }
        }
        if !rev[0].is_empty() {
            let n = match conn.read(&mut inbuf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(Relayed::Ended);
            }
            from_monitor.extend_from_slice(inbuf.get(..n).unwrap_or_default());
            loop {
                match take_frame(&mut from_monitor) {
                    Ok(Some((STDOUT, data))) => write_all(io.stdout.as_fd(), &data)?,
                    Ok(Some((STDERR, data))) => write_all(io.stderr.as_fd(), &data)?,
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(OversizedFrame) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "an oversized frame from the monitor",
                        ));
                    }
                }
            }
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The caller's terminal in raw mode; the saved mode is restored on drop.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: rustix::termios::Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> std::io::Result<RawMode<'a>> {
        let saved = rustix::termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(self.fd, rustix::termios::OptionalActions::Now, &self.saved);
    }
}

/// The write end of the `SIGWINCH` self-pipe, `-1` when no handler is installed.
static WINCH_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the fd is a non-blocking pipe kept open
        // for as long as the handler is installed (Winch owns it and uninstalls first).
        #[allow(unsafe_code, reason = "a signal handler's self-pipe write")]
        unsafe {
            libc::write(fd, b"w".as_ptr().cast(), 1);
        }
    }
}

/// A `SIGWINCH` handler for the relay's lifetime: each signal makes `read` readable. One
/// relay per process at a time (the CLI's foreground command).
struct Winch {
    read: OwnedFd,
    write: OwnedFd,
    old: libc::sigaction,
}

impl Winch {
    fn install() -> std::io::Result<Winch> {
        let (read, write) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )?;
        WINCH_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        // SAFETY: sigaction with a handler that only does an async-signal-safe write; the
        // structs are zeroed C structs filled before use.
        #[allow(unsafe_code, reason = "installing the SIGWINCH handler")]
        let old = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_winch as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGWINCH, &sa, &mut old) != 0 {
                WINCH_FD.store(-1, Ordering::Relaxed);
                return Err(std::io::Error::last_os_error());
            }
            old
        };
        Ok(Winch { read, write, old })
    }

    fn drain(&self) {
        let mut b = [0u8; 64];
        while matches!(rustix::io::read(&self.read, &mut b), Ok(n) if n > 0) {}
    }
}

impl Drop for Winch {
    fn drop(&mut self) {
        // SAFETY: restores the disposition saved by install().
        #[allow(unsafe_code, reason = "restoring the SIGWINCH handler")]
        unsafe {
            libc::sigaction(libc::SIGWINCH, &self.old, std::ptr::null_mut());
        }
        WINCH_FD.store(-1, Ordering::Relaxed);
        let _ = &self.write;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = frame(STDIN, b"abc");
        buf.extend(frame(RESIZE, &size_payload(24, 80)));
        buf.extend(&frame(STDOUT, b"xy")[..4]);
        assert_eq!(take_frame(&mut buf), Ok(Some((STDIN, b"abc".to_vec()))));
        let (k, p) = take_frame(&mut buf).unwrap().unwrap();
        assert_eq!((k, parse_size(&p)), (RESIZE, Some((24, 80))));
        assert_eq!(take_frame(&mut buf), Ok(None));
        let mut big = vec![STDIN];
        big.extend(((MAX_FRAME + 1) as u32).to_be_bytes());
        assert_eq!(take_frame(&mut big), Err(OversizedFrame));
    }

    #[test]
    fn detach_keys_parse_as_docker_and_match_across_reads() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), [1, b'x']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-_").unwrap(),
            [0, 27, 31]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
        let keys = [0x10, 0x11];
        let mut m = DetachMatcher {
            keys: &keys,
            matched: 0,
        };
        let mut out = Vec::new();
        // a held ctrl-p that is not followed by ctrl-q is passed on
        assert!(!m.feed(b"a\x10", &mut out));
        assert_eq!(out, b"a");
        assert!(!m.feed(b"b\x10", &mut out));
        assert_eq!(out, b"a\x10b");
        assert!(m.feed(b"\x11rest", &mut out));
        assert_eq!(out, b"a\x10b");
    }
}
