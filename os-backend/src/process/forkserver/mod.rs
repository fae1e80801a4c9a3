//! The process pool's fork server, and the worker loop it forks.
//!
//! # Why a fork server, and why re-executed
//!
//! `fork` copies only the calling thread. A pool that forked workers from
//! the caller's process would copy, at arbitrary moments, whatever locks the
//! caller's other threads held, and a worker would hang on the first of them
//! it needed. So every worker of a pool is forked by a **fork server**, a
//! process that stays single-threaded for its whole life.
//!
//! By default ([`ProcessPoolBuilder::build`](super::ProcessPoolBuilder::build))
//! the server does not come from a fork of the caller at all: it is a fresh
//! process, started by re-executing the program (`/proc/self/exe`) with an
//! inherited socket, and intercepted before `main` (see [`reexec`]). It has
//! never had a thread other than its own, nor any lock held. This is the
//! model of Python's `forkserver` start method and of the procspawn crate;
//! the handler crosses the `exec` as a function's offset from an anchor in
//! the same binary (see [`entry`]).
//!
//! [`build_forking`](super::ProcessPoolBuilder::build_forking) forks the
//! server from the caller instead, for handlers that capture state; that one
//! fork is subject to the [`ThreadPolicy`](super::ThreadPolicy).
//!
//! # Protocol
//!
//! The supervisor (a thread of the pool's process) and the server share one
//! socket pair. The supervisor asks for a worker with
//! [`ToServer::Spawn`]; the server makes a socket pair for it, forks it, and
//! answers [`FromServer::Spawned`] with three descriptors attached
//! (`SCM_RIGHTS`): the worker's pidfd, the supervisor's end of the
//! worker's socket pair, and the `memfd` of the worker's shared-memory
//! channel (`pool/shm_channel.rs`), which the worker maps before it serves. So a worker is connected to the supervisor from
//! birth, with no listening socket that another process could reach, and the
//! supervisor can watch and kill it through its pidfd without the server
//! (which matters when the server is stopped). The server reaps every worker
//! and reports each exit status ([`FromServer::Exited`]).
//!
//! Lifetimes: the server is started by the supervisor thread with
//! `PR_SET_PDEATHSIG`, as are the workers by the server, so a signal that
//! kills the pool's process takes the whole tree down. The server exits when
//! its control socket closes, killing its workers.

mod answer;
mod entry;
pub(crate) mod reexec;
mod worker;

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use rustix::event::{PollFd, PollFlags};

use super::pool::shm_channel::{self, ShmChannel};
use super::supervisor::send_with_fds;
use super::wire::{EXIT_BAD_BOOTSTRAP, EXIT_BAD_CONTROL, FromServer, ToServer};
use crate::fork::{ForkedChild, fork_unchecked};
use crate::ipc::frame;
use crate::ipc::ready::poll_for;

pub(crate) use answer::answer;
pub(crate) use worker::{WorkerLoop, serve_requests};

/// Tests only: the server stops itself (`SIGSTOP`) after reaping a worker and
/// before reporting how it ended, the one moment the status is known to the
/// server alone. Read by a server forked from the test process.
#[cfg(test)]
pub(crate) static STOP_AFTER_REAP: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// What a forked worker runs: given its socket and its mapped channel,
/// returns its exit code.
pub(crate) type WorkerBody<'a> = dyn Fn(UnixStream, &ShmChannel) -> i32 + 'a;

/// Tells the supervisor the server is up, then serves; returns the exit code.
pub(crate) fn serve_ready(control: UnixStream, worker: &WorkerBody<'_>) -> i32 {
    if send(&control, &FromServer::Ready, &[]).is_err() {
        return 0;
    }
    serve(control, worker)
}

/// The fork server's main loop; returns its exit code. `worker` runs in each
/// forked worker with its end of the socket pair.
fn serve(control: UnixStream, worker: &WorkerBody<'_>) -> i32 {
    let mut workers: Vec<ForkedChild> = Vec::new();
    loop {
        // Wait for a request or an exit; one poll over the control socket and
        // every worker's pidfd.
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(workers.len() + 1);
        fds.push(PollFd::new(&control, PollFlags::IN));
        fds.extend(
            workers
                .iter()
                .map(|w| PollFd::from_borrowed_fd(w.pidfd(), PollFlags::IN)),
        );
        if poll_for(&mut fds, None).is_err() {
            return EXIT_BAD_CONTROL;
        }
        let control_ready = !fds[0].revents().is_empty();
        let ended: Vec<usize> = (1..fds.len())
            .filter(|&i| !fds[i].revents().is_empty())
            .map(|i| i - 1)
            .collect();
        drop(fds);
        // Report every worker that ended, latest index first so that the
        // removals keep the others' indices.
        for i in ended.into_iter().rev() {
            if let Ok(Some(exit)) = workers[i].try_wait() {
                #[cfg(test)]
                if STOP_AFTER_REAP.load(std::sync::atomic::Ordering::Relaxed) {
                    // SAFETY: raise has no memory-safety preconditions.
                    unsafe { libc::raise(libc::SIGSTOP) };
                }
                let pid = workers.swap_remove(i).pid();
                if send(&control, &FromServer::Exited { pid, exit }, &[]).is_err() {
                    return 0; // the pool is gone; dropping `workers` kills the rest
                }
            }
        }
        if !control_ready {
            continue;
        }
        let message = match frame::read_frame(&mut &control, frame::DEFAULT_MAX_FRAME) {
            Ok(bytes) => frame::decode::<ToServer>(&bytes),
            // The pool is gone: take the workers down with us (dropping each
            // `ForkedChild` kills and reaps it).
            Err(_) => return 0,
        };
        match message {
            Ok(ToServer::Spawn { slot, generation }) => {
                let reply = spawn(&control, &workers, worker, slot, generation);
                let sent = match reply {
                    Ok((child, theirs, memory)) => {
                        let pid = child.pid();
                        let message = FromServer::Spawned {
                            slot,
                            generation,
                            pid,
                        };
                        let fds = [child.pidfd(), theirs.as_fd(), memory.as_fd()];
                        let sent = send(&control, &message, &fds);
                        workers.push(child);
                        sent
                    }
                    Err(e) => send(
                        &control,
                        &FromServer::SpawnFailed {
                            slot,
                            generation,
                            error: e.to_string(),
                        },
                        &[],
                    ),
                };
                if sent.is_err() {
                    return 0;
                }
            }
            // The supervisor has settled every task: what is left is idle, or
            // a worker whose socket never reached it (still in flight in
            // this socket) and would wait for requests forever. Dropping each
            // `ForkedChild` kills and reaps it.
            Ok(ToServer::Shutdown) => return 0,
            Ok(ToServer::Setup(_)) | Err(_) => return EXIT_BAD_CONTROL,
        }
    }
}

