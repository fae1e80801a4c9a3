//! [`channel`]: a multi-producer, multi-consumer channel between processes
//! for any serde type, with close and iteration.
//!
//! # How
//!
//! The channel is a `SOCK_SEQPACKET` Unix socket pair: the kernel keeps each
//! message whole and in order, and hands it to exactly one of the processes
//! that call `recv` on the receiving end. Any number of processes may hold
//! senders and receivers — inherited through `fork`, or [`Sender::try_clone`]d
//! — and no lock is shared between them: a sender or receiver stopped or
//! killed at any instant leaves the channel intact (a message is written or
//! read whole by one system call, or not at all). Messages are
//! postcard-encoded, so any `Serialize`/`Deserialize` type travels.
//!
//! **Close**: when every sender (in every process) is dropped, receivers
//! drain what was sent and then see the end ([`Receiver::recv`] returns
//! [`IpcError::Closed`]; the iterator ends). When every receiver is dropped,
//! [`Sender::send`] fails with [`IpcError::Closed`].
//!
//! **Size**: a message must fit the socket's send buffer, which the channel
//! raises as far as the system allows (`SO_SNDBUF`, capped by
//! `net.core.wmem_max`); [`Sender::max_message`] says how large that is.
//! Larger messages are refused with [`IpcError::TooLarge`], never cut.
//!
//! A process should let go of the ends it does not use: an end held open by
//! a process that never uses it keeps the other side from seeing the close.
//! A forked child has a copy of every end its parent had; it calls
//! [`Sender::leave`] (or [`Receiver::leave`]) on those it will not use.

use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, recv, send, socketpair,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::IpcError;
use super::frame;
use super::ready::{time_left, wait_readable, wait_writable};

/// The send buffer the channel asks for (the kernel may grant less).
const WANTED_BUFFER: usize = 4 << 20;

/// Makes a channel for messages of type `T`: a sender and a receiver, each
/// usable from any number of processes (fork after making it, or clone).
///
/// # Errors
///
/// The `socketpair` error.
///
/// # Example
///
/// Two producer processes, one consumer, and the end of the stream when both
/// producers are done:
///
/// ```
/// use ply_os::fork::fork_child;
/// use ply_os::ipc::channel;
///
/// let (tx, rx) = channel::<(u32, String)>()?;
/// let producers: Vec<_> = (0..2u32)
///     .map(|p| {
///         let tx = tx.try_clone()?; // moved into the child
///         fork_child(move || {
///             for i in 0..100 {
///                 tx.send(&(p, format!("item {i}"))).unwrap();
///             }
///             0
///         })
///     })
///     .collect::<Result<_, _>>()?;
/// drop(tx); // this process sends nothing: only the producers hold senders now
/// let got: Vec<(u32, String)> = rx.iter().collect();
/// assert_eq!(got.len(), 200);
/// for p in producers {
///     assert!(p.wait()?.success());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn channel<T>() -> Result<(Sender<T>, Receiver<T>), IpcError> {
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| IpcError::Io(e.into()))?;
    // One direction only: the sender's end never reads, the receiver's
    // never writes.
    let _ = rustix::net::shutdown(&a, rustix::net::Shutdown::Read);
    let _ = rustix::net::shutdown(&b, rustix::net::Shutdown::Write);
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&a, WANTED_BUFFER);
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&b, WANTED_BUFFER);
    Ok((
        Sender {
            fd: a,
            _type: PhantomData,
        },
        Receiver {
            fd: b,
            _type: PhantomData,
        },
    ))
}

/// The sending end of a [`channel`]. Shared by reference (it is `Sync`), by
/// [`try_clone`](Self::try_clone), or across `fork`.
#[derive(Debug)]
pub struct Sender<T> {
    fd: OwnedFd,
    _type: PhantomData<fn(T)>,
}

/// The receiving end of a [`channel`]. Shared like a [`Sender`]: each
/// message goes to exactly one receiver.
#[derive(Debug)]
pub struct Receiver<T> {
    fd: OwnedFd,
    _type: PhantomData<fn() -> T>,
}

impl<T: Serialize> Sender<T> {
    /// Sends one message, waiting while the channel is full.
    ///
    /// # Errors
    ///
    /// [`IpcError::Closed`] when no receiver is left; [`IpcError::TooLarge`]
    /// for a message over [`max_message`](Self::max_message);
    /// [`IpcError::Encode`].
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = ply_os::ipc::channel::<Vec<u16>>()?;
    /// tx.send(&vec![1, 2, 3])?;
    /// assert_eq!(rx.recv()?, [1, 2, 3]);
    /// # Ok::<(), ply_os::ipc::IpcError>(())
    /// ```
    pub fn send(&self, message: &T) -> Result<(), IpcError> {
        self.send_until(message, None)
    }

