//! ply's stdout and stderr, written without ever blocking the event loop.
//!
//! A reader that stops (`ply run ... | less` left waiting, a consumer under
//! SIGSTOP, a terminal held with Ctrl-S) must not stall ply: timeouts, halts
//! and stop signals are ply's to enforce whatever its reader does. So every
//! byte ply prints goes through a [`Sink`]: a bounded queue in front of the
//! file descriptor, written only as far as the descriptor takes it now. The
//! event loop polls the descriptor for `POLLOUT` while bytes wait, and
//! pushes back on the jobs while the queue is full (see `engine`).
//!
//! Writing without blocking needs a descriptor in non-blocking mode, and
//! `O_NONBLOCK` belongs to the *open file description*, which ply shares
//! with its parent shell and siblings: setting it on fd 1 would change their
//! pipe, too, and stay set if ply were killed. So a sink opens its own
//! description of the same object instead (`/proc/self/fd/N` reopened, which
//! for a pipe, FIFO or terminal is a new description of the same pipe or
//! device), non-blocking from the start. Sockets take `MSG_DONTWAIT` per
//! call. Regular files and block devices are written directly: a write to a
//! disk waits for the disk, never for a reader (and a file's offset is
//! shared, so it must be written through fd 1 itself). Where reopening fails
//! (no `/proc`), a write is attempted only when `poll` reports room, and at
//! most `PIPE_BUF` bytes at once — a size a pipe with room takes whole.
//!
//! See `pipe(7)` (`PIPE_BUF`, `O_NONBLOCK`), `open(2)` on `/proc/self/fd`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Bytes queued in a sink before it stops taking more: the job output
/// waiting for a slow reader that ply holds in memory, per stream.
pub const QUEUE_LIMIT: usize = 1 << 20;

/// How the descriptor is written.
#[derive(Debug)]
enum Mode {
    /// A descriptor of ply's own, `O_NONBLOCK`, on the same pipe or device.
    Reopened(OwnedFd),
    /// A socket: `send` with `MSG_DONTWAIT`.
    Socket,
    /// A regular file or block device: plain writes.
    File,
    /// Nothing else worked: write `PIPE_BUF` bytes when `poll` says there
    /// is room.
    Guarded,
}

/// One output stream (stdout or stderr) with its queue.
#[derive(Debug)]
pub struct Sink {
    fd: RawFd,
    mode: Mode,
    queue: Vec<u8>,
    /// Bytes of `queue` already written.
    done: usize,
    /// The first write error (an errno); the sink takes no more after it.
    error: Option<i32>,
}

/// `fstat`'s file type bits of `fd`.
fn file_type(fd: RawFd) -> Option<libc::mode_t> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer; fstat on a bad fd fails cleanly.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some(st.st_mode & libc::S_IFMT)
}

/// Opens a new description of the pipe or device behind `fd`, non-blocking.
fn reopen(fd: RawFd) -> Option<OwnedFd> {
    let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).ok()?;
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: a valid NUL-terminated path; open returns a new fd or -1.
    let new = unsafe { libc::open(path.as_ptr(), flags) };
    // SAFETY: a fresh descriptor that nothing else owns.
    (new >= 0).then(|| unsafe { OwnedFd::from_raw_fd(new) })
}

/// Waits up to `timeout` for `fd` to take a write; whether it will.
fn writable(fd: RawFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd, and the count says one.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    // An error condition counts as writable: the write then reports it.
    rc > 0
}

impl Sink {
    /// A sink for ply's stdout.
    pub fn stdout() -> Sink {
        Sink::new(libc::STDOUT_FILENO)
    }

    /// A sink for ply's stderr.
    pub fn stderr() -> Sink {
        Sink::new(libc::STDERR_FILENO)
    }

    fn new(fd: RawFd) -> Sink {
        let mode = match file_type(fd) {
            Some(libc::S_IFREG | libc::S_IFBLK) => Mode::File,
            Some(libc::S_IFSOCK) => Mode::Socket,
            Some(_) => reopen(fd).map_or(Mode::Guarded, Mode::Reopened),
            None => Mode::Guarded, // closed: the first write reports EBADF
        };
        Sink {
            fd,
            mode,
            queue: Vec::new(),
            done: 0,
            error: None,
        }
    }

