//! [`Duplex`]: a typed two-way channel between two processes.
//!
//! Each end keeps its own partial-message buffers, and reads and writes its
//! socket without blocking (`MSG_DONTWAIT`), waiting in `poll` with the
//! caller's deadline in between. So [`Duplex::recv_timeout`] bounds the whole
//! message: a peer that drips one byte at a time cannot hold it past its
//! timeout, and the bytes that did arrive are kept for the next call.

use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::IpcError;
use super::frame::{self, DEFAULT_MAX_FRAME, FrameReader, FrameWriter};
use super::ready::{DontWait, time_left, wait_readable, wait_writable};
use crate::fork::{ForkedChild, fork_unchecked};

/// One end of a two-way channel that sends `S` and receives `R`, as framed
/// postcard messages over a Unix socket pair.
///
/// [`duplex`] makes both ends, typed as mirrors of each other
/// (`Duplex<A, B>` and `Duplex<B, A>`); [`fork_duplex`] forks a child that
/// gets one end while the caller keeps the other, each process holding only
/// its own, so that when one side exits the other sees [`IpcError::Closed`]
/// instead of waiting forever.
///
/// # Example
///
/// A child squares the numbers its parent sends:
///
/// ```
/// use ply_os::ipc::fork_duplex;
///
/// let (mut parent, child) = fork_duplex::<u64, u64, _>(|mut end| {
///     while let Ok(x) = end.recv() {
///         if end.send(&(x * x)).is_err() {
///             return 1;
///         }
///     }
///     0 // the parent closed its end
/// })?;
/// for x in 1..=3 {
///     parent.send(&x)?;
///     assert_eq!(parent.recv()?, x * x);
/// }
/// drop(parent);
/// assert!(child.wait()?.success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Duplex<S, R> {
    stream: UnixStream,
    reader: FrameReader,
    writer: FrameWriter,
    _types: PhantomData<fn(S) -> R>,
}

/// Makes the two ends of a channel: the first sends `A` and receives `B`, the
/// second sends `B` and receives `A`.
///
/// # Errors
///
/// The `socketpair` error (for example `EMFILE`, too many open files).
///
/// # Example
///
/// ```
/// let (mut a, mut b) = ply_os::ipc::duplex::<String, u32>()?;
/// a.send(&"hello".to_string())?;
/// b.send(&5)?;
/// assert_eq!(b.recv()?, "hello");
/// assert_eq!(a.recv()?, 5);
/// # Ok::<(), ply_os::ipc::IpcError>(())
/// ```
#[allow(clippy::type_complexity)] // two mirrored ends say more than an alias
pub fn duplex<A, B>() -> Result<(Duplex<A, B>, Duplex<B, A>), IpcError> {
    let (x, y) = UnixStream::pair()?;
    Ok((Duplex::from_stream(x), Duplex::from_stream(y)))
}

/// Forks a child that runs `f` with one end of a new channel, and returns
/// the other end with the child. Each process closes the end it does not
/// use, so either side sees [`IpcError::Closed`] once the other is gone.
///
/// # Errors
///
/// The `socketpair` or `fork` error.
///
/// # Example
///
/// ```
/// use ply_os::ipc::{IpcError, fork_duplex};
/// let (mut parent, child) = fork_duplex::<String, usize, _>(|mut end| {
///     let word = end.recv().unwrap_or_default();
///     let _ = end.send(&word.len());
///     0
/// })?;
/// parent.send(&"four".to_string())?;
/// assert_eq!(parent.recv()?, 4);
/// assert!(matches!(parent.recv(), Err(IpcError::Closed))); // the child is done
/// child.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fork_duplex<A, B, F>(f: F) -> Result<(Duplex<A, B>, ForkedChild), IpcError>
where
    F: FnOnce(Duplex<B, A>) -> i32 + Send + 'static,
{
    let (mine, theirs) = duplex::<A, B>()?;
    let mine_fd = mine.as_raw_fd();
    let body = move || {
        // SAFETY: closes this process's copy of the parent's end; the
        // `Duplex` that owns it lives in the parent's frames, which this
        // process never returns to (it ends with `_exit`).
        unsafe { libc::close(mine_fd) };
        f(theirs)
    };
    // SAFETY: `f` is `Send + 'static` (as `fork_child` asks); `theirs` owns
    // only its socket and buffers (its type parameters are phantom), and the
    // parent's copy, dropped at once, closes the parent's copy of the
    // child's end, as it should.
    let child = unsafe { fork_unchecked(body) }?;
    Ok((mine, child))
}

