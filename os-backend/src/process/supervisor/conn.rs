//! [`Conn`]: one peer's socket as the event loop sees it — never blocking,
//! with a buffer each way.

use std::collections::VecDeque;
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

use crate::ipc::IpcError;
use crate::ipc::frame::{DEFAULT_MAX_FRAME, FrameReader, FrameWriter};
use crate::ipc::ready::DontWait;

/// Bytes read from one peer per turn of the loop before the others get theirs.
const READ_PER_TURN: usize = 1 << 20;

/// A peer's socket: incoming bytes assembled into frames as they arrive
/// (the memory follows the bytes, whatever a header announces), outgoing
/// frames queued and written as the peer makes room. Every read and write
/// is `MSG_DONTWAIT`.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: UnixStream,
    reader: FrameReader,
    writer: FrameWriter,
    /// Descriptors that arrived with the bytes (`SCM_RIGHTS`), in order;
    /// only read for connections made with [`Conn::with_fds`].
    fds: Option<VecDeque<OwnedFd>>,
    /// End of stream seen.
    eof: bool,
}

impl Conn {
    /// A connection that carries bytes only.
    pub(crate) fn new(stream: UnixStream) -> Self {
        Conn {
            stream,
            reader: FrameReader::new(DEFAULT_MAX_FRAME),
            writer: FrameWriter::default(),
            fds: None,
            eof: false,
        }
    }

    /// A connection whose peer also passes descriptors.
    pub(crate) fn with_fds(stream: UnixStream) -> Self {
        Conn {
            fds: Some(VecDeque::new()),
            ..Conn::new(stream)
        }
    }

    /// Whether the peer has closed its end.
    pub(crate) fn eof(&self) -> bool {
        self.eof
    }

    /// Whether frames wait to be written.
    pub(crate) fn wants_write(&self) -> bool {
        self.writer.pending() > 0
    }

    /// Reads what has arrived, up to a turn's worth, and returns the whole
    /// frames it completed. End of stream is recorded ([`eof`](Self::eof)).
    ///
    /// With `drain`, reads until nothing is left (for a peer known to be
    /// dead, whose bytes are all in the socket already).
    pub(crate) fn receive(&mut self, drain: bool) -> Result<Vec<Vec<u8>>, IpcError> {
        let mut frames = Vec::new();
        let mut read = 0;
        while !self.eof && (drain || read < READ_PER_TURN) {
            let got = match self.fds {
                None => self.reader.read_from(&mut DontWait(self.stream.as_fd())),
                Some(ref mut fds) => {
                    let stream = &self.stream;
                    self.reader.read_from(&mut FdReader { stream, fds })
                }
            };
            match got {
                Ok(0) => self.eof = true,
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.eof = true,
                Err(e) => return Err(IpcError::Io(e)),
            }
            while let Some(frame) = self.reader.next_frame()? {
                frames.push(frame);
            }
        }
        if self.eof && self.reader.buffered() > 0 {
            return Err(self.reader.end_of_stream());
        }
        Ok(frames)
    }

    /// Queues a frame and writes what the peer takes now.
    pub(crate) fn send(&mut self, payload: &[u8]) -> Result<(), IpcError> {
        self.writer.push(payload)?;
        self.flush()
    }

    /// Writes queued bytes without blocking.
    pub(crate) fn flush(&mut self) -> Result<(), IpcError> {
        self.writer
            .write_to(&mut DontWait(self.stream.as_fd()))
            .map(drop)
    }

    /// The next descriptor that arrived with the bytes.
    pub(crate) fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.as_mut()?.pop_front()
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

/// Reads a socket with `recvmsg`, keeping the descriptors that come along.
struct FdReader<'a> {
    stream: &'a UnixStream,
    fds: &'a mut VecDeque<OwnedFd>,
}

impl io::Read for FdReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            self.stream,
            &mut [IoSliceMut::new(buf)],
            &mut control,
            RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
        )?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                self.fds.extend(fds);
            }
        }
        Ok(got.bytes)
    }
}

/// Sends `payload` as one frame on a blocking socket, with `fds` attached to
/// its first byte (`SCM_RIGHTS`). Used by the fork server, whose only peer is
/// the supervisor.
pub(crate) fn send_with_fds(
    stream: &UnixStream,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), IpcError> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let mut wire = Vec::with_capacity(payload.len() + 4);
    crate::ipc::frame::write_frame(&mut wire, payload)?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(IpcError::Encode(
            "too many descriptors for one message".into(),
        ));
    }
    let mut sent = 0;
    while sent < wire.len() {
        let result = rustix::net::sendmsg(
            stream,
            &[io::IoSlice::new(&wire[sent..])],
            &mut control,
            SendFlags::NOSIGNAL,
        );
        match result {
            Ok(n) => {
                sent += n;
                // The descriptors went with the first bytes.
                control.clear();
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET) => {
                return Err(IpcError::Closed);
            }
            Err(e) => return Err(IpcError::Io(e.into())),
        }
    }
    Ok(())
}
