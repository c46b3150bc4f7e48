//! The channel between the runtime and the processes it starts: a SOCK_SEQPACKET
//! socketpair carrying one JSON message per packet, optionally with descriptors
//! (SCM_RIGHTS). Errors from the container side cross it as structured values
//! ([`Failure`]: what failed and its errno), never as log lines.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Largest message.
const MAX_MSG: usize = 256 * 1024;

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
pub trait Context<T> {
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
pub struct Channel {
    fd: OwnedFd,
    peer: &'static str,
}

/// A connected pair: (runtime end, container end).
pub fn pair() -> Result<(Channel, Channel), IpcError> {
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
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Send one message with descriptors.
    pub fn send_with_fds<T: Serialize>(
        &self,
        msg: &T,
        fds: &[BorrowedFd<'_>],
    ) -> Result<(), IpcError> {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        let peer = self.peer;
        let data =
            serde_json::to_vec(msg).map_err(|source| IpcError::Malformed { peer, source })?;
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(IpcError::Send {
                peer,
                source: std::io::Error::from_raw_os_error(libc::E2BIG),
            });
        }
        loop {
            match rustix::net::sendmsg(
                &self.fd,
                &[IoSlice::new(&data)],
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

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<(), IpcError> {
        self.send_with_fds(msg, &[])
    }

    /// Receive one message and any descriptors sent with it.
    pub fn recv_with_fds<T: DeserializeOwned>(&self) -> Result<(T, Vec<OwnedFd>), IpcError> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let peer = self.peer;
        let mut buf = vec![0u8; MAX_MSG];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let n = loop {
            match rustix::net::recvmsg(
                &self.fd,
                &mut [IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(r) => break r.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(IpcError::Recv {
                        peer,
                        source: e.into(),
                    });
                }
            }
        };
        let mut fds = Vec::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(it) = m {
                fds.extend(it);
            }
        }
        if n == 0 {
            return Err(IpcError::Closed { peer });
        }
        let msg = serde_json::from_slice(&buf[..n])
            .map_err(|source| IpcError::Malformed { peer, source })?;
        Ok((msg, fds))
    }

    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, IpcError> {
        Ok(self.recv_with_fds()?.0)
    }

    /// Move the descriptor to a number >= `min` (so it cannot collide with preserved fds).
    pub fn move_above(self, min: i32) -> Result<Channel, std::io::Error> {
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, min)?;
        Ok(Channel {
            fd,
            peer: self.peer,
        })
    }
}