impl<S, R> Duplex<S, R> {
    /// Wraps a connected stream.
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// let (x, y) = UnixStream::pair().unwrap();
    /// let (mut a, mut b) = (
    ///     ply_os::ipc::Duplex::<u8, u8>::from_stream(x),
    ///     ply_os::ipc::Duplex::<u8, u8>::from_stream(y),
    /// );
    /// a.send(&1).unwrap();
    /// assert_eq!(b.recv().unwrap(), 1);
    /// ```
    pub fn from_stream(stream: UnixStream) -> Self {
        Duplex {
            stream,
            reader: FrameReader::new(DEFAULT_MAX_FRAME),
            writer: FrameWriter::default(),
            _types: PhantomData,
        }
    }

    /// Refuses incoming frames over `bytes` (default [`DEFAULT_MAX_FRAME`]).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{IpcError, duplex};
    /// let (mut a, b) = duplex::<Vec<u8>, Vec<u8>>()?;
    /// let mut b = b.with_max_frame(16);
    /// a.send(&vec![0u8; 100])?;
    /// assert!(matches!(b.recv(), Err(IpcError::TooLarge { .. })));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn with_max_frame(mut self, bytes: usize) -> Self {
        self.reader = FrameReader::new(bytes);
        self
    }

    /// The underlying stream (for `poll` or custom framing).
    ///
    /// # Example
    ///
    /// ```
    /// let (a, _b) = ply_os::ipc::duplex::<u8, u8>().unwrap();
    /// assert!(a.stream().peer_addr().is_ok());
    /// ```
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    #[cfg(test)]
    fn reader_capacity(&self) -> usize {
        self.reader.capacity()
    }

    /// Writes pending bytes until none are left or `deadline` passes.
    fn flush_until(&mut self, deadline: Option<Instant>) -> Result<(), IpcError> {
        loop {
            if self.writer.write_to(&mut DontWait(self.stream.as_fd()))? {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(IpcError::Timeout);
            }
            wait_writable(self.stream.as_fd(), deadline)?;
        }
    }

    /// Reads until a whole frame is in or `deadline` passes.
    fn frame_until(&mut self, deadline: Option<Instant>) -> Result<Vec<u8>, IpcError> {
        loop {
            if let Some(payload) = self.reader.next_frame()? {
                return Ok(payload);
            }
            match self.reader.read_from(&mut DontWait(self.stream.as_fd())) {
                Ok(0) => return Err(self.reader.end_of_stream()),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Err(self.reader.end_of_stream());
                }
                Err(e) => return Err(IpcError::Io(e)),
            }
            wait_readable(self.stream.as_fd(), time_left(deadline)?)?;
        }
    }
}

impl<S: Serialize, R: DeserializeOwned> Duplex<S, R> {
    /// Sends one message, waiting as long as the peer takes to make room.
    ///
    /// # Errors
    ///
    /// [`IpcError::Closed`] if the other end is gone; [`IpcError::Encode`];
    /// other I/O errors.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{IpcError, duplex};
    /// let (mut a, b) = duplex::<u8, u8>()?;
    /// drop(b);
    /// assert!(matches!(a.send(&1), Err(IpcError::Closed)));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn send(&mut self, message: &S) -> Result<(), IpcError> {
        self.writer.push(&frame::encode(message)?)?;
        self.flush_until(None)
    }

    /// As [`send`](Self::send), giving up after `timeout` with
    /// [`IpcError::Timeout`] if the peer does not take the whole message. The
    /// rest of the message stays queued and goes out first on the next send,
    /// so the stream stays in step.
    ///
    /// # Errors
    ///
    /// As `send`, plus [`IpcError::Timeout`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_os::ipc::{IpcError, duplex};
    /// let (mut a, _b) = duplex::<Vec<u8>, u8>()?;
    /// // Nobody reads: a big message cannot all go out.
    /// let big = vec![7u8; 8 << 20];
    /// assert!(matches!(a.send_timeout(&big, Duration::from_millis(20)), Err(IpcError::Timeout)));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn send_timeout(&mut self, message: &S, timeout: Duration) -> Result<(), IpcError> {
        let deadline = Instant::now() + timeout;
        self.writer.push(&frame::encode(message)?)?;
        self.flush_until(Some(deadline))
    }

    /// Waits for the next message.
    ///
    /// # Errors
    ///
    /// [`IpcError::Closed`] when the other end is gone; [`IpcError::Truncated`],
    /// [`IpcError::TooLarge`] or [`IpcError::Decode`] for a broken message.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{IpcError, duplex};
    /// let (a, mut b) = duplex::<u8, u8>()?;
    /// drop(a);
    /// assert!(matches!(b.recv(), Err(IpcError::Closed)));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn recv(&mut self) -> Result<R, IpcError> {
        frame::decode(&self.frame_until(None)?)
    }

    /// As [`recv`](Self::recv), giving up with [`IpcError::Timeout`] when the
    /// whole message has not arrived within `timeout`. The timeout bounds the
    /// message, not each read: a peer that sends one byte at a time cannot
    /// hold the call longer. Bytes of a message that started arriving are
    /// kept, and the next call continues it.
    ///
    /// # Errors
    ///
    /// As `recv`, plus [`IpcError::Timeout`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_os::ipc::{IpcError, duplex};
    /// let (_a, mut b) = duplex::<u8, u8>()?;
    /// assert!(matches!(b.recv_timeout(Duration::from_millis(10)), Err(IpcError::Timeout)));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<R, IpcError> {
        let deadline = Instant::now() + timeout;
        frame::decode(&self.frame_until(Some(deadline))?)
    }

    /// The next message if a whole one has arrived; never waits.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), plus [`IpcError::Timeout`] when no whole
    /// message is there yet.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{IpcError, duplex};
    /// let (mut a, mut b) = duplex::<u8, u8>()?;
    /// assert!(matches!(b.try_recv(), Err(IpcError::Timeout)));
    /// a.send(&3)?;
    /// assert_eq!(b.try_recv()?, 3);
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<R, IpcError> {
        frame::decode(&self.frame_until(Some(Instant::now()))?)
    }
}

