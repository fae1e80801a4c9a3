//! [`Duplex`]: a typed two-way channel between two processes.

use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::IpcError;
use super::frame::{self, DEFAULT_MAX_FRAME};

/// One end of a two-way channel that sends `S` and receives `R`, as framed
/// postcard messages over a Unix socket pair.
///
/// Make both ends with [`duplex`] before `fork()`; afterwards each process
/// keeps its end and drops the other, so that when one side exits the other
/// sees [`IpcError::Closed`] instead of waiting forever.
///
/// # Example
///
/// A child squares the numbers its parent sends:
///
/// ```
/// use ply_os::fork::fork_child;
/// use ply_os::ipc::{IpcError, duplex};
///
/// let (parent, child_end) = duplex::<u64, u64>()?;
/// let mut parent = Some(parent);
/// let child = fork_child(|| {
///     drop(parent.take()); // the child's copy of the parent's end
///     let mut end = child_end.reverse();
///     while let Ok(x) = end.recv() {
///         end.send(&(x * x)).unwrap();
///     }
///     0
/// })?;
/// let mut parent = parent.unwrap();
/// for x in 1..=3 {
///     parent.send(&x)?;
///     assert_eq!(parent.recv()?, x * x);
/// }
/// drop(parent); // the child sees Closed and exits
/// assert!(child.wait()?.success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Duplex<S, R> {
    stream: UnixStream,
    max_frame: usize,
    _types: PhantomData<fn(S) -> R>,
}

/// Both ends of a new channel, as [`duplex`] returns them.
///
/// # Example
///
/// ```
/// let (a, b): ply_os::ipc::DuplexPair<u8, u8> = ply_os::ipc::duplex()?;
/// # drop((a, b));
/// # Ok::<(), ply_os::ipc::IpcError>(())
/// ```
pub type DuplexPair<A, B> = (Duplex<A, B>, Duplex<A, B>);

/// Makes the two ends of a channel: the first sends `A` and receives `B`, the
/// second is its mirror (turn it around with [`Duplex::reverse`]).
///
/// # Errors
///
/// The `socketpair` error (for example `EMFILE`, too many open files).
///
/// # Example
///
/// ```
/// let (mut a, b) = ply_os::ipc::duplex::<String, u32>()?;
/// let mut b = b.reverse();
/// a.send(&"hello".to_string())?;
/// b.send(&5)?;
/// assert_eq!(b.recv()?, "hello");
/// assert_eq!(a.recv()?, 5);
/// # Ok::<(), ply_os::ipc::IpcError>(())
/// ```
pub fn duplex<A, B>() -> Result<DuplexPair<A, B>, IpcError> {
    let (x, y) = UnixStream::pair()?;
    Ok((Duplex::from_stream(x), Duplex::from_stream(y)))
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
            max_frame: DEFAULT_MAX_FRAME,
            _types: PhantomData,
        }
    }

    /// The same end with the message types swapped: what the other side of a
    /// [`duplex`] pair is.
    ///
    /// # Example
    ///
    /// ```
    /// let (_a, b) = ply_os::ipc::duplex::<u8, String>().unwrap();
    /// let _b: ply_os::ipc::Duplex<String, u8> = b.reverse();
    /// ```
    pub fn reverse(self) -> Duplex<R, S> {
        Duplex {
            stream: self.stream,
            max_frame: self.max_frame,
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
    /// let mut b = b.reverse().with_max_frame(16);
    /// a.send(&vec![0u8; 100])?;
    /// assert!(matches!(b.recv(), Err(IpcError::TooLarge { .. })));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn with_max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
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
}

impl<S: Serialize, R: DeserializeOwned> Duplex<S, R> {
    /// Sends one message.
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
        frame::write_frame(&mut self.stream, &frame::encode(message)?)
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
    /// let (a, b) = duplex::<u8, u8>()?;
    /// drop(a);
    /// assert!(matches!(b.reverse().recv(), Err(IpcError::Closed)));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn recv(&mut self) -> Result<R, IpcError> {
        self.stream.set_read_timeout(None)?;
        frame::decode(&frame::read_frame(&mut self.stream, self.max_frame)?)
    }

    /// As [`recv`](Self::recv), giving up after `timeout` with
    /// [`IpcError::Timeout`] if no message started arriving. A message that
    /// starts but does not finish within `timeout` is [`IpcError::Truncated`].
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
    /// let (_a, b) = duplex::<u8, u8>()?;
    /// let mut b = b.reverse();
    /// assert!(matches!(b.recv_timeout(Duration::from_millis(10)), Err(IpcError::Timeout)));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<R, IpcError> {
        // A zero timeout means "block" to the socket API.
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_micros(1))))?;
        let result = frame::read_frame(&mut self.stream, self.max_frame);
        self.stream.set_read_timeout(None)?;
        frame::decode(&result?)
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
        let (a, b) = duplex::<u8, String>().unwrap();
        let mut raw = b.stream.try_clone().unwrap();
        let child = fork_child(move || {
            // Announce 100 bytes, send 3, die.
            raw.write_all(&[100, 0, 0, 0, 1, 2, 3]).unwrap();
            0
        })
        .unwrap();
        drop(b);
        assert!(child.wait().unwrap().success());
        let mut a = a;
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
        let (a, b) = duplex::<u8, (u64, String)>().unwrap();
        let mut raw = b.stream.try_clone().unwrap();
        raw.write_all(&[3, 0, 0, 0, 0xff, 0xff, 0xff]).unwrap();
        let mut a = a;
        assert!(matches!(a.recv(), Err(IpcError::Decode(_))));
    }
}
