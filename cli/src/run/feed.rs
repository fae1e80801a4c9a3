//! The feeder thread: reads the jobs' inputs (lines, arguments, or `--pipe`
//! blocks) off the main loop, so a slow or stalled stdin never delays a
//! timeout, a signal or a job's output. Items go in batches (up to
//! [`BATCH`], or fewer when the input has nothing more buffered, so a slow
//! source is not held back) through a bounded channel of a few batches, so
//! input is streamed; an eventfd wakes the main loop's `poll` when a batch
//! is ready. Batching makes the hand-over between the two threads rare: on a
//! 2-CPU machine each hand-over is a context switch a job start pays for.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Most items per batch.
pub const BATCH: usize = 256;

/// Batches in flight.
const BATCHES: usize = 4;

use super::input::JobInputs;

/// One unit of work from the input.
pub enum Item {
    /// A job's values, with its index among all input jobs (0-based).
    Values(u64, Vec<String>),
    /// A `--pipe` block, with its index.
    Block(u64, Vec<u8>),
    /// The input could not be read.
    Failed(String),
}

/// The main loop's end of the feeder.
pub struct Feed {
    pub items: Receiver<Vec<Item>>,
    ready: OwnedFd,
}

/// An eventfd.
fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd takes flags and returns a new fd or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn notify(fd: BorrowedFd<'_>) {
    let one = 1u64;
    // SAFETY: writes 8 bytes from a valid u64 to an eventfd we own a handle to.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

impl Feed {
    /// The fd to poll for readability.
    pub fn ready_fd(&self) -> BorrowedFd<'_> {
        self.ready.as_fd()
    }

    /// Clears the readiness (before draining the channel).
    pub fn clear(&self) {
        let mut value = 0u64;
        // SAFETY: reads 8 bytes into a valid u64 from a non-blocking eventfd.
        unsafe { libc::read(self.ready.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    }
}

/// Sends `item`, waking the main loop; `false` if the main loop is gone.
fn send(tx: &Sender<Vec<Item>>, ready: BorrowedFd<'_>, item: Vec<Item>) -> bool {
    let mut item = item;
    loop {
        match tx.try_send(item) {
            Ok(()) => {
                notify(ready);
                return true;
            }
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) => {
                item = back;
                notify(ready);
                // The main loop takes items as slots free up; a bounded wait
                // keeps this thread responsive to the channel closing.
                match tx.send_timeout(item, std::time::Duration::from_millis(100)) {
                    Ok(()) => {
                        notify(ready);
                        return true;
                    }
                    Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return false,
                    Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => item = back,
                }
            }
        }
    }
}

/// Starts the feeder over job values; `keep(index)` filters them (the
/// shard's range; resume is decided by the main thread).
pub fn values(
    mut inputs: JobInputs,
    keep: impl Fn(u64) -> bool + Send + 'static,
) -> std::io::Result<Feed> {
    let (tx, rx) = crossbeam_channel::bounded(BATCHES);
    let ready = eventfd()?;
    let writer = ready.try_clone()?;
    std::thread::Builder::new()
        .name("ply-feed".into())
        .spawn(move || {
            let mut index = 0u64;
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                if !batch.is_empty()
                    && (batch.len() >= BATCH || inputs.may_block())
                    && !send(&tx, writer.as_fd(), std::mem::take(&mut batch))
                {
                    return;
                }
                match inputs.next_job() {
                    Ok(Some(values)) => {
                        let i = index;
                        index += 1;
                        if keep(i) {
                            batch.push(Item::Values(i, values));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        batch.push(Item::Failed(e.to_string()));
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                send(&tx, writer.as_fd(), batch);
            }
            drop(tx);
            notify(writer.as_fd());
        })?;
    Ok(Feed { items: rx, ready })
}

/// The longest line a `--pipe` block is extended by to keep it whole: a
/// longer one (a stream without newlines, such as `/dev/zero`) stops the
/// run rather than being read into memory without end.
const MAX_LINE: usize = 1 << 30;

/// Starts the feeder over `--pipe` blocks of stdin: about `block` bytes,
/// extended to the next newline so no record is cut.
pub fn blocks(block: usize) -> std::io::Result<Feed> {
    // One block at a time in the channel: blocks are big.
    let (tx, rx) = crossbeam_channel::bounded(1);
    let ready = eventfd()?;
    let writer = ready.try_clone()?;
    std::thread::Builder::new()
        .name("ply-feed".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut carry: Vec<u8> = Vec::new();
            let mut index = 0u64;
            let mut buf = vec![0u8; 64 << 10];
            let mut eof = false;
            loop {
                // Fill to at least `block` bytes, then to the next newline.
                // `carry[..searched]` is known to hold no newline at or past
                // `block - 1`, so each byte is searched once: a long line
                // costs time in proportion to its length.
                let mut searched = 0;
                let cut = loop {
                    if carry.len() >= block {
                        let from = (block - 1).max(searched);
                        if let Some(p) = carry[from..].iter().position(|&b| b == b'\n') {
                            break from + p + 1;
                        }
                        searched = carry.len();
                        if carry.len() - block >= MAX_LINE {
                            let message = format!(
                                "stdin: a line longer than {} MiB (--pipe keeps each line whole)",
                                MAX_LINE >> 20
                            );
                            send(&tx, writer.as_fd(), vec![Item::Failed(message)]);
                            drop(tx);
                            notify(writer.as_fd());
                            return;
                        }
                    }
                    if eof {
                        break carry.len();
                    }
                    match stdin.read(&mut buf) {
                        Ok(0) => eof = true,
                        Ok(n) => carry.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            send(
                                &tx,
                                writer.as_fd(),
                                vec![Item::Failed(format!("reading stdin: {e}"))],
                            );
                            drop(tx);
                            notify(writer.as_fd());
                            return;
                        }
                    }
                };
                if cut == 0 {
                    break;
                }
                let rest = carry.split_off(cut);
                let chunk = std::mem::replace(&mut carry, rest);
                if !send(&tx, writer.as_fd(), vec![Item::Block(index, chunk)]) {
                    return;
                }
                index += 1;
            }
            drop(tx);
            notify(writer.as_fd());
        })?;
    Ok(Feed { items: rx, ready })
}
