//! The channel between the runtime and the processes it starts: a SOCK_SEQPACKET
//! socketpair carrying JSON messages, optionally with descriptors (SCM_RIGHTS). Errors
//! from the container side cross it as structured values ([`Failure`]: what failed and
//! its errno), never as log lines.
//!
//! A message is one or more packets (chunks), so its size is not bounded by the
//! socket's send buffer (a packet larger than `net.core.wmem_default`, ~208 KiB, fails
//! with EMSGSIZE, and a config with Kubernetes' 256 KiB of annotations is bigger):
//!
//! ```text
//! packet := flag:u8 payload    flag 1: more chunks follow, 0: the message's last chunk
//! ```
//!
//! each payload at most [`CHUNK`] bytes; the message's descriptors ride on its first
//! packet. A message larger than [`MAX_MSG`] is refused by both ends; a packet that does
//! not fit a chunk (a peer speaking another protocol) is refused as malformed.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The largest payload of one packet: well below the default socket send buffer.
pub(crate) const CHUNK: usize = 32 * 1024;

/// The largest message either end sends or accepts (a state with 1 MiB of annotations is
/// a few MiB of JSON at most); beyond it, the message is garbage or an attack.
pub(crate) const MAX_MSG: usize = 64 * 1024 * 1024;

/// At most this many descriptors travel with one message.
const MAX_FDS: usize = 4;

const MORE: u8 = 1;
const LAST: u8 = 0;

/// What failed on the channel.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("failed to create the sync socket pair")]
    Socketpair {
        #[source]
        source: std::io::Error,
    },
    #[error("failed to send a message to the {peer}")]
    Send {
        peer: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to receive a message from the {peer}")]
    Recv {
        peer: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the {peer} closed the sync socket without a message")]
    Closed { peer: &'static str },
    #[error(
        "a message to or from the {peer} is {size} bytes or more, over the limit of {limit} bytes"
    )]
    TooLarge {
        peer: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("malformed packet from the {peer}: {what}")]
    Framing { peer: &'static str, what: String },
    #[error("malformed message from the {peer}")]
    Malformed {
        peer: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// A failure inside a container process, as it crosses the channel.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{what}")]
pub struct Failure {
    /// What failed on what, e.g. "failed to mount proc on /proc".
    pub what: String,
    /// The errno, when a system call failed.
    pub errno: Option<i32>,
}

impl Failure {
    pub fn new(what: impl Into<String>) -> Failure {
        Failure {
            what: what.into(),
            errno: None,
        }
    }

    pub fn io(what: impl Into<String>, err: &std::io::Error) -> Failure {
        Failure {
            what: what.into(),
            errno: err.raw_os_error(),
        }
    }

    /// The errno as an `io::Error` (for the error chain).
    pub fn os_error(&self) -> Option<std::io::Error> {
        self.errno.map(std::io::Error::from_raw_os_error)
    }
}

/// Attach "what failed" to an I/O result.
pub(crate) trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Failure>;
}

impl<T> Context<T> for Result<T, std::io::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::io(what(), &e))
    }
}

impl<T> Context<T> for Result<T, rustix::io::Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Failure> {
        self.map_err(|e| Failure::io(what(), &e.into()))
    }
}

/// One end of the channel.
#[derive(Debug)]
pub(crate) struct Channel {
    fd: OwnedFd,
    peer: &'static str,
}

/// A connected pair: (runtime end, container end).
pub(crate) fn pair() -> Result<(Channel, Channel), IpcError> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| IpcError::Socketpair { source: e.into() })?;
    Ok((
        Channel {
            fd: a,
            peer: "container process",
        },
        Channel {
            fd: b,
            peer: "runtime",
        },
    ))
}

impl Channel {
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Send one message with descriptors (at most 4).
    pub(crate) fn send_with_fds<T: Serialize>(
        &self,
        msg: &T,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), IpcError> {
        let peer = self.peer;
        let data =
            serde_json::to_vec(msg).map_err(|source| IpcError::Malformed { peer, source })?;
        self.send_bytes(&data, fds)
    }

