//! Length-prefixed frames and their serde encoding.
//!
//! A frame is a 4-byte little-endian length `n` followed by `n` bytes of
//! payload. The reader checks `n` against a maximum, and even below it
//! allocates only as bytes arrive (a header announcing 60 MiB followed by
//! nothing costs a few KiB, not 60 MiB), so a corrupt or hostile length cannot
//! exhaust memory; it tells a clean close between frames
//! ([`IpcError::Closed`]) from one inside a frame ([`IpcError::Truncated`]).
//!
//! [`FrameReader`] is the incremental form: it keeps a connection's partial
//! frame between reads, so an event loop can feed it whatever a non-blocking
//! read returned and take out whole frames, never waiting for the rest of one.
//!
//! Payloads are encoded with [postcard]: serde's compact binary format (varint
//! integers, no field names), well kept and `no_std`-capable. Decoding requires
//! the payload to be consumed exactly, so trailing garbage is an error too.
//!
//! [postcard]: https://docs.rs/postcard
//!
//! # Example
//!
//! ```
//! use ply_os::ipc::frame;
//!
//! let mut wire = Vec::new();
//! frame::write_frame(&mut wire, &frame::encode(&("job", 7u32))?)?;
//! let payload = frame::read_frame(&mut wire.as_slice(), frame::DEFAULT_MAX_FRAME)?;
//! let (name, n): (String, u32) = frame::decode(&payload)?;
//! assert_eq!((name.as_str(), n), ("job", 7));
//! # Ok::<(), ply_os::ipc::IpcError>(())
//! ```

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::IpcError;

/// The largest payload accepted by default: 64 MiB.
///
/// # Example
///
/// ```
/// assert_eq!(ply_os::ipc::frame::DEFAULT_MAX_FRAME, 64 << 20);
/// ```
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// Bytes of the length prefix.
///
/// # Example
///
/// ```
/// let mut wire = Vec::new();
/// ply_os::ipc::frame::write_frame(&mut wire, b"abc").unwrap();
/// assert_eq!(wire.len(), ply_os::ipc::frame::HEADER_LEN + 3);
/// ```
pub const HEADER_LEN: usize = 4;

/// Encodes `value` with postcard.
///
/// # Errors
///
/// [`IpcError::Encode`] if serde refuses the value (for example a map whose
/// length is unknown up front).
///
/// # Example
///
/// ```
/// let bytes = ply_os::ipc::frame::encode(&300u32).unwrap();
/// assert_eq!(bytes, [0xac, 0x02]); // a varint: small numbers are small
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, IpcError> {
    postcard::to_stdvec(value).map_err(|e| IpcError::Encode(e.to_string()))
}

/// Decodes a whole payload as a `T`.
///
/// # Errors
///
/// [`IpcError::Decode`] if the bytes are not a `T`, or are a `T` followed by
/// more bytes.
///
/// # Example
///
/// ```
/// use ply_os::ipc::{IpcError, frame};
/// assert_eq!(frame::decode::<u32>(&[0xac, 0x02]).unwrap(), 300);
/// assert!(matches!(frame::decode::<u32>(&[0xac]), Err(IpcError::Decode(_))));
/// assert!(matches!(frame::decode::<u32>(&[1, 2]), Err(IpcError::Decode(_))));
/// ```
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, IpcError> {
    match postcard::take_from_bytes(payload) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(IpcError::Decode(format!(
            "{} unexpected bytes after the message",
            rest.len()
        ))),
        Err(e) => Err(IpcError::Decode(e.to_string())),
    }
}

/// Writes one frame: the length, then `payload`.
///
/// # Errors
///
/// [`IpcError::TooLarge`] for a payload over 4 GiB − 1 (the prefix is 32-bit);
/// [`IpcError::Closed`] if the reader is gone (`EPIPE`); other I/O errors.
///
/// # Example
///
/// ```
/// let mut wire = Vec::new();
/// ply_os::ipc::frame::write_frame(&mut wire, b"hi").unwrap();
/// assert_eq!(wire, [2, 0, 0, 0, b'h', b'i']);
/// ```
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> Result<(), IpcError> {
    let len = u32::try_from(payload.len()).map_err(|_| IpcError::TooLarge {
        len: payload.len(),
        max: u32::MAX as usize,
    })?;
    // One buffer, one write: a frame is never interleaved with another writer's
    // on a stream socket as long as writers do not share the socket unlocked.
    let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf).map_err(|e| match e.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => IpcError::Closed,
        _ => IpcError::Io(e),
    })
}

