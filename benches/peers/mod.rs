//! Two-process round trips to measure ply's process pool against, each with
//! a forked child that echoes what it is sent:
//!
//! - [`PipeEcho`]: a blocking pipe each way, 8 bytes per message, one
//!   `write` and one `read` per side per round trip (what `perf bench sched
//!   pipe` and lmbench's `lat_pipe` time);
//! - [`IpcEcho`]: `ipc-channel`'s `IpcSender`/`IpcReceiver` (a Unix socket
//!   with serde), the crate Rust programs reach for between processes;
//! - [`SpinEcho`]: one cache line each way in shared memory, both sides
//!   spinning: the floor under any cross-process round trip.
//!
//! Fork them before the process has other threads. Dropping one ends its
//! child and reaps it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ply::os::fork::{ForkedChild, fork_child};
use ply::os::shm::SharedBox;

/// Longer than every spin window (ply's is 200 µs): after this the parties
/// of a round trip are asleep in the kernel.
pub const IDLE: Duration = Duration::from_millis(1);

/// A pipe `(read, write)`, close-on-exec.
fn pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// A child echoing 8-byte messages over two pipes.
pub struct PipeEcho {
    to_child: File,
    from_child: File,
    _child: ForkedChild,
}

impl PipeEcho {
    pub fn start() -> std::io::Result<Self> {
        let (down_r, down_w) = pipe()?;
        let (up_r, up_w) = pipe()?;
        let child = fork_child(move || {
            // SAFETY: the child owns its copies of the four descriptors; the
            // parent's ends are closed here so that the child sees EOF when
            // the parent closes its own.
            let (mut rx, mut tx) = unsafe {
                libc::close(down_w);
                libc::close(up_r);
                (File::from_raw_fd(down_r), File::from_raw_fd(up_w))
            };
            let mut buf = [0u8; 8];
            while rx.read_exact(&mut buf).is_ok() {
                if tx.write_all(&buf).is_err() {
                    break;
                }
            }
            0
        })?;
        // SAFETY: the parent owns these descriptors (from `pipe` above) and
        // closes the child's ends, which it never uses.
        let (to_child, from_child) = unsafe {
            libc::close(down_r);
            libc::close(up_w);
            (File::from_raw_fd(down_w), File::from_raw_fd(up_r))
        };
        Ok(PipeEcho {
            to_child,
            from_child,
            _child: child,
        })
    }

    /// One message there and back.
    pub fn round_trip(&self, x: u64) -> u64 {
        (&self.to_child).write_all(&x.to_ne_bytes()).unwrap();
        let mut buf = [0u8; 8];
        (&self.from_child).read_exact(&mut buf).unwrap();
        u64::from_ne_bytes(buf)
    }
}

/// A child echoing `u64`s over an `ipc-channel` pair.
pub struct IpcEcho {
    tx: ipc_channel::ipc::IpcSender<u64>,
    rx: ipc_channel::ipc::IpcReceiver<u64>,
    _child: ForkedChild,
}

impl IpcEcho {
    pub fn start() -> std::io::Result<Self> {
        let (tx, child_rx) = ipc_channel::ipc::channel::<u64>()?;
        let (child_tx, rx) = ipc_channel::ipc::channel::<u64>()?;
        let child = fork_child(move || {
            while let Ok(x) = child_rx.recv() {
                if child_tx.send(x).is_err() {
                    break;
                }
            }
            0
        })?;
        Ok(IpcEcho {
            tx,
            rx,
            _child: child,
        })
    }

    /// One message there and back.
    pub fn round_trip(&self, x: u64) -> u64 {
        self.tx.send(x).unwrap();
        self.rx.recv().unwrap()
    }
}

/// Two cache lines' worth of words: the request in word 0, the reply in
/// word 8 (64 bytes further).
type Lines = [AtomicU64; 16];
const REQUEST: usize = 0;
const REPLY: usize = 8;
/// Tells the spinning child to exit.
const STOP: u64 = u64::MAX;

/// A child echoing through shared memory, spinning (it holds a CPU while it
/// lives: measure it alone).
pub struct SpinEcho {
    lines: Arc<SharedBox<Lines>>,
    child: Option<ForkedChild>,
    sent: std::cell::Cell<u64>,
}

impl SpinEcho {
    pub fn start() -> std::io::Result<Self> {
        let lines = Arc::new(SharedBox::new(std::array::from_fn::<_, 16, _>(|_| {
            AtomicU64::new(0)
        }))?);
        let theirs = Arc::clone(&lines);
        let child = fork_child(move || {
            let mut seen = 0;
            loop {
                // Acquire/Release: the numbers are the whole message, but
                // this is the ordering a real channel's payload would need.
                let x = theirs[REQUEST].load(Ordering::Acquire);
                if x == seen {
                    std::hint::spin_loop();
                    continue;
                }
                if x == STOP {
                    return 0;
                }
                seen = x;
                theirs[REPLY].store(x, Ordering::Release);
            }
        })?;
        Ok(SpinEcho {
            lines,
            child: Some(child),
            sent: std::cell::Cell::new(0),
        })
    }

    /// One message there and back: the next sequence number.
    pub fn round_trip(&self) -> u64 {
        let n = self.sent.get() + 1;
        self.sent.set(n);
        self.lines[REQUEST].store(n, Ordering::Release);
        while self.lines[REPLY].load(Ordering::Acquire) != n {
            std::hint::spin_loop();
        }
        n
    }
}

impl Drop for SpinEcho {
    fn drop(&mut self) {
        self.lines[REQUEST].store(STOP, Ordering::Release);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait_timeout(Duration::from_secs(10));
        }
    }
}
