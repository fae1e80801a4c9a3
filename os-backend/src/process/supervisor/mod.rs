//! The supervision engine shared by the fork-join map and the process pool.
//!
//! One event loop watches a [`Fleet`] of worker processes. For each it holds
//! the worker's socket as a [`Conn`] (non-blocking, a buffer each way, frames
//! assembled as bytes arrive), a pidfd that turns readable when the process
//! ends, and at most one deadline with the reason ply would kill it for. One
//! `poll` covers every socket, every pidfd and the caller's own descriptors,
//! with the nearest deadline as its timeout. Nothing is read, written or
//! reaped with a blocking call, so no peer can delay another: a worker stopped
//! in the middle of a reply holds only its own buffer, and the others' frames,
//! exits and deadlines are handled meanwhile.
//!
//! When a pidfd fires, the worker's socket is drained (everything it wrote is
//! in the socket by then) and the loop yields its last frames, then its
//! [`End`]: the exit status when the worker is the caller's own child (reaped
//! through `waitpid(WNOHANG)`, which cannot block once the pidfd has fired)
//! or, for a fork server's child, read from `/proc` while it is a zombie
//! (`zombie.rs`); and the reason if ply killed it. A kill ply decides is always reported
//! with that reason: [`Fleet::kill`] records it before sending `SIGKILL`.
//!
//! The design follows the classic single-threaded reactor (as in Python's
//! `multiprocessing.connection.wait` over sentinels, or tokio's process
//! driver on pidfds), kept to `poll(2)`: a fleet is tens of processes.

mod conn;
pub(crate) mod stall;
pub(crate) mod zombie;

pub(crate) use conn::{Conn, send_with_fds};

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};

use super::error::Failure;
use crate::fork::{ChildExit, ForkedChild, Signal};
use crate::ipc::IpcError;
use crate::ipc::ready::poll_until;

/// How long a party of a round trip (submitter, supervisor, worker) looks
/// again without sleeping, yielding between looks, before it sleeps: a
/// message microseconds away is then seen without paying a wake-up, which on
/// a VM costs tens of microseconds per hop.
pub(crate) const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(200);

/// Why ply killed a worker; reported instead of the signal it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KillReason {
    /// Its work ran past the timeout.
    Timeout(Duration),
    /// It sat blocked on a lock after a fork from a threaded parent.
    Stalled {
        other_threads: usize,
        after: Duration,
    },
    /// It sent bytes that are not a valid message.
    Corrupt(String),
    /// Its work was cancelled.
    Cancelled,
    /// The pool or map is stopping (terminate, or another chunk failed).
    Shutdown,
}

impl KillReason {
    /// The failure to report for work a worker held when killed for this.
    pub(crate) fn failure(&self) -> Failure {
        match self {
            KillReason::Timeout(after) => Failure::Timeout(*after),
            KillReason::Stalled {
                other_threads,
                after,
            } => Failure::Stalled {
                other_threads: *other_threads,
                after: *after,
            },
            KillReason::Corrupt(why) => Failure::Corrupt(why.clone()),
            KillReason::Cancelled => Failure::Cancelled,
            // Never reported as a task's failure: the callers answer
            // "shut down" for work they stop themselves.
            KillReason::Shutdown => Failure::Cancelled,
        }
    }
}

/// How a worker's process ended.
#[derive(Debug)]
pub(crate) struct End {
    pub pid: i32,
    /// The exit status: of this process's own child, reaped here; of the
    /// fork server's, read while it is a zombie (`None` if the server reaped
    /// it first: the server reports it then).
    pub exit: Option<ChildExit>,
    /// Why ply killed it, if it did.
    pub killed: Option<KillReason>,
}

/// The process behind a worker.
#[derive(Debug)]
pub(crate) enum Process {
    /// This process's child: reaped here.
    Own(ForkedChild),
    /// Another process's child (the fork server's), known by its pidfd.
    Foreign { pid: i32, pidfd: OwnedFd },
}

impl Process {
    fn pid(&self) -> i32 {
        match self {
            Process::Own(child) => child.pid(),
            Process::Foreign { pid, .. } => *pid,
        }
    }

    fn pidfd(&self) -> BorrowedFd<'_> {
        match self {
            Process::Own(child) => child.pidfd(),
            Process::Foreign { pidfd, .. } => pidfd.as_fd(),
        }
    }

    fn kill(&self) {
        // Through the pidfd: it can only ever name this process. An error
        // means it has exited already, which its pidfd will report.
        let _ = rustix::process::pidfd_send_signal(self.pidfd(), Signal::KILL);
    }
}

