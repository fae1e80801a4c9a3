//! The process pool's supervisor: a thread of the pool's process that runs
//! the engine's loop over the workers, the fork server's control socket and
//! the submitters' wake-ups.
//!
//! A submitter hands its task straight to an idle worker's shared-memory
//! channel when it can, and the joiner completes it from the channel
//! (`lane.rs`, `shm_channel.rs`); otherwise tasks wait in the [`Inbox`] (a
//! mutex-guarded queue the submitters share) and the loop hands each to an
//! idle worker. Either way the loop keeps the task's deadline, and completes
//! it from the worker's reply (when the worker rings, or replies on the
//! socket) or its end. A worker's end is seen
//! through its pidfd, without the fork server: a task killed for its timeout
//! (or cancelled) is reported at once even if the server is stopped. A crash
//! needs the exit status, which the engine reads while the worker is a zombie
//! (the server, its parent, has not reaped it: even a stopped server cannot
//! hold it back). If the server reaped it first, its report is on the way:
//! the task waits for it, and only it does, for [`STATUS_PATIENCE`] at most;
//! then it fails with what is known (`Failure::Unknown`, saying why).
//!
//! Replacing a worker needs the server. While the pool has no worker, a
//! task can only wait for the server; it waits [`SPAWN_PATIENCE`] at most
//! (twice that if the server is running, not stopped: a whole-program stop
//! such as Ctrl-Z resumes it with the pool), then fails with
//! [`PoolTaskError::NoWorker`], and so does every task submitted until a
//! worker is back. Submitters blocked on a full queue are released by those
//! failures. Once the server resumes, the pool gets its workers back.
//!
//! A worker that cannot be started leaves nothing behind: the server undoes
//! a spawn that fails at any step (its socket pair and channel memory close
//! as they drop) and reports it; a worker the supervisor cannot take in
//! (its channel does not map) is killed through its pidfd, not left running
//! until the pool ends, and the server reaps it. A worker that ends on its
//! own before it has served (its own mapping of the channel failed, say)
//! failed to start too. Either way the slot is tried again after
//! [`RESPAWN_PAUSE`], doubled for each failure in a row (up to 1.6 s), so
//! that a worker that can never start is not forked in a tight loop; while
//! the pool starts, a failed fork or mapping fails the build at once, with
//! its cause.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::lane::Lane;
use super::reply::ReplyTo;
use super::shm_channel::ShmChannel;
use crate::fork::{ChildExit, ForkedChild};
use crate::ipc::frame;
use crate::process::error::{Failure, PoolTaskError};
use crate::process::retry::Retry;
pub(super) use crate::process::supervisor::SPIN_BEFORE_SLEEP;
use crate::process::supervisor::stall::StallWatch;
use crate::process::supervisor::{Conn, End, Event, Fleet, KillReason, Process, Worker};
use crate::process::wire::{EXIT_BAD_BOOTSTRAP, FromServer, ToServer};

/// How long a new server and its first workers may take to start.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// How long a crashed worker's task waits for the fork server's report of
/// its exit status, when the worker was reaped before its status was read.
pub(super) const STATUS_PATIENCE: Duration = Duration::from_secs(1);

/// How long queued tasks wait for a worker when the pool has none (the fork
/// server stopped, hung, or unable to fork): doubled for a server that is
/// not stopped.
pub(super) const SPAWN_PATIENCE: Duration = Duration::from_secs(5);

/// How long after a worker failed to start its slot is tried again; the
/// pause doubles with each failure in a row, [`MAX_DOUBLINGS`] times at most.
const RESPAWN_PAUSE: Duration = Duration::from_millis(50);

/// How many times the respawn pause doubles (to 1.6 s).
const MAX_DOUBLINGS: u32 = 5;

/// How often workers are looked at for stalls, when they are watched.
const TICK: Duration = Duration::from_millis(20);

/// The poll slots the loop adds to the fleet's own.
const WAKER: usize = 0;
const CONTROL: usize = 1;