impl<S, R> AsFd for Duplex<S, R> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl<S, R> AsRawFd for Duplex<S, R> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::fork_child;
    use std::io::Write;

    #[test]
    fn a_peer_that_dies_mid_message_is_truncated_not_a_hang() {
        let (mut a, b) = duplex::<u8, String>().unwrap();
        let mut raw = b.stream.try_clone().unwrap();
        let child = fork_child(move || {
            // Announce 100 bytes, send 3, die.
            raw.write_all(&[100, 0, 0, 0, 1, 2, 3]).unwrap();
            0
        })
        .unwrap();
        drop(b);
        assert!(child.wait().unwrap().success());
        assert!(matches!(
            a.recv_timeout(Duration::from_secs(10)),
            Err(IpcError::Truncated {
                expected: 104,
                got: 7
            })
        ));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let (mut a, b) = duplex::<u8, (u64, String)>().unwrap();
        let mut raw = b.stream.try_clone().unwrap();
        raw.write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff]).unwrap();
        assert!(matches!(a.recv(), Err(IpcError::Decode(_))));
    }

    /// A peer sends one byte every few milliseconds: the timeout bounds the
    /// whole message (it once bounded each read, so the drip held the call
    /// for as long as it went on), and the bytes that came are kept for the
    /// next call, which completes the message.
    #[test]
    fn a_drip_feeding_peer_cannot_hold_recv_past_its_timeout() {
        let (mut a, b) = duplex::<u8, Vec<u8>>().unwrap();
        let mut wire = Vec::new();
        frame::write_frame(&mut wire, &frame::encode(&vec![9u8; 40]).unwrap()).unwrap();
        let go = crate::shm::SharedBox::new(std::sync::atomic::AtomicBool::new(false)).unwrap();
        let mut raw = b.stream.try_clone().unwrap();
        crate::fork::scope(|s| {
            let go = &go;
            let child = s
                .fork_child(move || {
                    for (i, byte) in wire.iter().enumerate() {
                        // Hold the last byte until the parent has timed out once.
                        if i + 1 == wire.len() {
                            while !go.load(std::sync::atomic::Ordering::Acquire) {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                        }
                        if raw.write_all(&[*byte]).is_err() {
                            return 1;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    0
                })
                .unwrap();
            drop(b);
            let start = Instant::now();
            let first = a.recv_timeout(Duration::from_millis(30));
            let took = start.elapsed();
            assert!(matches!(first, Err(IpcError::Timeout)), "{first:?}");
            // The bound is the message's: far less than the drip's whole length
            // (45 bytes at 2 ms, and a last byte that waits for `go`).
            assert!(took < Duration::from_secs(5), "held for {took:?}");
            go.store(true, std::sync::atomic::Ordering::Release);
            assert_eq!(
                a.recv_timeout(Duration::from_secs(30)).unwrap(),
                vec![9u8; 40]
            );
            assert!(child.wait().unwrap().success());
        });
    }

    /// A header that announces just under the maximum, then nothing: the
    /// receiver's memory is what arrived, not what was announced.
    #[test]
    fn an_oversized_header_is_not_allocated_up_front() {
        let (mut a, b) = duplex::<u8, Vec<u8>>().unwrap();
        let mut raw = b.stream.try_clone().unwrap();
        let announced = (DEFAULT_MAX_FRAME - 1) as u32;
        raw.write_all(&announced.to_le_bytes()).unwrap();
        raw.write_all(&[1, 2, 3]).unwrap();
        assert!(matches!(
            a.recv_timeout(Duration::from_millis(20)),
            Err(IpcError::Timeout)
        ));
        assert_eq!(a.reader.buffered(), 7);
        assert!(
            a.reader_capacity() < 1 << 20,
            "{} bytes held for 7 received",
            a.reader_capacity()
        );
    }
}