/// Reads one frame's payload, refusing lengths over `max`, from a blocking
/// reader.
///
/// # Errors
///
/// [`IpcError::Closed`] at end of stream before a frame starts;
/// [`IpcError::Truncated`] at end of stream (or a read timeout) inside one;
/// [`IpcError::TooLarge`]; [`IpcError::Timeout`] if a read timeout expired
/// before the frame started; other I/O errors.
///
/// # Example
///
/// ```
/// use ply_os::ipc::{IpcError, frame};
/// let mut wire: &[u8] = &[3, 0, 0, 0, b'a', b'b']; // announces 3, carries 2
/// assert!(matches!(
///     frame::read_frame(&mut wire, 1024),
///     Err(IpcError::Truncated { expected: 7, got: 6 })
/// ));
/// ```
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Vec<u8>, IpcError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Err(IpcError::Closed);
    }
    if got < HEADER_LEN {
        return Err(IpcError::Truncated {
            expected: HEADER_LEN,
            got,
        });
    }
    let len = u32::from_le_bytes(header) as usize;
    if len > max {
        return Err(IpcError::TooLarge { len, max });
    }
    // Grown a chunk at a time as bytes come, never to `len` up front: a
    // header that lies costs what actually arrives.
    let mut payload = Vec::new();
    while payload.len() < len {
        let have = payload.len();
        let step = (len - have).min(READ_CHUNK.max(have));
        payload.resize(have + step, 0);
        let got = read_full(r, &mut payload[have..]).map_err(|e| match e {
            IpcError::Timeout => IpcError::Truncated {
                expected: HEADER_LEN + len,
                got: HEADER_LEN + have,
            },
            e => e,
        })?;
        if got < step {
            return Err(IpcError::Truncated {
                expected: HEADER_LEN + len,
                got: HEADER_LEN + have + got,
            });
        }
    }
    Ok(payload)
}

/// Reads until `buf` is full or the stream ends; returns the bytes read. A
/// timeout before any byte is [`IpcError::Timeout`]; after some, it counts as
/// the end (the caller reports truncation).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, IpcError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if got == 0 {
                    return Err(IpcError::Timeout);
                }
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(IpcError::Io(e)),
        }
    }
    Ok(got)
}

/// Bytes asked of one `read`: what a reader may hold beyond the frame it is
/// assembling.
const READ_CHUNK: usize = 64 << 10;

/// The least a [`FrameReader`] asks of one `read`: one page. Most messages
/// are small; a larger one is read in reads that double. A larger first read
/// would zero, and fault in, pages most connections never use: in a parent
/// whose heap its forked workers share copy-on-write, each is a page copy.
const FIRST_READ: usize = 4 << 10;

