//! The fork server and the worker loop of a [`ProcessPool`](super::ProcessPool).
//!
//! # Why a fork server
//!
//! `fork` copies only the calling thread. If any other thread of the parent held
//! a lock at that instant — the allocator's, stdout's, one of the program's own —
//! the child inherits the lock *held*, with no thread left to release it, and
//! deadlocks the first time it needs it. A pool that forks replacement workers
//! from a busy, multi-threaded parent at arbitrary moments would hit this
//! sooner or later.
//!
//! So the pool forks exactly once from the parent, at creation: a **fork
//! server**, which stays single-threaded for its whole life and forks every
//! worker (the first ones and all replacements). The parent asks for workers
//! over a control socket; the server answers with their pids and reports how
//! each one ended. Create pools early (before the program's threads hold
//! locks), and the hazard is gone for the pool's lifetime.
//!
//! Workers connect back to the pool over an abstract-namespace Unix socket and
//! prove they are ours with a random token inherited through `fork`.
//!
//! Lifetimes: the server and the workers set `PR_SET_PDEATHSIG` (through
//! [`fork_child`]), so the server dies with the pool's supervisor thread and
//! the workers with the server; a signal that kills the parent takes the whole
//! tree down. The server reaps every worker.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::fork::{ChildExit, ForkedChild, fork_child};
use crate::ipc::frame::{self, DEFAULT_MAX_FRAME};

/// Bytes of the token a worker presents when it connects.
pub(crate) const TOKEN_LEN: usize = 16;

/// Parent → server.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum ToServer {
    /// Fork a worker for `slot`, incarnation `generation`.
    Spawn { slot: u32, generation: u64 },
    /// Fork no more; exit once every worker has exited.
    Shutdown,
}

/// Server → parent.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum FromServer {
    /// A worker was forked.
    Spawned {
        slot: u32,
        generation: u64,
        pid: i32,
    },
    /// A worker ended (and was reaped).
    Exited { pid: i32, exit: ChildExit },
    /// A fork failed (for example at the process limit).
    SpawnFailed {
        slot: u32,
        generation: u64,
        error: String,
    },
}

/// A worker's first message on its connection.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Hello {
    pub token: [u8; TOKEN_LEN],
    pub slot: u32,
    pub generation: u64,
}

/// A worker's answer to one request.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Reply<R> {
    Done(R),
    Panicked(String),
    BadRequest(String),
}

/// What a worker needs to know, fixed when the pool is made.
pub(crate) struct WorkerSetup<'a, F> {
    pub handler: &'a F,
    pub address: &'a SocketAddr,
    pub token: [u8; TOKEN_LEN],
    pub max_tasks: Option<u64>,
}

