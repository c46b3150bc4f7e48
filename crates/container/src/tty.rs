//! The container's terminal: a pty opened inside the container (its devpts instance), the
//! slave made the controlling terminal and stdio, the master sent to the runtime, which
//! passes it to `--console-socket` (SCM_RIGHTS) or copies it to its own stdio (`run`).

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use berth_runtime_spec::Process;
use rustix::pty::OpenptFlags;

use crate::ipc::{Context, Failure};

/// Open a pty, make its slave our controlling terminal and stdio; returns the master.
pub(crate) fn setup_pty(process: &Process) -> Result<OwnedFd, Failure> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .ctx(|| "failed to open /dev/ptmx".to_owned())?;
    rustix::pty::grantpt(&master).ctx(|| "failed to grant the pty".to_owned())?;
    rustix::pty::unlockpt(&master).ctx(|| "failed to unlock the pty".to_owned())?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)
        .ctx(|| "failed to open the pty slave".to_owned())?;
    if let Some(size) = &process.console_size {
        let ws = rustix::termios::Winsize {
            ws_row: size.height as u16,
            ws_col: size.width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, ws)
            .ctx(|| "failed to set the console size".to_owned())?;
    }
    rustix::process::setsid().ctx(|| "failed to create a session".to_owned())?;
    rustix::process::ioctl_tiocsctty(&slave)
        .ctx(|| "failed to set the controlling terminal".to_owned())?;
    rustix::stdio::dup2_stdin(&slave).ctx(|| "failed to dup the pty onto stdin".to_owned())?;
    rustix::stdio::dup2_stdout(&slave).ctx(|| "failed to dup the pty onto stdout".to_owned())?;
    rustix::stdio::dup2_stderr(&slave).ctx(|| "failed to dup the pty onto stderr".to_owned())?;
    Ok(master)
}

/// Send the pty master to the console socket, as runc does (the payload is the pty's name).
pub(crate) fn send_to_console_socket(path: &Path, master: BorrowedFd<'_>) -> std::io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let sock = UnixStream::connect(path)?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [master];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        &sock,
        &[IoSlice::new(b"/dev/ptmx")],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}
