//! Waiting for descriptors to become ready, with a deadline (`poll(2)`).
//!
//! Every wait ply does on another process goes through [`poll_until`]: it
//! returns at the deadline whatever the peer does, and an interrupted call
//! (`EINTR`) simply counts as an early return.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// Waits until one of `fds` is ready or `timeout` passes (`None`: no limit).
/// Returns how many are ready (0 on timeout or interruption); each entry's
/// `revents()` says which.
pub(crate) fn poll_for(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let spec = timeout.map(|t| {
        Timespec::try_from(t).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        })
    });
    match poll(fds, spec.as_ref()) {
        Ok(n) => Ok(n),
        Err(rustix::io::Errno::INTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// [`poll_for`] until `deadline` (`None`: no limit).
pub(crate) fn poll_until(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> io::Result<usize> {
    poll_for(
        fds,
        deadline.map(|d| d.saturating_duration_since(Instant::now())),
    )
}

/// How long is left until `deadline` (`None`: no limit), or
/// [`IpcError::Timeout`](super::IpcError::Timeout) if it has passed.
pub(crate) fn time_left(deadline: Option<Instant>) -> Result<Option<Duration>, super::IpcError> {
    match deadline {
        None => Ok(None),
        Some(d) => match d.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(super::IpcError::Timeout),
        },
    }
}

/// Waits up to `timeout` for `fd` to be readable (or closed); `true` if it is.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    Ok(poll_for(&mut fds, timeout)? > 0 && !fds[0].revents().is_empty())
}

/// Waits until `deadline` for `fd` to be writable (or closed); `true` if it is.
pub(crate) fn wait_writable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<bool> {
    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::OUT)];
    Ok(poll_until(&mut fds, deadline)? > 0 && !fds[0].revents().is_empty())
}

/// A socket read and written with `MSG_DONTWAIT` (and `MSG_NOSIGNAL`), so
/// no call blocks — whatever mode the descriptor is in, which forked
/// processes share — and a closed peer is an error, not a `SIGPIPE`.
pub(crate) struct DontWait<'a>(pub BorrowedFd<'a>);

impl io::Read for DontWait<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        rustix::net::recv(self.0, buf, rustix::net::RecvFlags::DONTWAIT)
            .map(|(n, _)| n)
            .map_err(io::Error::from)
    }
}

impl io::Write for DontWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        rustix::net::send(
            self.0,
            buf,
            rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL,
        )
        .map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