/// A submitted task.
pub(super) struct Task {
    /// Unique in its pool, for cancelling.
    pub id: u64,
    pub request: Vec<u8>,
    pub tag: usize,
    pub reply: ReplyTo,
    /// Runs so far that failed.
    pub failed_runs: u32,
}

impl Task {
    pub(super) fn finish(self, result: Result<(Vec<u8>, i32), PoolTaskError>) {
        let _ = self.reply.send((self.tag, result)); // the waiter may be gone
    }
}

/// What the submitters and the supervisor share.
#[derive(Default)]
pub(super) struct Inbox {
    pub queue: VecDeque<Task>,
    /// No new submissions; finish what is queued, then stop.
    pub closed: bool,
    /// Stop now: fail what is queued, kill the workers.
    pub terminate: bool,
    /// The supervisor has stopped: nothing will run any more.
    pub stopped: bool,
    /// Worker pids, by slot.
    pub pids: Vec<Option<i32>>,
    /// The fork server's pid, while it runs.
    pub server_pid: Option<i32>,
    /// The last task id given out.
    pub next_id: u64,
    /// Tasks to cancel that had left the queue when asked (they may be
    /// running).
    pub cancels: Vec<u64>,
    /// The workers' slots: channel and held task (`lane.rs`).
    pub lanes: Vec<Lane>,
}

pub(super) struct Shared {
    pub inbox: Mutex<Inbox>,
    /// Signalled when the queue shrinks (submitters wait for room).
    pub room: Condvar,
    /// One byte written here wakes the supervisor.
    pub waker: UnixStream,
    pub queue_bound: usize,
    /// Wake the supervisor whenever a task is handed to a worker without
    /// it (it keeps the task timeouts).
    pub wake_on_start: bool,
    /// The fork count when the pool was built (`thread::forks`): where it
    /// differs, this is a forked child's copy of the pool ([`Self::foreign`]).
    pub forks_at_birth: u32,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this is a forked child's copy of the pool. The copy has the
    /// pool's memory, its mappings of the workers' channels among it, but
    /// not its supervisor thread: a request it wrote into a channel would
    /// be run by the parent's worker, under the number the parent gives its
    /// own next request (which would then get the copy's reply), and a
    /// join of the supervisor would wait for a thread that does not exist.
    /// So the copy takes no task, delivers none, and stops without waiting.
    pub(super) fn foreign(&self) -> bool {
        crate::thread::forks::count() != self.forks_at_birth
    }

    pub(super) fn wake(&self) {
        let _ = (&self.waker).write(&[1]); // full pipe: a wake-up is pending anyway
    }
}

/// The pool's settings, as the supervisor needs them.
#[derive(Clone, Debug)]
pub(super) struct Config {
    pub workers: usize,
    pub task_timeout: Option<Duration>,
    pub retry: Retry,
    /// Threads of the caller when a forked server was forked, and the
    /// stall watch's patience, if workers are watched.
    pub stall: Option<(usize, Duration)>,
    /// Tests only: faults to inject while workers start.
    #[cfg(test)]
    pub faults: Option<Arc<StartFaults>>,
}

/// Tests only: faults injected while the supervisor takes in a new worker,
/// armed for the next pool built on the arming thread
/// ([`NEXT_POOL_FAULTS`]), so that tests running at the same time are not
/// touched.
#[cfg(test)]
#[derive(Debug, Default)]
pub(super) struct StartFaults {
    /// How many of the next channel maps fail.
    pub fail_maps: std::sync::atomic::AtomicUsize,
    /// The workers whose channel failed to map. Each was stopped
    /// (`SIGSTOP`) first, as a worker that does not see its socket close
    /// would be: only the supervisor's `SIGKILL` ends it.
    pub failed: Mutex<Vec<i32>>,
    /// Workers asked of the server.
    pub spawns: std::sync::atomic::AtomicUsize,
    /// The pauses before asking again for a worker that failed to start.
    pub pauses: Mutex<Vec<Duration>>,
}

#[cfg(test)]
thread_local! {
    /// The faults the next pool built on this thread injects.
    pub(super) static NEXT_POOL_FAULTS: std::cell::RefCell<Option<Arc<StartFaults>>> =
        const { std::cell::RefCell::new(None) };
}

