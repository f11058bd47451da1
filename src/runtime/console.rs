//! Terminals: a pty opened inside the container, its master handed to the caller over the
//! `--console-socket` with SCM_RIGHTS (as runc does), its slave made the controlling terminal.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{open, OFlag};
use nix::libc;
use nix::pty::{grantpt, ptsname_r, unlockpt, PtyMaster};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;

use super::spec::ConsoleSize;

/// Opens a new pty from the mount namespace's `/dev/ptmx`; returns (master, slave).
pub fn open_pty(size: Option<ConsoleSize>) -> io::Result<(PtyMaster, OwnedFd)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let name = ptsname_r(&master)?;
    let slave = open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY, Mode::empty())?;
    // SAFETY: `open` just returned this descriptor and nothing else owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some(sz) = size {
        set_size(slave.as_raw_fd(), sz)?;
    }
    Ok((master, slave))
}

/// Sets the window size of a terminal.
pub fn set_size(fd: RawFd, size: ConsoleSize) -> io::Result<()> {
    let ws = libc::winsize { ws_row: size.height, ws_col: size.width, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize struct that lives for the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `fd` over a connected unix socket, with the pty's name as the payload (runc sends the
/// path too, and conmon ignores it).
pub fn send_fd(sock: RawFd, fd: RawFd, name: &str) -> io::Result<()> {
    let fds = [fd];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock, &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)?;
    Ok(())
}

/// Makes `slave` the controlling terminal of a new session and the process's stdio.
pub fn become_tty(slave: &OwnedFd) -> io::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal from another session).
    let r = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target)?;
    }
    Ok(())
}