/// Assembles frames from bytes as they arrive, for non-blocking readers.
///
/// It holds about twice the bytes that came (at least 4 KiB): a frame's
/// buffer grows with the bytes that arrived, never to the length its header
/// announced.
///
/// # Example
///
/// Bytes arriving in dribs and drabs make whole frames once complete:
///
/// ```
/// use ply_os::ipc::frame::{FrameReader, write_frame};
///
/// let mut wire = Vec::new();
/// write_frame(&mut wire, b"one")?;
/// write_frame(&mut wire, b"two")?;
/// let mut reader = FrameReader::new(1024);
/// let mut frames = Vec::new();
/// for byte in wire.chunks(1) {
///     reader.read_from(&mut &byte[..])?;
///     while let Some(frame) = reader.next_frame()? {
///         frames.push(frame);
///     }
/// }
/// assert_eq!(frames, [b"one".to_vec(), b"two".to_vec()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FrameReader {
    /// `buf[start..end]` holds received bytes not yet handed out; the rest of
    /// `buf` is room for the next read.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl FrameReader {
    /// A reader that refuses frames over `max` bytes of payload.
    ///
    /// # Example
    ///
    /// ```
    /// let reader = ply_os::ipc::frame::FrameReader::new(1 << 20);
    /// assert_eq!(reader.buffered(), 0);
    /// ```
    pub fn new(max: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max,
        }
    }

    /// Bytes received and not yet taken out as frames: a partial frame when
    /// [`next_frame`](Self::next_frame) has returned `None`.
    ///
    /// # Example
    ///
    /// ```
    /// let mut reader = ply_os::ipc::frame::FrameReader::new(64);
    /// reader.read_from(&mut &[9u8, 0, 0][..])?; // half a header
    /// assert_eq!(reader.buffered(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes of memory the buffer holds (received or room for more).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The payload length announced by the buffered header, if one is
    /// complete.
    fn announced(&self) -> Option<usize> {
        let live = &self.buf[self.start..self.end];
        let header: [u8; HEADER_LEN] = live.get(..HEADER_LEN)?.try_into().ok()?;
        Some(u32::from_le_bytes(header) as usize)
    }

    /// Takes the next complete frame's payload out, if one has arrived.
    ///
    /// # Errors
    ///
    /// [`IpcError::TooLarge`] as soon as a header announces more than the
    /// maximum (the stream is then out of step and should be dropped).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{IpcError, frame::FrameReader};
    /// let mut reader = FrameReader::new(4);
    /// reader.read_from(&mut &[200u8, 0, 0, 0][..])?;
    /// assert!(matches!(reader.next_frame(), Err(IpcError::TooLarge { len: 200, max: 4 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, IpcError> {
        let Some(len) = self.announced() else {
            return Ok(None);
        };
        if len > self.max {
            return Err(IpcError::TooLarge { len, max: self.max });
        }
        if self.buffered() < HEADER_LEN + len {
            return Ok(None);
        }
        let from = self.start + HEADER_LEN;
        if self.start == 0 && self.end == from + len && len > READ_CHUNK {
            // A large frame that fills the buffer: hand the buffer over
            // (shifting out the header) rather than copy it.
            let mut whole = std::mem::take(&mut self.buf);
            whole.truncate(self.end);
            whole.drain(..HEADER_LEN);
            self.end = 0;
            return Ok(Some(whole));
        }
        let payload = self.buf[from..from + len].to_vec();
        self.start = from + len;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > 4 * READ_CHUNK {
                // A large frame has left: don't keep its buffer for small ones.
                self.buf = Vec::new();
            }
        }
        Ok(Some(payload))
    }

    /// One `read` from `r` into the buffer; returns the bytes read (0 at end
    /// of stream). Asks for at most as many bytes as are buffered already,
    /// or 4 KiB if that is more, so memory follows the bytes that came (at
    /// most about twice them).
    ///
    /// # Errors
    ///
    /// The reader's error (`WouldBlock` from a non-blocking source).
    ///
    /// # Example
    ///
    /// ```
    /// let mut reader = ply_os::ipc::frame::FrameReader::new(64);
    /// assert_eq!(reader.read_from(&mut &[1u8, 0, 0, 0, 42][..])?, 5);
    /// assert_eq!(reader.next_frame().unwrap(), Some(vec![42]));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_from(&mut self, r: &mut impl Read) -> io::Result<usize> {
        // Room for the rest of the frame being assembled, but never more
        // than what has arrived already (or one chunk): a large frame is
        // read in reads that double, without trusting its header up front.
        let rest = self
            .announced()
            .map_or(0, |len| (HEADER_LEN + len).saturating_sub(self.buffered()));
        let want = rest.min(self.buffered()).max(FIRST_READ);
        if self.buf.len() - self.end < want / 2 {
            if self.start > 0 {
                // Move the live bytes to the front rather than grow.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < want / 2 {
                // Grow: zeroed once, then reused.
                let room = self.end + want;
                self.buf.resize(room, 0);
            }
        }
        let got = r.read(&mut self.buf[self.end..])?;
        self.end += got;
        Ok(got)
    }

    /// The error for an end of stream now: [`IpcError::Closed`] between
    /// frames, [`IpcError::Truncated`] inside one.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{IpcError, frame::FrameReader};
    /// let mut reader = FrameReader::new(64);
    /// assert!(matches!(reader.end_of_stream(), IpcError::Closed));
    /// reader.read_from(&mut &[5u8, 0, 0, 0, 1][..])?;
    /// assert!(matches!(reader.end_of_stream(), IpcError::Truncated { expected: 9, got: 5 }));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn end_of_stream(&self) -> IpcError {
        match (self.buffered(), self.announced()) {
            (0, _) => IpcError::Closed,
            (got, Some(len)) => IpcError::Truncated {
                expected: HEADER_LEN + len,
                got,
            },
            (got, None) => IpcError::Truncated {
                expected: HEADER_LEN,
                got,
            },
        }
    }
}

/// Frames waiting to be written to a non-blocking stream, and how much of
/// the first has gone.
///
/// # Example
///
/// ```
/// use ply_os::ipc::frame::{FrameWriter, read_frame};
/// let mut w = FrameWriter::default();
/// w.push(b"hello")?;
/// let mut wire = Vec::new();
/// assert!(w.write_to(&mut wire)?); // all flushed
/// assert_eq!(read_frame(&mut wire.as_slice(), 64)?, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct FrameWriter {
    pending: Vec<u8>,
    sent: usize,
}

impl FrameWriter {
    /// Queues one frame.
    ///
    /// # Errors
    ///
    /// [`IpcError::TooLarge`] for a payload over 4 GiB − 1.
    ///
    /// # Example
    ///
    /// ```
    /// let mut w = ply_os::ipc::frame::FrameWriter::default();
    /// w.push(b"x")?;
    /// assert_eq!(w.pending(), 5);
    /// # Ok::<(), ply_os::ipc::IpcError>(())
    /// ```
    pub fn push(&mut self, payload: &[u8]) -> Result<(), IpcError> {
        if self.sent == self.pending.len() {
            self.pending.clear();
            self.sent = 0;
        }
        write_frame(&mut self.pending, payload)
    }