    /// Queues `bytes` (always taken: callers keep the queue bounded by
    /// asking [`has_room`](Self::has_room) first) and writes what the
    /// descriptor takes now.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.error.is_some() || bytes.is_empty() {
            return;
        }
        self.queue.extend_from_slice(bytes);
        self.flush();
    }

    /// Whether fewer than [`QUEUE_LIMIT`] bytes wait.
    pub fn has_room(&self) -> bool {
        self.pending() < QUEUE_LIMIT
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.queue.len() - self.done
    }

    /// Whether everything pushed has been written (or the sink failed).
    pub fn is_empty(&self) -> bool {
        self.pending() == 0 || self.error.is_some()
    }

    /// The descriptor to poll for `POLLOUT`, while bytes wait.
    pub fn poll_fd(&self) -> Option<RawFd> {
        (!self.is_empty()).then(|| self.write_fd())
    }

    fn write_fd(&self) -> RawFd {
        match &self.mode {
            Mode::Reopened(fd) => fd.as_raw_fd(),
            _ => self.fd,
        }
    }

    /// The first write error, if any.
    pub fn error(&self) -> Option<io::Error> {
        self.error.map(io::Error::from_raw_os_error)
    }

    /// Writes queued bytes until the descriptor would block.
    pub fn flush(&mut self) {
        while self.error.is_none() && self.pending() > 0 {
            let chunk = &self.queue[self.done..];
            let result = match &self.mode {
                Mode::Reopened(fd) => write(fd.as_raw_fd(), chunk),
                Mode::File => write(self.fd, chunk),
                Mode::Socket => send(self.fd, chunk),
                Mode::Guarded => {
                    if !writable(self.fd, Duration::ZERO) {
                        break;
                    }
                    write(self.fd, &chunk[..chunk.len().min(libc::PIPE_BUF)])
                }
            };
            match result {
                Ok(n) => self.done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.error = Some(e.raw_os_error().unwrap_or(libc::EIO)),
            }
        }
        if self.done == self.queue.len() {
            self.queue.clear();
            self.done = 0;
        } else if self.done > QUEUE_LIMIT {
            self.queue.drain(..self.done);
            self.done = 0;
        }
    }

    /// Writes everything queued, waiting for the descriptor at most until
    /// `deadline`; whether everything was written.
    pub fn flush_until(&mut self, deadline: Instant) -> bool {
        loop {
            self.flush();
            if self.is_empty() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            writable(self.write_fd(), left.min(Duration::from_millis(50)));
        }
    }
}

/// `write(2)` as an `io::Result`.
fn write(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is valid for reads of its length.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// `send(2)` without blocking (and without SIGPIPE).
fn send(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is valid for reads of its length.
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

impl io::Write for Sink {
    /// Queues everything (see [`Sink::push`]); a failed sink reports its
    /// error.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        self.push(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Sink::flush(self);
        self.error().map_or(Ok(()), Err)
    }
}

/// Writes `text` to stderr, waiting for a stalled reader at most `limit`
/// (ply's own messages: a reader that never reads loses them rather than
/// hold ply up).
pub fn message(text: &str, limit: Duration) {
    let mut sink = Sink::stderr();
    sink.push(text.as_bytes());
    sink.flush_until(Instant::now() + limit);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    /// A pipe: (read end, write end).
    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into the array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: fresh fds owned by nothing else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn read_all_now(fd: &OwnedFd) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while readable(fd.as_raw_fd()) {
            // SAFETY: buf is valid for writes of its length.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        out
    }

    fn readable(fd: RawFd) -> bool {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
    }

    #[test]
    fn a_full_pipe_queues_instead_of_blocking_and_keeps_the_bytes_in_order() {
        let (read, write) = pipe();
        let fd = write.into_raw_fd();
        let mut sink = Sink::new(fd);
        assert!(matches!(sink.mode, Mode::Reopened(_)));
        // The original descriptor stays blocking: others sharing it see no change.
        // SAFETY: F_GETFL on a valid fd.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in data.chunks(1000) {
            sink.push(chunk); // never blocks, though nobody reads yet
        }
        assert!(sink.pending() > 0, "a pipe holds less than 300 kB");
        let mut got = Vec::new();
        while !sink.is_empty() {
            got.extend(read_all_now(&read));
            sink.flush();
        }
        got.extend(read_all_now(&read));
        assert_eq!(got, data);
        assert!(sink.error().is_none());
        // SAFETY: closing the fd we took from `write`.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn a_closed_reader_is_a_broken_pipe_error() {
        let (read, write) = pipe();
        let fd = write.into_raw_fd();
        let mut sink = Sink::new(fd);
        drop(read);
        sink.push(b"x");
        assert_eq!(
            sink.error().map(|e| e.kind()),
            Some(io::ErrorKind::BrokenPipe)
        );
        assert!(sink.is_empty());
        // SAFETY: closing the fd we took from `write`.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn flush_until_gives_up_at_its_deadline() {
        let (_read, write) = pipe();
        let fd = write.into_raw_fd();
        let mut sink = Sink::new(fd);
        sink.push(&vec![b'x'; 1 << 20]);
        let start = Instant::now();
        assert!(!sink.flush_until(start + Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
        // SAFETY: closing the fd we took from `write`.
        unsafe { libc::close(fd) };
    }
}