/// The fork server's main loop; returns its exit code.
pub(crate) fn serve<Req, Resp, F>(mut control: UnixStream, setup: &WorkerSetup<'_, F>) -> i32
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(Req) -> Resp,
{
    let mut workers: Vec<ForkedChild> = Vec::new();
    let mut shutting_down = false;
    loop {
        // Report every worker that ended.
        let mut i = 0;
        while i < workers.len() {
            match workers[i].try_wait() {
                Ok(Some(exit)) => {
                    let pid = workers.swap_remove(i).pid();
                    if send(&mut control, &FromServer::Exited { pid, exit }).is_err() {
                        return 0; // the pool is gone; dropping `workers` kills the rest
                    }
                }
                _ => i += 1,
            }
        }
        if shutting_down && workers.is_empty() {
            return 0;
        }
        // Wait up to 20 ms for a request (1 ms while draining), then look for
        // exits again.
        let mut pfd = libc::pollfd {
            fd: control.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let wait_ms = if shutting_down { 1 } else { 20 };
        // SAFETY: one live pollfd.
        if unsafe { libc::poll(&mut pfd, 1, wait_ms) } <= 0 {
            continue;
        }
        let message = match frame::read_frame(&mut control, DEFAULT_MAX_FRAME) {
            Ok(bytes) => frame::decode::<ToServer>(&bytes),
            // The pool is gone: take the workers down with us (drop kills and
            // reaps each one).
            Err(_) => return 0,
        };
        match message {
            Ok(ToServer::Spawn { slot, generation }) if !shutting_down => {
                let control_fd = control.as_raw_fd();
                let spawned = fork_child(|| {
                    // The worker must not keep the server's control socket open
                    // (the pool would miss the server's death).
                    // SAFETY: only closes our copy of the fd; its `UnixStream` is
                    // never used or dropped in this process (it ends with `_exit`).
                    unsafe { libc::close(control_fd) };
                    work::<Req, Resp, F>(setup, slot, generation)
                });
                let reply = match spawned {
                    Ok(child) => {
                        let pid = child.pid();
                        workers.push(child);
                        FromServer::Spawned {
                            slot,
                            generation,
                            pid,
                        }
                    }
                    Err(e) => FromServer::SpawnFailed {
                        slot,
                        generation,
                        error: e.to_string(),
                    },
                };
                if send(&mut control, &reply).is_err() {
                    return 0;
                }
            }
            Ok(_) => shutting_down = true,
            Err(_) => return 2, // the parent sent garbage: nothing sane to do
        }
    }
}

fn send(control: &mut UnixStream, message: &FromServer) -> Result<(), crate::ipc::IpcError> {
    frame::write_frame(control, &frame::encode(message)?)?;
    control.flush().map_err(Into::into)
}

/// A worker's main loop: connect, then answer requests until the pool closes
/// the connection or `max_tasks` are done. Returns the exit code.
fn work<Req, Resp, F>(setup: &WorkerSetup<'_, F>, slot: u32, generation: u64) -> i32
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: Fn(Req) -> Resp,
{
    let Ok(mut stream) = UnixStream::connect_addr(setup.address) else {
        return 3;
    };
    let hello = Hello {
        token: setup.token,
        slot,
        generation,
    };
    let Ok(bytes) = frame::encode(&hello) else {
        return 3;
    };
    if frame::write_frame(&mut stream, &bytes).is_err() {
        return 3;
    }
    let mut done = 0u64;
    loop {
        if setup.max_tasks.is_some_and(|max| done >= max) {
            return 0; // recycled: the pool forks a fresh worker
        }
        wait_briefly_for_input(&stream);
        let Ok(bytes) = frame::read_frame(&mut stream, DEFAULT_MAX_FRAME) else {
            return 0; // the pool closed the connection: shut down
        };
        let reply: Reply<Resp> = match frame::decode::<Req>(&bytes) {
            Ok(request) => match catch_unwind(AssertUnwindSafe(|| (setup.handler)(request))) {
                Ok(response) => Reply::Done(response),
                Err(payload) => Reply::Panicked(crate::thread::panic_message(&*payload)),
            },
            Err(e) => Reply::BadRequest(e.to_string()),
        };
        let encoded = frame::encode(&reply).or_else(|e| {
            frame::encode(&Reply::<Resp>::BadRequest(format!(
                "the response could not be encoded: {e}"
            )))
        });
        match encoded {
            Ok(bytes) if frame::write_frame(&mut stream, &bytes).is_ok() => {}
            _ => return 4,
        }
        done += 1;
    }
}

/// Polls `stream` (yielding between looks) for a short while before the
/// caller blocks on it, so a request that follows closely on the last reply
/// is picked up without a wake-up.
fn wait_briefly_for_input(stream: &UnixStream) {
    let spin_until = std::time::Instant::now() + super::pool::SPIN_BEFORE_SLEEP;
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    while std::time::Instant::now() < spin_until {
        // SAFETY: one live pollfd; a zero timeout never sleeps.
        if unsafe { libc::poll(&mut pfd, 1, 0) } != 0 {
            return;
        }
        std::thread::yield_now();
    }
}

/// An abstract-namespace address unique to this pool.
pub(crate) fn pool_address() -> std::io::Result<SocketAddr> {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "ply-pool-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Relaxed)
    );
    SocketAddr::from_abstract_name(name.as_bytes())
}

/// A fresh random token.
pub(crate) fn random_token() -> std::io::Result<[u8; TOKEN_LEN]> {
    use std::io::Read;
    let mut token = [0u8; TOKEN_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut token)?;
    Ok(token)
}