    /// Bytes queued and not yet written.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::ipc::frame::FrameWriter::default().pending(), 0);
    /// ```
    pub fn pending(&self) -> usize {
        self.pending.len() - self.sent
    }

    /// Writes what it can without blocking; `true` once nothing is pending.
    ///
    /// # Errors
    ///
    /// [`IpcError::Closed`] if the reader is gone; other I/O errors
    /// (`WouldBlock` is not an error: it returns `false`).
    ///
    /// # Example
    ///
    /// See [`FrameWriter`].
    pub fn write_to(&mut self, w: &mut impl Write) -> Result<bool, IpcError> {
        while self.sent < self.pending.len() {
            match w.write(&self.pending[self.sent..]) {
                Ok(0) => return Err(IpcError::Closed),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return Err(IpcError::Closed);
                }
                Err(e) => return Err(IpcError::Io(e)),
            }
        }
        self.pending.clear();
        self.sent = 0;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Message {
        Task {
            id: u64,
            args: Vec<i32>,
            name: String,
        },
        Done(Option<f64>),
        Stop,
    }

    fn wire_of(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut wire = Vec::new();
        for p in payloads {
            write_frame(&mut wire, p).unwrap();
        }
        wire
    }

    #[test]
    fn frames_round_trip_in_order_then_closed() {
        let msgs = [
            Message::Task {
                id: 1,
                args: vec![-1, 2],
                name: "a".into(),
            },
            Message::Done(Some(0.5)),
            Message::Stop,
        ];
        let payloads: Vec<Vec<u8>> = msgs.iter().map(|m| encode(m).unwrap()).collect();
        let wire = wire_of(&payloads);
        let mut r = wire.as_slice();
        for m in &msgs {
            let got: Message = decode(&read_frame(&mut r, 1024).unwrap()).unwrap();
            assert_eq!(&got, m);
        }
        assert!(matches!(read_frame(&mut r, 1024), Err(IpcError::Closed)));
    }

    #[test]
    fn every_cut_of_a_frame_is_truncated_not_a_panic() {
        let wire = wire_of(&[encode(&Message::Done(Some(1.0))).unwrap()]);
        for cut in 1..wire.len() {
            let err = read_frame(&mut &wire[..cut], 1024).unwrap_err();
            assert!(
                matches!(err, IpcError::Truncated { got, .. } if got == cut),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn length_over_the_maximum_is_refused_before_reading() {
        let wire = wire_of(&[vec![0u8; 100]]);
        assert!(matches!(
            read_frame(&mut wire.as_slice(), 99),
            Err(IpcError::TooLarge { len: 100, max: 99 })
        ));
        assert_eq!(read_frame(&mut wire.as_slice(), 100).unwrap().len(), 100);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 2000 }))]

        /// Fuzz: any byte stream gives frames or an error, never a panic, and a
        /// decoded frame of random bytes is a message or an error.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut r = bytes.as_slice();
            let mut frames = 0;
            while let Ok(payload) = read_frame(&mut r, 64) {
                frames += 1;
                let _ = decode::<Message>(&payload);
                let _ = decode::<(u64, String, Vec<u8>)>(&payload);
            }
            prop_assert!(frames <= bytes.len() / HEADER_LEN);
            let _ = decode::<Message>(&bytes);
        }

        /// Any message survives the wire.
        #[test]
        fn messages_round_trip(id in any::<u64>(), args in proptest::collection::vec(any::<i32>(), 0..20), name in ".{0,20}") {
            let m = Message::Task { id, args, name };
            let wire = wire_of(&[encode(&m).unwrap()]);
            let got: Message = decode(&read_frame(&mut wire.as_slice(), DEFAULT_MAX_FRAME).unwrap()).unwrap();
            prop_assert_eq!(got, m);
        }

        /// Flipping one byte of a valid frame yields an error or some message,
        /// never a panic.
        #[test]
        fn corrupted_frames_are_errors_or_values(pos in 0usize..64, flip in 1u8..=255) {
            let m = Message::Task { id: 42, args: vec![1, 2, 3], name: "corrupt me".into() };
            let mut wire = wire_of(&[encode(&m).unwrap()]);
            let pos = pos % wire.len();
            wire[pos] ^= flip;
            if let Ok(payload) = read_frame(&mut wire.as_slice(), 1024) {
                let _ = decode::<Message>(&payload);
            }
        }
    }
}