/// Forks one worker with a fresh socket pair and channel memory; returns
/// it, the supervisor's end of the pair and the channel's `memfd`.
fn spawn(
    control: &UnixStream,
    siblings: &[ForkedChild],
    worker: &WorkerBody<'_>,
    _slot: u32,
    _generation: u64,
) -> std::io::Result<(ForkedChild, UnixStream, OwnedFd)> {
    #[cfg(test)]
    let index = spawn_fault::begin();
    #[cfg(test)]
    spawn_fault::at(index, 1)?;
    let (mine, theirs) = UnixStream::pair()?;
    #[cfg(test)]
    spawn_fault::at(index, 2)?;
    let memory = shm_channel::create()?;
    let memory_fd = memory.as_raw_fd();
    #[cfg(test)]
    let bad_bootstrap = spawn_fault::bad_bootstrap(index);
    // Descriptors the worker must not keep: the server's control socket (the
    // pool would miss the server's death), the supervisor's end of its own
    // pair (it would never see its peer close), its siblings' pidfds.
    let mut close: Vec<RawFd> = vec![control.as_raw_fd(), theirs.as_raw_fd()];
    close.extend(siblings.iter().map(|s| s.pidfd().as_raw_fd()));
    let body = move || {
        for fd in close {
            // SAFETY: closes this process's copies; their owners live in the
            // server's frames, which this process never returns to (it ends
            // with `_exit`).
            unsafe { libc::close(fd) };
        }
        // SAFETY: this process's copy of the channel's memfd, owned by
        // nothing else here (the server's `OwnedFd` is in frames this process
        // never returns to).
        let memory = unsafe { OwnedFd::from_raw_fd(memory_fd) };
        #[cfg(test)]
        if bad_bootstrap {
            return EXIT_BAD_BOOTSTRAP;
        }
        let Ok(channel) = ShmChannel::map(memory.as_fd()) else {
            return EXIT_BAD_BOOTSTRAP;
        };
        drop(memory);
        worker(mine, &channel)
    };
    #[cfg(test)]
    spawn_fault::at(index, 3)?;
    // SAFETY: `worker` is borrowed from `serve`'s caller, and `serve` kills
    // and reaps every worker (dropping `workers`) before it returns; the
    // server never changes what `worker` reaches. The closure owns only the
    // worker's socket, whose copy the server must close (dropped here).
    let child = unsafe { fork_unchecked(body) }?;
    Ok((child, theirs, memory))
}

/// Sends one control message, with descriptors.
fn send(
    control: &UnixStream,
    message: &FromServer,
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> Result<(), crate::ipc::IpcError> {
    send_with_fds(control, &frame::encode(message)?, fds)
}

/// Tests only: one spawn of the server fails at one of its steps, to see
/// that what the steps before made is undone. Read by a server forked from
/// the test process, which counts its own spawns.
#[cfg(test)]
pub(crate) mod spawn_fault {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

    /// The step that fails: 0 none, 1 the socket pair, 2 the channel's
    /// memory, 3 the fork.
    pub(crate) static STEP: AtomicU32 = AtomicU32::new(0);
    /// How many spawns succeed before the one that fails.
    pub(crate) static AFTER: AtomicU32 = AtomicU32::new(0);
    /// From this spawn on, every worker exits at birth with
    /// `EXIT_BAD_BOOTSTRAP`, as one whose channel does not map.
    pub(crate) static BAD_BOOTSTRAP_FROM: AtomicU32 = AtomicU32::new(u32::MAX);
    /// Spawns begun by this server.
    static BEGUN: AtomicU32 = AtomicU32::new(0);

    /// Counts a spawn begun; returns its index.
    pub(super) fn begin() -> u32 {
        BEGUN.fetch_add(1, Relaxed)
    }

    /// Whether the worker of spawn `index` is to exit at birth.
    pub(super) fn bad_bootstrap(index: u32) -> bool {
        index >= BAD_BOOTSTRAP_FROM.load(Relaxed)
    }

    /// Fails if spawn `index` is the one to fail, at `step`.
    pub(super) fn at(index: u32, step: u32) -> std::io::Result<()> {
        if STEP.load(Relaxed) == step && AFTER.load(Relaxed) == index {
            return Err(std::io::Error::other(format!(
                "injected fault at step {step}"
            )));
        }
        Ok(())
    }
}