/// The supervisor's own state for one pool worker (the rest is its
/// [`Lane`], shared).
#[derive(Debug, Default)]
struct PoolWorker {
    stall: Option<StallWatch>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// A slot's incarnation and whether a worker has been asked for.
#[derive(Debug, Default)]
struct SlotInfo {
    generation: u64,
    /// Ask the server for a worker at this time (after a failed start).
    retry_at: Option<Instant>,
    /// Workers of this slot that failed to start since one last served.
    failed_starts: u32,
}

/// A decoded control message, with the descriptors of a `Spawned`: the
/// worker's pidfd, socket and channel memory.
type Control = (FromServer, Option<(OwnedFd, UnixStream, OwnedFd)>);

pub(super) struct Supervisor {
    shared: Arc<Shared>,
    config: Config,
    control: Conn,
    /// Control messages read and not yet handled.
    pending_control: VecDeque<Control>,
    wake_rx: UnixStream,
    fleet: Fleet<PoolWorker>,
    slots: Vec<SlotInfo>,
    /// Tasks whose worker died of a crash, waiting (until the instant given)
    /// for the server's report of its exit status, by pid.
    awaiting_status: HashMap<i32, (Task, Instant)>,
    /// Exit statuses the server reported before the worker's pidfd fired.
    early_status: HashMap<i32, ChildExit>,
    oom_baseline: Option<u64>,
    /// Stopping: no more respawns.
    stopping: bool,
    /// Since when the pool has had no live worker.
    no_worker_since: Option<Instant>,
}

impl Supervisor {
    pub(super) fn new(
        shared: Arc<Shared>,
        config: Config,
        control: UnixStream,
        wake_rx: UnixStream,
    ) -> Self {
        let workers = config.workers;
        Supervisor {
            shared,
            control: Conn::with_fds(control),
            pending_control: VecDeque::new(),
            wake_rx,
            fleet: Fleet::new(workers),
            slots: (0..workers).map(|_| SlotInfo::default()).collect(),
            awaiting_status: HashMap::new(),
            early_status: HashMap::new(),
            oom_baseline: crate::process::error::oom_kills(),
            config,
            stopping: false,
            no_worker_since: None,
        }
    }

    /// Waits for the server's `Ready` and every first worker, so that the
    /// pool can report all its pids when `build` returns.
    pub(super) fn start(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_PATIENCE;
        match self.next_control(deadline)? {
            (FromServer::Ready, _) => {}
            (FromServer::SetupFailed(why), _) => return Err(why),
            (other, _) => return Err(format!("unexpected first message {other:?}")),
        }
        for slot in 0..self.slots.len() {
            self.request_spawn(slot).map_err(|e| e.to_string())?;
        }
        while self.fleet.iter().count() < self.slots.len() {
            let message = self.next_control(deadline)?;
            self.on_control(message)
                .map_err(|why| format!("the first workers could not be started: {why}"))?;
        }
        Ok(())
    }

    /// The next control message, waiting until `deadline` (for `start`).
    fn next_control(&mut self, deadline: Instant) -> Result<Control, String> {
        loop {
            if let Some(message) = self.pending_control.pop_front() {
                return Ok(message);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("the fork server did not start in time".into());
            }
            crate::ipc::ready::wait_readable(self.control.as_fd(), Some(left))
                .map_err(|e| e.to_string())?;
            self.read_control().map_err(|e| e.to_string())?;
        }
    }

    /// Reads what the server sent into `pending_control`.
    fn read_control(&mut self) -> Result<(), PoolTaskError> {
        let frames = self.control.receive(false).map_err(|e| {
            PoolTaskError::PoolBroken(format!("the fork server's messages broke off: {e}"))
        })?;
        for bytes in frames {
            let message = frame::decode::<FromServer>(&bytes).map_err(|e| {
                PoolTaskError::PoolBroken(format!("the fork server sent garbage: {e}"))
            })?;
            let fds = match message {
                FromServer::Spawned { .. } => {
                    let fds = (
                        self.control.take_fd(),
                        self.control.take_fd(),
                        self.control.take_fd(),
                    );
                    match fds {
                        (Some(pidfd), Some(stream), Some(memory)) => {
                            Some((pidfd, UnixStream::from(stream), memory))
                        }
                        _ => {
                            return Err(PoolTaskError::PoolBroken(
                                "the fork server sent a worker without its descriptors".into(),
                            ));
                        }
                    }
                }
                _ => None,
            };
            self.pending_control.push_back((message, fds));
        }
        if self.control.eof() {
            return Err(PoolTaskError::PoolBroken("the fork server died".into()));
        }
        Ok(())
    }