/// One supervised worker, with the caller's state `T` for it.
#[derive(Debug)]
pub(crate) struct Worker<T> {
    process: Process,
    conn: Conn,
    deadline: Option<(Instant, KillReason)>,
    killed: Option<KillReason>,
    /// Its end has been reported.
    ended: bool,
    /// The caller's state for this worker.
    pub state: T,
}

impl<T> Worker<T> {
    /// A worker for `process`, talking over `conn`.
    pub(crate) fn new(process: Process, conn: Conn, state: T) -> Self {
        Worker {
            process,
            conn,
            deadline: None,
            killed: None,
            ended: false,
            state,
        }
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> i32 {
        self.process.pid()
    }
}

/// What the loop saw.
#[derive(Debug)]
pub(crate) enum Event {
    /// A whole frame from the worker in `slot`.
    Frame { slot: usize, payload: Vec<u8> },
    /// The worker in `slot` has ended; all its frames came before this. The
    /// caller takes it out with [`Fleet::remove`] (in the same turn: an
    /// ended worker is no longer polled).
    Ended { slot: usize, end: End },
}

/// The workers of one map round or one pool, by slot.
#[derive(Debug)]
pub(crate) struct Fleet<T> {
    slots: Vec<Option<Worker<T>>>,
}

impl<T> Fleet<T> {
    /// A fleet of `slots` empty slots.
    pub(crate) fn new(slots: usize) -> Self {
        Fleet {
            slots: (0..slots).map(|_| None).collect(),
        }
    }

    /// Puts `worker` in `slot` (which must be empty).
    pub(crate) fn insert(&mut self, slot: usize, worker: Worker<T>) {
        debug_assert!(self.slots[slot].is_none(), "slot {slot} is taken");
        self.slots[slot] = Some(worker);
    }

    /// The worker in `slot`.
    pub(crate) fn get(&self, slot: usize) -> Option<&Worker<T>> {
        self.slots.get(slot)?.as_ref()
    }

    /// Takes the worker out of `slot` (after its [`Event::Ended`]).
    ///
    /// # Panics
    ///
    /// If the slot is empty: a caller's bookkeeping error.
    pub(crate) fn remove(&mut self, slot: usize) -> Worker<T> {
        self.slots[slot].take().expect("removing an empty slot")
    }

    /// The worker in `slot`, mutably.
    pub(crate) fn get_mut(&mut self, slot: usize) -> Option<&mut Worker<T>> {
        self.slots.get_mut(slot)?.as_mut()
    }

    /// The occupied slots and their workers.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Worker<T>)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, w)| Some((i, w.as_ref()?)))
    }

