//! `SCMP_ACT_NOTIFY`: handing the listener to the seccomp agent (runtime-spec `listenerPath`).
//! The agent's side of the listener is in `agent.rs`, for the tests.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;
use std::path::Path;

use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix,
    SocketFlags, SocketType, connect, sendmsg, socket_with,
};

use super::SeccompError;

/// Send the listener `fd` and the container process state to the seccomp agent listening on
/// `listener_path` (runtime-spec, config-linux.md "listenerPath"): one `SOCK_STREAM`
/// connection, the JSON as payload with the fd in `SCM_RIGHTS` on the first `sendmsg`, then
/// the connection is closed.
///
/// `state_json` is the serialized container process state: `ociVersion`, `fds` =
/// `["seccompFd"]`, `pid`, `metadata` (`listenerMetadata`) and `state`, as `init.rs` builds
/// it.
pub(crate) fn send_listener(
    listener_path: &Path,
    listener: BorrowedFd<'_>,
    state_json: &[u8],
) -> Result<(), SeccompError> {
    let connect_err = |source: io::Error| SeccompError::ListenerConnect {
        path: listener_path.to_owned(),
        source,
    };
    let send_err = |source: io::Error| SeccompError::ListenerSend {
        path: listener_path.to_owned(),
        source,
    };
    let addr = SocketAddrUnix::new(listener_path).map_err(|e| connect_err(e.into()))?;
    let sock = socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| connect_err(e.into()))?;
    connect(&sock, &addr).map_err(|e| connect_err(e.into()))?;

    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let fds = [listener];
    let mut sent = 0;
    let mut first = true;
    // At most one sendmsg per byte; a stream socket that accepts nothing is an error below.
    while sent < state_json.len() || first {
        let iov = [IoSlice::new(&state_json[sent..])];
        let n = if first {
            let mut cmsg = SendAncillaryBuffer::new(&mut space);
            if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(send_err(io::Error::from_raw_os_error(libc::ENOBUFS)));
            }
            sendmsg(&sock, &iov, &mut cmsg, SendFlags::NOSIGNAL)
        } else {
            sendmsg(
                &sock,
                &iov,
                &mut SendAncillaryBuffer::default(),
                SendFlags::NOSIGNAL,
            )
        };
        match n {
            Ok(0) if !state_json.is_empty() => {
                return Err(send_err(io::Error::from(io::ErrorKind::WriteZero)));
            }
            Ok(n) => {
                sent += n;
                first = false;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(send_err(e.into())),
        }
    }
    Ok(())
}