    /// Runs the pool until it is closed and drained, terminated, or broken;
    /// then stops every worker and the server.
    pub(super) fn run(mut self, server: ForkedChild) {
        let stop = self.serve();
        self.stopping = true;
        let reason = stop.err().unwrap_or(PoolTaskError::ShutDown);
        let leftover = {
            let mut inbox = self.shared.lock();
            inbox.stopped = true;
            inbox.pids.iter_mut().for_each(|p| *p = None);
            inbox.server_pid = None;
            let mut tasks: Vec<Task> = inbox.queue.drain(..).collect();
            let mut channels = Vec::new();
            for lane in &mut inbox.lanes {
                channels.extend(lane.channel.take());
                tasks.extend(lane.task.take().map(|(task, _, _)| task));
            }
            (tasks, channels)
        };
        self.shared.room.notify_all();
        let (leftover, channels) = leftover;
        for task in leftover {
            task.finish(Err(reason.duplicate()));
        }
        for channel in &channels {
            channel.nudge(); // a joiner asleep on its reply
            channel.close(); // a worker asleep on its channel ends its loop
        }
        for (_, (task, _)) in self.awaiting_status.drain() {
            task.finish(Err(reason.duplicate()));
        }
        // The closing requests end the idle workers' loops; killing them
        // too does not wait for a stopped or busy one.
        self.fleet.kill_all(KillReason::Shutdown);
        let _ = self.send_control(&ToServer::Shutdown);
        let mut server = server;
        // A stopped server could neither reap its workers nor exit: it is
        // ours to end, so it is resumed for that.
        let _ = server.kill(crate::fork::Signal::CONT);
        // The server exits once its workers have; if it does not (stopped,
        // say), dropping it kills it.
        let _ = server.wait_timeout(Duration::from_secs(10));
    }

    /// The main loop; `Err` if the pool broke, `Ok` on an orderly stop.
    fn serve(&mut self) -> Result<(), PoolTaskError> {
        let mut last_activity = Instant::now();
        loop {
            let (closed, terminate, queued, busy, deadline) = self.kill_due();
            if terminate {
                return Ok(());
            }
            if closed && queued == 0 && !busy && self.awaiting_status.is_empty() {
                return Ok(());
            }
            self.respawn_due()?;
            self.assign();
            let unrunnable_at = self.fail_unrunnable();
            let now = Instant::now();
            let until = if now.duration_since(last_activity) < SPIN_BEFORE_SLEEP {
                // Look again without sleeping: a reply that is microseconds
                // away is seen without paying a wake-up.
                std::thread::yield_now();
                Some(now)
            } else {
                let tick = self.config.stall.map(|_| now + TICK);
                self.slots
                    .iter()
                    .filter_map(|s| s.retry_at)
                    .chain(self.awaiting_status.values().map(|(_, until)| *until))
                    .chain(unrunnable_at)
                    .chain(tick)
                    .chain(deadline)
                    .min()
            };
            let extra = [self.wake_rx.as_fd(), self.control.as_fd()];
            let (events, ready) = self
                .fleet
                .poll(&extra, until)
                .map_err(|e| PoolTaskError::PoolBroken(format!("poll failed: {e}")))?;
            if !events.is_empty() || ready.iter().any(|&r| r) {
                last_activity = Instant::now();
            }
            if ready[WAKER] {
                let mut sink = [0u8; 64];
                while matches!((&self.wake_rx).read(&mut sink), Ok(n) if n > 0) {}
            }
            if self.control.wants_write() {
                let _ = self.control.flush();
            }
            // Workers' events first: an exit status the server reports in
            // this same turn then finds its task waiting for it.
            for event in events {
                self.on_event(event)?;
            }
            if ready[CONTROL] {
                self.read_control()?;
            }
            while let Some(message) = self.pending_control.pop_front() {
                // A worker that could not be started is asked for again
                // after `RESPAWN_PAUSE`.
                let _ = self.on_control(message);
            }
            if self.config.stall.is_some() {
                self.watch_stalls();
            }
            self.give_up_on_status();
        }
    }

