//! Inter-process communication: framed, typed messages over a socket pair, a
//! blocking queue in shared memory, and shared values and arrays.
//!
//! | piece | what it is | cost |
//! |---|---|---|
//! | [`frame`] | length-prefixed frames with a checked maximum; serde + [postcard] encoding | the codec every pipe message in ply uses |
//! | [`Duplex`] | a typed two-way channel between two processes (`send`/`recv`, deadlines per message) | one `send` and one or two `recv`s per message, plus encoding |
//! | [`channel`] | a multi-producer, multi-consumer channel between processes for any serde type, with close and iteration (`SOCK_SEQPACKET`) | one `send` and one or two `recv`s per message, plus encoding |
//! | [`ProcessQueue`] | ply-core's SCQ queue in `MAP_SHARED` memory, with futex sleeps (`send`/`recv`, as every channel here) | no system call while items flow; no copy through the kernel |
//! | [`SharedValue`], [`SharedArray`] | plain data in shared memory behind ply-core's robust lock (a holder that dies never hangs the others) | a memory access and an uncontended CAS |
//!
//! # Errors, not panics
//!
//! Everything read from another process is untrusted: a frame whose length
//! exceeds the maximum, a peer that closes mid-message, or bytes that do not
//! decode as the expected type become an [`IpcError`] — never a panic, undefined
//! behaviour or a hang on a closed peer. The decoder is fuzzed with random
//! bytes (see the `frame` tests).
//!
//! [postcard]: https://docs.rs/postcard

pub mod frame;

mod channel;
mod duplex;
mod queue;
pub(crate) mod ready;
mod shared;

pub use channel::{IntoIter, Receiver, Sender, channel};
pub use duplex::{Duplex, duplex, fork_duplex};
pub use queue::ProcessQueue;
pub use shared::{
    SharedArray, SharedArrayGuard, SharedArrayLock, SharedArrayRecovery, SharedValue,
};

use std::fmt;
use std::io;

/// Why a message could not be sent or received.
///
/// # Example
///
/// ```
/// use ply_os::ipc::{IpcError, frame};
///
/// // Three bytes that claim a 4 GiB frame: refused before anything is allocated.
/// let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
/// let err = frame::read_frame(&mut bytes, 1 << 20).unwrap_err();
/// assert!(matches!(err, IpcError::TooLarge { .. }));
/// assert_eq!(err.to_string(), "frame of 4294967295 bytes exceeds the maximum of 1048576");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum IpcError {
    /// The peer closed the connection between messages.
    Closed,
    /// The peer closed the connection (or stalled past a deadline) in the middle
    /// of a frame; the channel is out of step and should be dropped.
    Truncated {
        /// Bytes the frame needed (header included).
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// A frame announced more bytes than the allowed maximum.
    TooLarge {
        /// The announced length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A complete frame did not decode as the expected type.
    Decode(String),
    /// A value could not be encoded.
    Encode(String),
    /// Nothing arrived (or could be sent) before the deadline.
    Timeout,
    /// An operating-system error.
    Io(io::Error),
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpcError::Closed => write!(f, "the peer closed the channel"),
            IpcError::Truncated { expected, got } => write!(
                f,
                "the peer closed the channel mid-message ({got} of {expected} bytes arrived)"
            ),
            IpcError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            IpcError::Decode(why) => write!(f, "a message did not decode: {why}"),
            IpcError::Encode(why) => write!(f, "a message could not be encoded: {why}"),
            IpcError::Timeout => write!(f, "timed out"),
            IpcError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for IpcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IpcError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for IpcError {
    fn from(e: io::Error) -> Self {
        IpcError::Io(e)
    }
}