    /// The occupied slots and their workers, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Worker<T>)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, w)| Some((i, w.as_mut()?)))
    }

    /// Whether no slot holds a worker.
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// Kills the worker in `slot` for `reason` (the first reason given is the
    /// one reported). Its end arrives as an [`Event::Ended`].
    pub(crate) fn kill(&mut self, slot: usize, reason: KillReason) {
        if let Some(worker) = self.get_mut(slot) {
            worker.killed.get_or_insert(reason);
            worker.process.kill();
        }
    }

    /// Kills every worker for `reason`.
    pub(crate) fn kill_all(&mut self, reason: KillReason) {
        for slot in 0..self.slots.len() {
            self.kill(slot, reason.clone());
        }
    }

    /// Sets (or clears) the deadline of the worker in `slot`: past it, the
    /// worker is killed for `reason`.
    pub(crate) fn set_deadline(&mut self, slot: usize, deadline: Option<(Instant, KillReason)>) {
        if let Some(worker) = self.get_mut(slot) {
            worker.deadline = deadline;
        }
    }

    /// Queues a frame for the worker in `slot`, writing what its socket takes
    /// now. An error means the worker is going away (its end follows).
    pub(crate) fn send(&mut self, slot: usize, payload: &[u8]) -> Result<(), IpcError> {
        match self.get_mut(slot) {
            Some(worker) => worker.conn.send(payload),
            None => Err(IpcError::Closed),
        }
    }

    /// Waits until something happens or `until` passes, and returns what
    /// happened. `extra` descriptors are polled too (for readability); the
    /// returned flags say which of them are ready.
    ///
    /// # Errors
    ///
    /// A `poll` failure (not a peer's doing: a bug or resource exhaustion).
    pub(crate) fn poll(
        &mut self,
        extra: &[BorrowedFd<'_>],
        until: Option<Instant>,
    ) -> io::Result<(Vec<Event>, Vec<bool>)> {
        let now = Instant::now();
        let mut events = Vec::new();
        // Deadlines first: a kill decided now is reported with its reason.
        let overdue: Vec<(usize, KillReason)> = self
            .iter_mut()
            .filter_map(|(slot, w)| match &w.deadline {
                Some((at, _)) if *at <= now => Some((slot, w.deadline.take()?.1)),
                _ => None,
            })
            .collect();
        for (slot, reason) in overdue {
            self.kill(slot, reason);
        }
        let wake = self
            .iter()
            .filter_map(|(_, w)| w.deadline.as_ref().map(|(at, _)| *at))
            .chain(until)
            .min();

        // One poll over: the extras, then per worker its socket (unless it
        // has closed and nothing waits to be written: a closed socket is
        // always "ready", POLLHUP, and would make this loop spin until the
        // process is gone) and its pidfd.
        let mut fds: Vec<PollFd<'_>> = extra
            .iter()
            .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
            .collect();
        // Per watched worker: its slot, and the indices of its socket's
        // entry (if polled) and of its pidfd's.
        let mut owners: Vec<(usize, Option<usize>, usize)> = Vec::new();
        for (slot, w) in self.slots.iter().enumerate() {
            let Some(w) = w.as_ref().filter(|w| !w.ended) else {
                continue;
            };
            let mut interest = PollFlags::empty();
            if !w.conn.eof() {
                interest |= PollFlags::IN;
            }
            if w.conn.wants_write() {
                interest |= PollFlags::OUT;
            }
            let conn_at = (!interest.is_empty()).then(|| {
                fds.push(PollFd::from_borrowed_fd(w.conn.as_fd(), interest));
                fds.len() - 1
            });
            fds.push(PollFd::from_borrowed_fd(w.process.pidfd(), PollFlags::IN));
            owners.push((slot, conn_at, fds.len() - 1));
        }
        poll_until(&mut fds, wake)?;
        let extra_ready: Vec<bool> = fds[..extra.len()]
            .iter()
            .map(|p| !p.revents().is_empty())
            .collect();
        let ready: Vec<(usize, PollFlags, bool)> = owners
            .iter()
            .map(|&(slot, conn_at, pidfd_at)| {
                let conn = conn_at.map_or(PollFlags::empty(), |i| fds[i].revents());
                (slot, conn, !fds[pidfd_at].revents().is_empty())
            })
            .collect();
        drop(fds);

        for (slot, conn, ended) in ready {
            if !conn.is_empty() || ended {
                self.service(slot, ended, &mut events);
            }
        }
        Ok((events, extra_ready))
    }

    /// Reads and writes what the worker in `slot` has ready; if it `ended`,
    /// drains its socket, reaps it and yields its end.
    fn service(&mut self, slot: usize, ended: bool, events: &mut Vec<Event>) {
        let Some(worker) = self.slots[slot].as_mut() else {
            return;
        };
        if worker.conn.wants_write() && worker.conn.flush().is_err() {
            // The peer is gone or going: its pidfd will say so.
        }
        let received = worker.conn.receive(ended);
        let broken = match received {
            Ok(frames) => {
                events.extend(
                    frames
                        .into_iter()
                        .map(|payload| Event::Frame { slot, payload }),
                );
                None
            }
            // A torn frame at the end of a dead worker's stream is its crash,
            // not a protocol error: the exit tells what happened.
            Err(IpcError::Truncated { .. }) if ended || worker.conn.eof() => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = broken {
            self.kill(slot, KillReason::Corrupt(why));
            return;
        }
        if !ended {
            return;
        }
        let exit = match &mut self.slots[slot].as_mut().expect("checked").process {
            Process::Own(child) => match child.try_wait() {
                Ok(Some(exit)) => Some(exit),
                // A readable pidfd means it has ended; a zombie is reaped at
                // once, so `None` cannot last. Look again next turn.
                Ok(None) => return,
                Err(_) => None,
            },
            // The fork server's child: read while it is a zombie, so even a
            // stopped server cannot hold its status back.
            Process::Foreign { pid, pidfd } => zombie::exit_status(*pid, pidfd.as_fd()),
        };
        let worker = self.slots[slot].as_mut().expect("checked");
        worker.ended = true;
        worker.deadline = None;
        events.push(Event::Ended {
            slot,
            end: End {
                pid: worker.pid(),
                exit,
                killed: worker.killed.clone(),
            },
        });
    }
}

impl<T> Drop for Fleet<T> {
    /// Kills and reaps every worker still in the fleet (an own child is
    /// reaped by its `ForkedChild`; a foreign one by the fork server).
    fn drop(&mut self) {
        for worker in self.slots.iter().flatten() {
            worker.process.kill();
        }
    }
}

#[cfg(test)]
mod tests;