    /// Send `data` as one message, in chunks, `fds` on the first.
    pub(crate) fn send_bytes(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), IpcError> {
        let peer = self.peer;
        if data.len() > MAX_MSG {
            return Err(IpcError::TooLarge {
                peer,
                size: data.len(),
                limit: MAX_MSG,
            });
        }
        if fds.len() > MAX_FDS {
            return Err(IpcError::Send {
                peer,
                source: std::io::Error::from_raw_os_error(libc::E2BIG),
            });
        }
        let mut chunks = data.chunks(CHUNK).peekable();
        let mut first = true;
        // an empty message is still one packet
        let empty: &[u8] = &[];
        let mut next = chunks.next().or(Some(empty));
        while let Some(chunk) = next {
            next = chunks.next();
            let flag = if next.is_some() { MORE } else { LAST };
            let with = if first { fds } else { &[] };
            self.send_packet(flag, chunk, with)?;
            first = false;
        }
        Ok(())
    }

    fn send_packet(&self, flag: u8, chunk: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), IpcError> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let peer = self.peer;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(IpcError::Send {
                peer,
                source: std::io::Error::from_raw_os_error(libc::E2BIG),
            });
        }
        let head = [flag];
        loop {
            match rustix::net::sendmsg(
                &self.fd,
                &[IoSlice::new(&head), IoSlice::new(chunk)],
                &mut control,
                SendFlags::NOSIGNAL,
            ) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(IpcError::Send {
                        peer,
                        source: e.into(),
                    });
                }
            }
        }
    }

    pub(crate) fn send<T: Serialize>(&self, msg: &T) -> Result<(), IpcError> {
        self.send_with_fds(msg, &[])
    }

    /// Receive one message and any descriptors sent with it.
    pub(crate) fn recv_with_fds<T: DeserializeOwned>(&self) -> Result<(T, Vec<OwnedFd>), IpcError> {
        let peer = self.peer;
        let (data, fds) = self.recv_bytes()?;
        let msg =
            serde_json::from_slice(&data).map_err(|source| IpcError::Malformed { peer, source })?;
        Ok((msg, fds))
    }

    /// Receive one message's bytes (all its chunks) and its descriptors.
    pub(crate) fn recv_bytes(&self) -> Result<(Vec<u8>, Vec<OwnedFd>), IpcError> {
        let peer = self.peer;
        let mut data = Vec::new();
        let mut fds = Vec::new();
        // one spare byte past the largest packet: a packet that fills it was truncated
        let mut buf = vec![0u8; CHUNK + 2];
        loop {
            let (n, truncated) = self.recv_packet(&mut buf, &mut fds)?;
            if n == 0 {
                return Err(IpcError::Closed { peer });
            }
            if truncated || n > CHUNK + 1 {
                return Err(IpcError::Framing {
                    peer,
                    what: format!("a packet larger than {} bytes", CHUNK + 1),
                });
            }
            let chunk = &buf[1..n];
            if data.len() + chunk.len() > MAX_MSG {
                return Err(IpcError::TooLarge {
                    peer,
                    size: data.len() + chunk.len(),
                    limit: MAX_MSG,
                });
            }
            data.extend_from_slice(chunk);
            match buf[0] {
                LAST => return Ok((data, fds)),
                MORE => {}
                other => {
                    return Err(IpcError::Framing {
                        peer,
                        what: format!("unknown chunk flag {other}"),
                    });
                }
            }
        }
    }

    /// One packet into `buf`; its length and whether the kernel truncated it.
    fn recv_packet(
        &self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> Result<(usize, bool), IpcError> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};
        let peer = self.peer;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let r = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(r) => break r,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(IpcError::Recv {
                        peer,
                        source: e.into(),
                    });
                }
            }
        };
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(it) = m {
                fds.extend(it);
            }
        }
        Ok((r.bytes, r.flags.contains(ReturnFlags::TRUNC)))
    }

    pub(crate) fn recv<T: DeserializeOwned>(&self) -> Result<T, IpcError> {
        Ok(self.recv_with_fds()?.0)
    }

    /// Move the descriptor to a number >= `min` (so it cannot collide with preserved fds).
    pub(crate) fn move_above(self, min: i32) -> Result<Channel, std::io::Error> {
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, min)?;
        Ok(Channel {
            fd,
            peer: self.peer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Big {
        annotations: BTreeMap<String, String>,
    }

    fn big(bytes: usize) -> Big {
        let mut annotations = BTreeMap::new();
        let mut n = 0;
        while n < bytes {
            annotations.insert(format!("example.com/key-{n}"), "v".repeat(1000));
            n += 1000;
        }
        Big { annotations }
    }

    #[test]
    fn a_multi_megabyte_message_crosses_in_chunks_with_its_descriptors() {
        let (a, b) = pair().unwrap();
        let msg = big(5 * 1024 * 1024);
        let (r, w) = rustix::pipe::pipe().unwrap();
        let sent = std::thread::scope(|s| {
            let t = s.spawn(|| a.send_with_fds(&msg, &[w.as_fd()]));
            let got = b.recv_with_fds::<Big>().unwrap();
            t.join().unwrap().unwrap();
            got
        });
        assert_eq!(sent.0, msg);
        assert_eq!(sent.1.len(), 1, "the descriptor rides on the first chunk");
        // the received descriptor is the pipe's write end
        rustix::io::write(&sent.1[0], b"x").unwrap();
        let mut one = [0u8; 1];
        assert_eq!(rustix::io::read(&r, &mut one).unwrap(), 1);
        // and the channel stays in step for the next, small, message
        a.send(&"next").unwrap();
        assert_eq!(b.recv::<String>().unwrap(), "next");
    }

    #[test]
    fn empty_and_exactly_chunk_sized_messages() {
        let (a, b) = pair().unwrap();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let data = vec![b'a'; len];
            std::thread::scope(|s| {
                let t = s.spawn(|| a.send_bytes(&data, &[]));
                let (got, fds) = b.recv_bytes().unwrap();
                t.join().unwrap().unwrap();
                assert_eq!(got.len(), len);
                assert!(fds.is_empty());
            });
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_by_the_sender() {
        let (a, _b) = pair().unwrap();
        let data = vec![0u8; MAX_MSG + 1];
        let e = a.send_bytes(&data, &[]).unwrap_err();
        assert!(
            matches!(e, IpcError::TooLarge { size, .. } if size == MAX_MSG + 1),
            "{e}"
        );
        assert!(e.to_string().contains("over the limit"), "{e}");
    }

    #[test]
    fn garbage_is_refused_clearly() {
        // a packet bigger than a chunk (a peer not speaking this protocol)
        let (a, b) = pair().unwrap();
        rustix::net::send(
            &a.fd,
            &vec![0u8; CHUNK + 100],
            rustix::net::SendFlags::empty(),
        )
        .unwrap();
        let e = b.recv_bytes().unwrap_err();
        assert!(matches!(e, IpcError::Framing { .. }), "{e}");
        // an unknown flag
        rustix::net::send(&a.fd, b"\x07{}", rustix::net::SendFlags::empty()).unwrap();
        let e = b.recv_bytes().unwrap_err();
        assert!(e.to_string().contains("unknown chunk flag 7"), "{e}");
        // an endless message: "more" forever is cut at the limit
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let chunk = vec![MORE; CHUNK + 1];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if rustix::net::send(&a.fd, &chunk, rustix::net::SendFlags::NOSIGNAL).is_err() {
                        break;
                    }
                }
            });
            let e = b.recv_bytes().unwrap_err();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(
                matches!(e, IpcError::TooLarge { limit, .. } if limit == MAX_MSG),
                "{e}"
            );
            // unblock the writer
            drop(b);
        });
        // closed mid-way
        let (a, b) = pair().unwrap();
        rustix::net::send(&a.fd, b"\x01{", rustix::net::SendFlags::empty()).unwrap();
        drop(a);
        assert!(matches!(b.recv_bytes(), Err(IpcError::Closed { .. })));
    }
}