    /// As [`send`](Self::send), giving up with [`IpcError::Timeout`] if the
    /// channel stays full for `timeout`. Nothing of the message is sent then.
    ///
    /// # Errors
    ///
    /// As `send`, plus [`IpcError::Timeout`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_os::ipc::{IpcError, channel};
    /// let (tx, _rx) = channel::<Vec<u8>>()?;
    /// let big = vec![0u8; 64 << 10];
    /// // Nobody reads: the channel fills up, and a bounded send says so.
    /// let full = loop {
    ///     match tx.send_timeout(&big, Duration::from_millis(10)) {
    ///         Ok(()) => continue,
    ///         Err(e) => break e,
    ///     }
    /// };
    /// assert!(matches!(full, IpcError::Timeout));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn send_timeout(&self, message: &T, timeout: Duration) -> Result<(), IpcError> {
        self.send_until(message, Some(Instant::now() + timeout))
    }

    fn send_until(&self, message: &T, deadline: Option<Instant>) -> Result<(), IpcError> {
        // Sent as `Some(message)`: never zero bytes (as `()` alone would
        // be), which a receiver could not tell from the end of the stream.
        let bytes = frame::encode(&Some(message))?;
        let max = self.max_message();
        if bytes.len() > max {
            return Err(IpcError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        loop {
            match send(&self.fd, &bytes, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::AGAIN) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET) => {
                    return Err(IpcError::Closed);
                }
                Err(rustix::io::Errno::MSGSIZE) => {
                    return Err(IpcError::TooLarge {
                        len: bytes.len(),
                        max,
                    });
                }
                Err(e) => return Err(IpcError::Io(e.into())),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(IpcError::Timeout);
            }
            wait_writable(self.fd.as_fd(), deadline)?;
        }
    }

    /// The largest encoded message this channel carries, in bytes.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, _rx) = ply_os::ipc::channel::<u8>()?;
    /// assert!(tx.max_message() >= 100_000);
    /// # Ok::<(), ply_os::ipc::IpcError>(())
    /// ```
    pub fn max_message(&self) -> usize {
        // The kernel doubles the size it was given for its bookkeeping and
        // reports the doubled figure; a message also pays for its skb.
        rustix::net::sockopt::socket_send_buffer_size(&self.fd).map_or(100_000, |n| n / 2 - 1024)
    }
}

impl<T> Sender<T> {
    /// Another sender for the same channel (a duplicated descriptor).
    ///
    /// # Errors
    ///
    /// The `dup` error.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = ply_os::ipc::channel::<u8>()?;
    /// let tx2 = tx.try_clone()?;
    /// drop(tx);
    /// tx2.send(&1)?; // still open: a sender is left
    /// drop(tx2);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Sender {
            fd: self.fd.try_clone()?,
            _type: PhantomData,
        })
    }

    /// Lets go of this process's hold on the sending end, without dropping
    /// the value: for a forked child that inherited a sender it will not use
    /// (a consumer), so that receivers still see the end once the real
    /// senders are done. Sending through it afterwards fails.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::fork::scope;
    /// use ply_os::ipc::channel;
    /// let (tx, rx) = channel::<u32>()?;
    /// let total = scope(|s| {
    ///     let consumer = s.fork_child(|| {
    ///         tx.leave(); // or this consumer would wait for itself to close
    ///         rx.iter().sum::<u32>() as i32
    ///     })?;
    ///     rx.leave();
    ///     for i in 1..=4 {
    ///         tx.send(&i)?;
    ///     }
    ///     tx.leave(); // the consumer's `rx` sees the end
    ///     Ok::<_, Box<dyn std::error::Error>>(consumer.wait()?)
    /// })?;
    /// assert_eq!(total, ply_os::fork::ChildExit::Exited(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn leave(&self) {
        leave(&self.fd);
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    /// Waits for the next message.
    ///
    /// # Errors
    ///
    /// [`IpcError::Closed`] once every sender is gone and every message has
    /// been received; [`IpcError::Decode`] for a message that is not a `T`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{IpcError, channel};
    /// let (tx, rx) = channel::<String>()?;
    /// tx.send(&"last".to_string())?;
    /// drop(tx);
    /// assert_eq!(rx.recv()?, "last");
    /// assert!(matches!(rx.recv(), Err(IpcError::Closed)));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn recv(&self) -> Result<T, IpcError> {
        self.recv_until(None)
    }

    /// As [`recv`](Self::recv), giving up with [`IpcError::Timeout`] when no
    /// message arrives within `timeout`.
    ///
    /// # Errors
    ///
    /// As `recv`, plus [`IpcError::Timeout`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_os::ipc::{IpcError, channel};
    /// let (_tx, rx) = channel::<u8>()?;
    /// assert!(matches!(rx.recv_timeout(Duration::from_millis(10)), Err(IpcError::Timeout)));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, IpcError> {
        self.recv_until(Some(Instant::now() + timeout))
    }

    /// The next message if one is there; never waits.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv), plus [`IpcError::Timeout`] when none is there.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{IpcError, channel};
    /// let (tx, rx) = channel::<u8>()?;
    /// assert!(matches!(rx.try_recv(), Err(IpcError::Timeout)));
    /// tx.send(&9)?;
    /// assert_eq!(rx.try_recv()?, 9);
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn try_recv(&self) -> Result<T, IpcError> {
        self.recv_until(Some(Instant::now()))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, IpcError> {
        let mut buf = vec![0u8; 4096];
        loop {
            // Peek at the size of the next message (MSG_TRUNC reports its
            // whole length), so the buffer fits it before it is taken.
            match recv(
                &self.fd,
                &mut buf[..],
                RecvFlags::DONTWAIT | RecvFlags::PEEK | RecvFlags::TRUNC,
            ) {
                Ok((_, 0)) => return Err(IpcError::Closed),
                Ok((_, len)) => {
                    if len > buf.len() {
                        buf.resize(len, 0);
                    }
                    // Another receiver may take it first: then this reads the
                    // next message, which is checked the same way.
                    match recv(
                        &self.fd,
                        &mut buf[..],
                        RecvFlags::DONTWAIT | RecvFlags::TRUNC,
                    ) {
                        Ok((_, 0)) => return Err(IpcError::Closed),
                        Ok((_, got)) if got <= buf.len() => {
                            return match frame::decode::<Option<T>>(&buf[..got])? {
                                Some(message) => Ok(message),
                                None => Err(IpcError::Decode("an empty message".into())),
                            };
                        }
                        // Raced with another receiver onto a larger message:
                        // it was cut, so it is lost; say so.
                        Ok((_, got)) => {
                            return Err(IpcError::Truncated {
                                expected: got,
                                got: buf.len(),
                            });
                        }
                        Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => continue,
                        Err(e) => return Err(IpcError::Io(e.into())),
                    }
                }
                Err(rustix::io::Errno::AGAIN) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(IpcError::Io(e.into())),
            }
            wait_readable(self.fd.as_fd(), time_left(deadline)?)?;
        }
    }

    /// The messages as they come, until every sender is gone (or a message
    /// does not decode).
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = ply_os::ipc::channel::<u32>()?;
    /// for i in 0..3 {
    ///     tx.send(&i)?;
    /// }
    /// drop(tx);
    /// assert_eq!(rx.iter().sum::<u32>(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }
}