    /// While the pool has no worker: fails the queued tasks once the server
    /// has not given one back for [`SPAWN_PATIENCE`] (twice that if it is
    /// not stopped). Returns when to look again, if tasks may be waiting.
    fn fail_unrunnable(&mut self) -> Option<Instant> {
        if self.fleet.iter().next().is_some() {
            self.no_worker_since = None;
            return None;
        }
        let since = *self.no_worker_since.get_or_insert_with(Instant::now);
        let (server, queued) = {
            let inbox = self.shared.lock();
            (inbox.server_pid, !inbox.queue.is_empty())
        };
        let now = Instant::now();
        let stopped = server.is_some_and(is_stopped);
        let patience = if stopped {
            SPAWN_PATIENCE
        } else {
            2 * SPAWN_PATIENCE
        };
        if now < since + patience {
            // Looked at again when a stopped server's patience ends, then
            // when a running one's does.
            let first = since + SPAWN_PATIENCE;
            return Some(if now < first { first } else { since + patience });
        }
        if !queued {
            return None; // a submission wakes the loop
        }
        let tasks: Vec<Task> = self.shared.lock().queue.drain(..).collect();
        self.shared.room.notify_all();
        let why = format!(
            "the pool has had no worker for {:.1?}: its fork server (pid {}) did not \
             replace them ({})",
            now - since,
            server.unwrap_or(0),
            if stopped {
                "it is stopped"
            } else {
                "hung, or unable to fork"
            },
        );
        for task in tasks {
            task.finish(Err(PoolTaskError::NoWorker(why.clone())));
        }
        None
    }

    /// Fails the tasks whose crashed worker's status the server did not
    /// report in time (it is stopped, or gone): with what is known.
    fn give_up_on_status(&mut self) {
        let now = Instant::now();
        let late: Vec<i32> = self
            .awaiting_status
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(&pid, _)| pid)
            .collect();
        for pid in late {
            let (mut task, _) = self.awaiting_status.remove(&pid).expect("listed");
            task.failed_runs += 1;
            let attempts = task.failed_runs;
            task.finish(Err(PoolTaskError::Worker {
                failure: Failure::Unknown(format!(
                    "the worker ended without replying, and its parent, the fork server \
                     (pid {server}), did not report how within {STATUS_PATIENCE:?} \
                     (stopped, or gone)",
                    server = self.shared.lock().server_pid.unwrap_or(0),
                )),
                attempts,
                pid,
            }));
        }
    }

    fn send_control(&mut self, message: &ToServer) -> Result<(), PoolTaskError> {
        let bytes = frame::encode(message).map_err(PoolTaskError::Encode)?;
        self.control
            .send(&bytes)
            .map_err(|e| PoolTaskError::PoolBroken(format!("the fork server is gone: {e}")))
    }

    fn request_spawn(&mut self, slot: usize) -> Result<(), PoolTaskError> {
        #[cfg(test)]
        if let Some(faults) = &self.config.faults {
            faults
                .spawns
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let info = &mut self.slots[slot];
        info.generation += 1;
        info.retry_at = None;
        let message = ToServer::Spawn {
            slot: slot as u32,
            generation: info.generation,
        };
        self.send_control(&message)
    }

    /// Asks for a worker for `slot` again after a pause, [`RESPAWN_PAUSE`]
    /// doubled for each start of the slot that failed in a row (up to
    /// [`MAX_DOUBLINGS`] times): a worker that always fails to start is
    /// not forked again and again in a tight loop.
    fn respawn_later(&mut self, slot: usize) {
        let info = &mut self.slots[slot];
        let pause = RESPAWN_PAUSE * (1 << info.failed_starts.min(MAX_DOUBLINGS));
        info.failed_starts = info.failed_starts.saturating_add(1);
        info.retry_at = Some(Instant::now() + pause);
        #[cfg(test)]
        if let Some(faults) = &self.config.faults {
            faults.pauses.lock().unwrap().push(pause);
        }
    }

    /// Asks again for workers whose start failed a while ago.
    fn respawn_due(&mut self) -> Result<(), PoolTaskError> {
        let now = Instant::now();
        for slot in 0..self.slots.len() {
            if self.slots[slot].retry_at.is_some_and(|t| t <= now) {
                self.request_spawn(slot)?;
            }
        }
        Ok(())
    }

    /// Handles one control message; `Err` says why a worker of the current
    /// incarnation of its slot could not be started (forked, or taken in):
    /// its slot is tried again after [`RESPAWN_PAUSE`], and any process it
    /// had is killed (its parent, the server, reaps it and reports its end).
    fn on_control(&mut self, (message, fds): Control) -> Result<(), String> {
        match message {
            FromServer::Spawned {
                slot,
                generation,
                pid,
            } => {
                let slot = slot as usize;
                let current = self
                    .slots
                    .get(slot)
                    .is_some_and(|s| s.generation == generation)
                    && self.fleet.get(slot).is_none()
                    && !self.stopping;
                let Some((pidfd, stream, memory)) = fds else {
                    return Ok(()); // `read_control` gives every `Spawned` its fds
                };
                // The worker exits when it sees its socket close, unless it
                // is stopped or stuck: it is killed, not left to the server
                // until the pool ends. Its socket, pidfd and memfd close as
                // they drop here.
                let end_it = || {
                    let _ = rustix::process::pidfd_send_signal(&pidfd, crate::fork::Signal::KILL);
                };
                if !current {
                    end_it(); // a stale incarnation
                    return Ok(());
                }
                let channel = match self.map_channel(pid, &pidfd, memory.as_fd()) {
                    Ok(channel) => Arc::new(channel),
                    Err(e) => {
                        end_it();
                        self.respawn_later(slot);
                        return Err(format!(
                            "the channel of worker {pid} could not be mapped: {e}"
                        ));
                    }
                };
                let stall = self
                    .config
                    .stall
                    .map(|(threads, patience)| StallWatch::new(threads, patience));
                let state = PoolWorker { stall };
                self.fleet.insert(
                    slot,
                    Worker::new(Process::Foreign { pid, pidfd }, Conn::new(stream), state),
                );
                let mut inbox = self.shared.lock();
                inbox.pids[slot] = Some(pid);
                inbox.lanes[slot] = Lane {
                    channel: Some(channel),
                    ..Lane::default()
                };
            }
            FromServer::SpawnFailed {
                slot,
                generation,
                error,
            } => {
                let slot = slot as usize;
                if self
                    .slots
                    .get(slot)
                    .is_some_and(|s| s.generation == generation)
                {
                    self.respawn_later(slot);
                    return Err(format!("a worker could not be forked: {error}"));
                }
            }
            FromServer::Exited { pid, exit } => {
                if let Some((task, _)) = self.awaiting_status.remove(&pid) {
                    self.settle_crash(task, exit, pid);
                } else if self.fleet.iter().any(|(_, w)| w.pid() == pid) {
                    self.early_status.insert(pid, exit);
                }
            }
            FromServer::Ready | FromServer::SetupFailed(_) => {}
        }
        Ok(())
    }

    /// Maps a new worker's channel (the worker's pid and pidfd are for the
    /// tests' faults).
    #[cfg_attr(not(test), allow(unused_variables))]
    fn map_channel(
        &self,
        pid: i32,
        pidfd: &OwnedFd,
        memory: BorrowedFd<'_>,
    ) -> std::io::Result<ShmChannel> {
        #[cfg(test)]
        if let Some(faults) = &self.config.faults {
            use std::sync::atomic::Ordering::Relaxed;
            let fail = faults
                .fail_maps
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
            if fail.is_ok() {
                let _ = rustix::process::pidfd_send_signal(pidfd, crate::fork::Signal::STOP);
                faults.failed.lock().unwrap().push(pid);
                return Err(std::io::Error::other("injected fault"));
            }
        }
        ShmChannel::map(memory)
    }

    fn on_event(&mut self, event: Event) -> Result<(), PoolTaskError> {
        match event {
            // The doorbell: the reply is in the channel, and nobody spun on it.
            Event::Frame { slot, payload } if payload.is_empty() => {
                self.shared.complete_from_channel(slot, None);
            }
            // A reply too large for the channel.
            Event::Frame { slot, payload } => {
                let Some(pid) = self.fleet.get(slot).map(|w| w.pid()) else {
                    return Ok(());
                };
                let (held, channel) = {
                    let mut inbox = self.shared.lock();
                    let lane = &mut inbox.lanes[slot];
                    let held = lane.task.take();
                    lane.replies += u64::from(held.is_some());
                    (held, lane.channel.clone())
                };
                match held {
                    Some((task, _, _)) => task.finish(Ok((payload, pid))),
                    None => self.kill(slot, KillReason::Corrupt("a reply to no request".into())),
                }
                channel.inspect(|c| c.nudge()); // a joiner asleep on the channel
            }
            Event::Ended { slot, end } => {
                self.fleet.remove(slot);
                let (held, served) = {
                    let mut inbox = self.shared.lock();
                    inbox.pids[slot] = None;
                    let lane = &mut inbox.lanes[slot];
                    let served = lane.replies > 0;
                    // A reply published before the end counts: taken below.
                    lane.closed = true;
                    lane.poisoned = None;
                    let channel = lane.channel.take();
                    let held = lane.task.take().map(|(task, seq, _)| (task, seq, channel));
                    (held, served)
                };
                let early = self.early_status.remove(&end.pid);
                // A worker that ended on its own before it served, holding
                // no task (or said its start failed), failed to start: its
                // replacement waits, as after a failed fork. Any other end
                // (a task's crash, a kill ply decided) is replaced at once.
                let bad_bootstrap = early
                    .or(end.exit)
                    .is_some_and(|exit| exit == ChildExit::Exited(EXIT_BAD_BOOTSTRAP));
                let failed_start =
                    bad_bootstrap || (end.killed.is_none() && !served && held.is_none());
                if served {
                    self.slots[slot].failed_starts = 0;
                }
                if !self.stopping {
                    if failed_start {
                        self.respawn_later(slot);
                    } else {
                        self.request_spawn(slot)?;
                    }
                }
                if let Some((task, seq, channel)) = held {
                    let replied = channel.as_ref().and_then(|c| c.take_reply(seq));
                    match replied {
                        Some(Ok(bytes)) => task.finish(Ok((bytes, end.pid))),
                        _ => self.settle(task, end, early),
                    }
                    // A joiner asleep on the channel looks at its outcome
                    // (if the task waits for a status report or a retry,
                    // it sleeps again).
                    channel.inspect(|c| c.nudge());
                }
            }
        }
        Ok(())
    }

    /// Kills a worker and takes no new task to it.
    fn kill(&mut self, slot: usize, reason: KillReason) {
        if let Some(lane) = self.shared.lock().lanes.get_mut(slot) {
            lane.closed = true;
        }
        self.fleet.kill(slot, reason);
    }

    /// Takes the cancels, kills the workers whose task is cancelled, past
    /// its timeout, or whose reply was corrupt. Returns `(closed,
    /// terminate, queued, busy, next deadline)` as of this look.
    #[allow(clippy::type_complexity)]
    fn kill_due(&mut self) -> (bool, bool, usize, bool, Option<Instant>) {
        let now = Instant::now();
        let limit = self.config.task_timeout;
        let mut kills: Vec<(usize, KillReason)> = Vec::new();
        let mut next: Option<Instant> = None;
        let mut inbox = self.shared.lock();
        let cancels = std::mem::take(&mut inbox.cancels);
        for (slot, lane) in inbox.lanes.iter_mut().enumerate() {
            if let Some(why) = lane.poisoned.take() {
                kills.push((slot, KillReason::Corrupt(why)));
            }
            let Some((task, _, started)) = &lane.task else {
                continue;
            };
            if cancels.contains(&task.id) {
                kills.push((slot, KillReason::Cancelled));
            } else if let Some(limit) = limit {
                let at = *started + limit;
                if at <= now && !lane.closed {
                    kills.push((slot, KillReason::Timeout(limit)));
                } else if !lane.closed {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
        }
        for (slot, _) in &kills {
            inbox.lanes[*slot].closed = true;
        }
        let busy = inbox.lanes.iter().any(|l| l.task.is_some());
        let state = (inbox.closed, inbox.terminate, inbox.queue.len(), busy, next);
        drop(inbox);
        for (slot, reason) in kills {
            self.fleet.kill(slot, reason);
        }
        state
    }

    /// A worker ended holding `task`.
    fn settle(&mut self, mut task: Task, end: End, status: Option<ChildExit>) {
        match end.killed {
            Some(KillReason::Shutdown) => task.finish(Err(PoolTaskError::ShutDown)),
            Some(reason) => {
                // A kill ply decided: reported with its reason, at once (no
                // need to wait for the server), and never retried.
                task.failed_runs += 1;
                let attempts = task.failed_runs;
                task.finish(Err(PoolTaskError::Worker {
                    failure: reason.failure(),
                    attempts,
                    pid: end.pid,
                }));
            }
            None => match status.or(end.exit) {
                Some(exit) => self.settle_crash(task, exit, end.pid),
                // The server reaped it before its status was read: wait for
                // the server's report, with a deadline.
                None => {
                    let until = Instant::now() + STATUS_PATIENCE;
                    self.awaiting_status.insert(end.pid, (task, until));
                }
            },
        }
    }

    /// A worker ended on its own with `exit` while holding `task`: retry or fail.
    fn settle_crash(&mut self, mut task: Task, exit: ChildExit, pid: i32) {
        let failure = Failure::from_exit(exit, self.oom_baseline);
        self.oom_baseline = crate::process::error::oom_kills();
        task.failed_runs += 1;
        if self.config.retry.again(task.failed_runs, &failure) && !self.stopping {
            self.shared.lock().queue.push_front(task);
        } else {
            let attempts = task.failed_runs;
            task.finish(Err(PoolTaskError::Worker {
                failure,
                attempts,
                pid,
            }));
        }
    }

    /// Hands queued tasks to idle workers: through their channel, or on
    /// their socket if too large.
    fn assign(&mut self) {
        let slots: Vec<usize> = self.fleet.iter().map(|(slot, _)| slot).collect();
        let mut inbox = self.shared.lock();
        let mut started = false;
        for slot in slots {
            let Some(task) = inbox.queue.front() else {
                break;
            };
            let lane = &inbox.lanes[slot];
            let via_socket = if lane.can_take(task) {
                false
            } else if lane.can_take_via_socket() {
                // The frame first: the worker reads it once announced.
                if self.fleet.send(slot, &task.request).is_err() {
                    continue; // the worker is going away
                }
                true
            } else {
                continue;
            };
            let task = inbox.queue.pop_front().expect("checked");
            inbox.lanes[slot].start(task, via_socket);
            started = true;
        }
        drop(inbox);
        if started {
            self.shared.room.notify_all();
        }
    }

    /// Kills workers that sit blocked on a lock without progress.
    fn watch_stalls(&mut self) {
        let now = Instant::now();
        let replies: Vec<u64> = self.shared.lock().lanes.iter().map(|l| l.replies).collect();
        let stalled: Vec<(usize, KillReason)> = self
            .fleet
            .iter_mut()
            .filter_map(|(slot, w)| {
                let pid = w.pid();
                let reason = w.state.stall.as_mut()?.check(pid, replies[slot], now)?;
                Some((slot, reason))
            })
            .collect();
        for (slot, reason) in stalled {
            self.kill(slot, reason);
        }
    }
}

/// Whether `pid` is stopped (by a signal or a tracer), from its
/// `/proc/<pid>/stat`.
fn is_stopped(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some('T' | 't'))
}