impl<T> Receiver<T> {
    /// Another receiver for the same channel (a duplicated descriptor).
    ///
    /// # Errors
    ///
    /// The `dup` error.
    ///
    /// # Example
    ///
    /// ```
    /// let (tx, rx) = ply_os::ipc::channel::<u8>()?;
    /// let rx2 = rx.try_clone()?;
    /// tx.send(&1)?;
    /// tx.send(&2)?;
    /// assert_eq!(rx.recv()? + rx2.recv()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Receiver {
            fd: self.fd.try_clone()?,
            _type: PhantomData,
        })
    }

    /// Lets go of this process's hold on the receiving end, without dropping
    /// the value: for a process that inherited a receiver it will not use,
    /// so that senders see the close once the real receivers are gone.
    /// Receiving through it afterwards fails.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{IpcError, channel};
    /// let (tx, rx) = channel::<u8>()?;
    /// rx.leave();
    /// assert!(matches!(tx.send(&1), Err(IpcError::Closed)));
    /// # Ok::<(), IpcError>(())
    /// ```
    pub fn leave(&self) {
        leave(&self.fd);
    }
}

impl<T: DeserializeOwned> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter(self)
    }
}

/// The messages of a [`Receiver`] it owns, until every sender is gone.
///
/// # Example
///
/// ```
/// let (tx, rx) = ply_os::ipc::channel::<u8>()?;
/// tx.send(&4)?;
/// drop(tx);
/// let all: Vec<u8> = rx.into_iter().collect();
/// assert_eq!(all, [4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct IntoIter<T>(Receiver<T>);

impl<T: DeserializeOwned> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.recv().ok()
    }
}

/// Replaces `fd`'s socket with `/dev/null` in this process: the socket loses
/// this process's reference, and the descriptor number stays owned by its
/// value (closed on drop as before), so nothing else can be closed by
/// mistake.
fn leave(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::File::open("/dev/null") {
        // SAFETY: both descriptors are open and owned (`null` here, `fd` by
        // its channel end); dup3 atomically makes `fd`'s number refer to
        // /dev/null, so it stays a valid descriptor its owner will close.
        unsafe { libc::dup3(null.as_raw_fd(), fd.as_raw_fd(), libc::O_CLOEXEC) };
    }
}

impl<T> AsFd for Sender<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl<T> AsFd for Receiver<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
