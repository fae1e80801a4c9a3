//! The rounds of a fork-join map over the supervision engine, and its retry
//! accounting.
//!
//! A round forks up to `workers` children over a list of chunks. Each claims
//! chunks from a `ChunkDispenser` in shared memory (which records the chunk
//! each worker holds), runs them, and sends a [`MapReport`] per chunk over its
//! socket, batched. The parent runs a [`Fleet`]: reports are recorded as they
//! come; when a worker ends, the dispenser tells which chunk it held.
//!
//! Retry accounting is exact: a chunk is charged one attempt when a worker
//! failed *while holding it* and had not reported it. Only then, and only for
//! a crash (see [`Retry`]), is it re-issued to a fresh worker. A chunk can
//! also be left unreported without having failed: its worker finished it but
//! died before its batched report went out, or died in the instant between
//! taking a chunk and recording it. Such chunks are simply redone in the next
//! round, uncharged. A round that finishes nothing and charges nothing counts
//! towards a bound of idle rounds, so a pathological run still ends — with
//! the real end of a worker that caused it, never an invented exit status.

use std::ops::Range;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use ply_core::partition::{ChunkDispenser, Schedule};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::fork::{ChildExit, fork_unchecked};
use crate::ipc::frame;
use crate::process::error::{Failure, MapError};
use crate::process::panic;
use crate::process::placement::Placement;
use crate::process::results::forking_worker;
use crate::process::retry::Retry;
use crate::process::supervisor::stall::StallWatch;
use crate::process::supervisor::{Conn, End, Event, Fleet, KillReason, Process, Worker};
use crate::process::threads::ForkPlan;
use crate::process::threads::ThreadPolicy;
use crate::process::wire::{ChunkResult, MapReport};
use crate::shm::{SharedBox, ShmSafe};
use ply_core::partition::Plan;

/// A worker sends its chunk reports at most this often (and when done)...
const REPORT_INTERVAL: Duration = Duration::from_millis(20);
/// ...or when this many bytes of reports are waiting.
const REPORT_BATCH_BYTES: usize = 1 << 20;
/// How often heartbeats and stalls are looked at, when either is watched.
const TICK: Duration = Duration::from_millis(20);

/// The most workers one map call forks.
pub(super) const MAX_WORKERS: usize = 256;

/// What a map call asks of its rounds.
#[derive(Clone, Copy, Debug)]
pub(super) struct Config {
    pub workers: usize,
    pub task_timeout: Option<Duration>,
    pub retry: Retry,
    pub threads: ThreadPolicy,
}

/// A chunk body: (chunk index, its items, the worker's heartbeat) → what the
/// report carries back.
pub(super) type ChunkBody<'a, S> = dyn Fn(usize, Range<usize>, Heartbeat<'_>) -> S + 'a;

/// Checks a decoded report against its chunk's items (chunk index, its
/// items, the report); `Err` says why it is corrupt.
pub(super) type ReportCheck<'a, R> = dyn Fn(usize, Range<usize>, &R) -> Result<(), String> + 'a;

/// A worker's heartbeat: the item it is on, in shared memory, which the
/// parent watches to enforce the per-item timeout and to see progress.
/// Unwatched, [`at`](Self::at) stores nothing rather than write a shared
/// cache line per item for no reader.
#[derive(Clone, Copy)]
pub(super) struct Heartbeat<'a> {
    cell: &'a AtomicUsize,
    on: bool,
}

impl Heartbeat<'_> {
    /// Records that the worker has started item `item`.
    #[inline(always)]
    pub(super) fn at(self, item: usize) {
        if self.on {
            self.cell.store(item + 1, Relaxed);
        }
    }
}

/// A subset of a schedule's chunks, renumbered `0..list.len()`: what is left
/// to do in a later round.
struct ListSchedule<'a> {
    base: &'a Plan,
    list: &'a [usize],
}

impl Schedule for ListSchedule<'_> {
    fn chunks(&self) -> usize {
        self.list.len()
    }
    fn chunk(&self, i: usize) -> Range<usize> {
        self.base.chunk(self.list[i])
    }
}

/// The check of reports that carry nothing (their results are in shared
/// memory): any is whole.
pub(super) fn no_check(_: usize, _: Range<usize>, (): &()) -> Result<(), String> {
    Ok(())
}

#[cfg(test)]
std::thread_local! {
    /// Tests only: the worker's socket, so that a test's closure can send a
    /// report of its own making (a worker's corrupt message).
    pub(super) static WORKER_OUT: std::cell::Cell<std::os::fd::RawFd> =
        const { std::cell::Cell::new(-1) };
}

/// What the map failed with, and every chunk's report so far.
pub(super) type Failed<R> = (MapError, Vec<Option<R>>);

/// Runs `body` over every chunk of `schedule` in worker processes; returns
/// each chunk's report, in chunk order.
pub(super) fn run_chunks<S, R>(
    schedule: &Plan,
    config: &Config,
    body: &ChunkBody<'_, S>,
    check: &ReportCheck<'_, R>,
) -> Result<Vec<Option<R>>, Failed<R>>
where
    S: Serialize,
    R: DeserializeOwned,
{
    let chunks = schedule.chunks();
    let mut reports: Vec<Option<R>> = (0..chunks).map(|_| None).collect();
    let workers = config.workers;
    if workers == 0 || workers > MAX_WORKERS {
        return Err((
            MapError::Options(format!("workers must be 1 to {MAX_WORKERS}, not {workers}")),
            reports,
        ));
    }
    if chunks == 0 {
        return Ok(reports);
    }
    let (other_threads, stall) = match config.threads.plan() {
        ForkPlan::Refuse { other_threads } => {
            return Err((MapError::ThreadsPresent { other_threads }, reports));
        }
        ForkPlan::Fork {
            other_threads,
            watch,
        } => (other_threads, watch),
    };
    panic::install();
    let mut map = Map {
        schedule,
        config,
        body,
        check,
        reports: &mut reports,
        failed_runs: vec![0; chunks],
        other_threads,
        stall,
    };
    // The round's shared state is initialized whole, so each of its pages is
    // a fresh page fault: slots for 256 workers take 17 pages, for 8 one.
    let outcome = if workers <= 8 {
        map.run::<8>(workers)
    } else {
        map.run::<MAX_WORKERS>(workers)
    };
    match outcome {
        Ok(()) => Ok(reports),
        Err(e) => Err((e, reports)),
    }
}

/// One map call's state across its rounds.
struct Map<'a, 'b, S, R> {
    schedule: &'a Plan,
    config: &'a Config,
    body: &'a ChunkBody<'b, S>,
    check: &'a ReportCheck<'b, R>,
    reports: &'a mut Vec<Option<R>>,
    /// Per chunk: runs that failed while holding it.
    failed_runs: Vec<u32>,
    other_threads: usize,
    /// Patience of the stall watch, if workers are watched.
    stall: Option<Duration>,
}

/// What a round's workers share with the parent, in one mapping.
struct RoundShared<const W: usize> {
    dispenser: ChunkDispenser<W>,
    /// Per worker: the item it is on, plus one (0 before its first), read by
    /// the parent for timeouts and progress.
    beats: [CachePadded<AtomicUsize>; W],
}

/// The parent's state for one map worker.
struct MapWorker {
    /// Its dispenser id.
    id: usize,
    /// The heartbeat last seen.
    beat: usize,
    /// Frames received from it (progress, for the stall watch).
    frames: u64,
    /// A panic it reported before exiting.
    panic: Option<String>,
    /// It sent a corrupt message (why) and was killed for it: nothing more
    /// it sent is taken.
    corrupt: Option<String>,
    /// The chunk its corrupt report named, when that could be read.
    corrupt_chunk: Option<usize>,
    stall: Option<StallWatch>,
}

/// A round over a list of chunks.
struct Round<'r, const W: usize> {
    shared: SharedBox<RoundShared<W>>,
    list: &'r [usize],
    /// Whether heartbeats are written (a timeout or a stall watch reads them).
    beating: bool,
}

// SAFETY: ply-core's `ChunkDispenser` and cache-padded `AtomicUsize`s.
unsafe impl<const W: usize> ShmSafe for RoundShared<W> {}

impl<S: Serialize, R: DeserializeOwned> Map<'_, '_, S, R> {
    fn run<const W: usize>(&mut self, workers: usize) -> Result<(), MapError> {
        let max_idle_rounds = self.config.retry.max_runs().max(2);
        let mut idle_rounds = 0;
        let mut last_trouble: Option<(Failure, i32)> = None;
        let mut todo: Vec<usize> = (0..self.reports.len()).collect();
        while !todo.is_empty() {
            let done_before = self.reports.iter().filter(|r| r.is_some()).count();
            let charged_before: u32 = self.failed_runs.iter().sum();
            let round = Round::<W> {
                shared: SharedBox::new(RoundShared {
                    dispenser: ChunkDispenser::new(),
                    beats: std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
                })?,
                list: &todo,
                beating: self.config.task_timeout.is_some() || self.stall.is_some(),
            };
            self.round(&round, workers.min(todo.len()), &mut last_trouble)?;
            let left: Vec<usize> = todo
                .iter()
                .copied()
                .filter(|&c| self.reports[c].is_none())
                .collect();
            let done_now = self.reports.iter().filter(|r| r.is_some()).count();
            let charged_now: u32 = self.failed_runs.iter().sum();
            if !left.is_empty() && done_now == done_before && charged_now == charged_before {
                idle_rounds += 1;
                if idle_rounds >= max_idle_rounds {
                    let (failure, pid) = last_trouble.clone().unwrap_or((
                        Failure::Unknown("workers exited normally and left chunks undone".into()),
                        0,
                    ));
                    return Err(MapError::Worker {
                        items: self.schedule.chunk(left[0]),
                        failure,
                        attempts: self.failed_runs[left[0]],
                        pid,
                        completed: (),
                    });
                }
            }
            todo = left;
        }
        Ok(())
    }

    /// Runs one round to its end: every worker exited and reaped.
    fn round<const W: usize>(
        &mut self,
        round: &Round<'_, W>,
        count: usize,
        last_trouble: &mut Option<(Failure, i32)>,
    ) -> Result<(), MapError> {
        let mut fleet: Fleet<MapWorker> = Fleet::new(count);
        // Every worker but the last is moved off this CPU as soon as it is
        // forked, so that it starts while the rest are forked (placement.rs).
        let mut placement = Placement::new();
        for id in 0..count {
            let worker = self.spawn(round, id)?;
            if id + 1 < count {
                placement.move_off_this_cpu(worker.pid());
            }
            fleet.insert(id, worker);
        }
        placement.restore();
        let ticking = round.beating;
        while !fleet.is_empty() {
            let until = ticking.then(|| Instant::now() + TICK);
            let (events, _) = fleet.poll(&[], until)?;
            for event in events {
                match event {
                    Event::Frame { slot, payload } => {
                        self.on_report(&mut fleet, round, slot, &payload)
                    }
                    Event::Ended { slot, end } => {
                        let worker = fleet.remove(slot);
                        if let Some(again) = self.on_end(round, end, worker, last_trouble)? {
                            fleet.insert(slot, again);
                        }
                    }
                }
            }
            if ticking {
                self.watch(&mut fleet, round);
            }
        }
        Ok(())
    }

    /// Forks worker `id` of `round`: it claims chunks until none are left,
    /// reporting each.
    fn spawn<const W: usize>(
        &self,
        round: &Round<'_, W>,
        id: usize,
    ) -> Result<Worker<MapWorker>, MapError> {
        let (parent_end, mut child_end) = UnixStream::pair()?;
        round.shared.beats[id].store(0, Relaxed);
        let parent_fd = std::os::fd::AsRawFd::as_raw_fd(&parent_end);
        let body = || {
            // SAFETY: closes this process's copy of the parent's end; its
            // owner lives in the parent's frames, never returned to here.
            unsafe { libc::close(parent_fd) };
            self.work(round, id, &mut child_end)
        };
        // SAFETY: the closure owns nothing (it borrows), so the parent drops
        // nothing of it. Its borrows are of `run_chunks`' frames, which reap
        // every worker before returning (a round returns with its fleet
        // empty; on an error the fleet's drop kills and reaps). The parent
        // changes none of what a worker reads meanwhile, but the shared
        // round state, through atomics. The caller's closure and inputs are
        // `Send` (`map`'s bounds): each worker has a copy of them as a thread
        // could be given one, and never drops it (it leaves with `_exit`).
        let child = forking_worker(|| unsafe { fork_unchecked(body) })?;
        drop(child_end); // only the child writes
        let stall = self
            .stall
            .map(|patience| StallWatch::new(self.other_threads, patience));
        Ok(Worker::new(
            Process::Own(child),
            Conn::new(parent_end),
            MapWorker {
                id,
                beat: 0,
                frames: 0,
                panic: None,
                corrupt: None,
                corrupt_chunk: None,
                stall,
            },
        ))
    }

    /// A worker's life, in the child: claim, run, report; returns its exit code.
    fn work<const W: usize>(&self, round: &Round<'_, W>, id: usize, out: &mut UnixStream) -> i32 {
        #[cfg(test)]
        WORKER_OUT.with(|fd| fd.set(std::os::fd::AsRawFd::as_raw_fd(out)));
        let schedule = ListSchedule {
            base: self.schedule,
            list: round.list,
        };
        let beat = Heartbeat {
            cell: &round.shared.beats[id],
            on: round.beating,
        };
        // Reports go in batches, at most every REPORT_INTERVAL: each one wakes
        // the parent, which on a small machine takes CPU from the workers. A
        // crash loses only unreported chunks, which the next round redoes.
        let mut batch: Vec<u8> = Vec::new();
        let mut last_sent = Instant::now();
        let send = |batch: &mut Vec<u8>| std::io::Write::write_all(out, batch).is_ok();
        let mut send = send;
        while let Some(claim) = round.shared.dispenser.claim(id, &schedule) {
            let chunk = round.list[claim.index];
            let items = claim.range.clone();
            let run =
                panic::in_worker(format_args!("items {}..{}", items.start, items.end), || {
                    (self.body)(chunk, claim.range, beat)
                });
            let panicked = run.is_err();
            let report = MapReport {
                chunk: chunk as u32,
                result: match &run {
                    Ok(s) => ChunkResult::Done(s),
                    Err(message) => ChunkResult::Panicked(message.clone()),
                },
            };
            let encoded = frame::encode(&report).or_else(|e| {
                frame::encode(&MapReport::<()> {
                    chunk: chunk as u32,
                    result: ChunkResult::Panicked(format!("the results could not be encoded: {e}")),
                })
            });
            let Ok(encoded) = encoded else {
                return crate::fork::EXIT_PANICKED;
            };
            // Framing into a Vec cannot fail.
            let _ = frame::write_frame(&mut batch, &encoded);
            if panicked
                || batch.len() >= REPORT_BATCH_BYTES
                || last_sent.elapsed() >= REPORT_INTERVAL
            {
                if !send(&mut batch) || panicked {
                    return crate::fork::EXIT_PANICKED;
                }
                batch.clear();
                last_sent = Instant::now();
            }
            round.shared.dispenser.complete(id);
        }
        if !send(&mut batch) {
            return crate::process::wire::EXIT_SUPERVISOR_GONE;
        }
        0
    }

    /// A report arrived from the worker in `slot`.
    fn on_report<const W: usize>(
        &mut self,
        fleet: &mut Fleet<MapWorker>,
        round: &Round<'_, W>,
        slot: usize,
        payload: &[u8],
    ) {
        // Nothing more is taken from a worker that sent a corrupt report
        // (frames it sent before being killed may still be in the batch).
        if fleet.get(slot).is_none_or(|w| w.state.corrupt.is_some()) {
            return;
        }
        let report = match frame::decode::<MapReport<R>>(payload) {
            Ok(report) => report,
            Err(e) => return Self::corrupt(fleet, slot, None, format!("a report: {e}")),
        };
        let chunk = report.chunk as usize;
        if !round.list.contains(&chunk) {
            let why = format!("a report for chunk {chunk}, not in this round");
            return Self::corrupt(fleet, slot, None, why);
        }
        if let ChunkResult::Done(r) = &report.result
            && let Err(why) = (self.check)(chunk, self.schedule.chunk(chunk), r)
        {
            let why = format!("its report of chunk {chunk}: {why}");
            return Self::corrupt(fleet, slot, Some(chunk), why);
        }
        let Some(worker) = fleet.get_mut(slot) else {
            return;
        };
        worker.state.frames += 1;
        match report.result {
            ChunkResult::Done(r) => {
                if self.reports[chunk].is_none() {
                    self.reports[chunk] = Some(r);
                }
            }
            ChunkResult::Panicked(message) => worker.state.panic = Some(message),
        }
    }

    /// The worker in `slot` sent a corrupt message: it is killed for it,
    /// and charged with `chunk` (the chunk its report named, if readable)
    /// when it ends.
    fn corrupt(fleet: &mut Fleet<MapWorker>, slot: usize, chunk: Option<usize>, why: String) {
        if let Some(worker) = fleet.get_mut(slot) {
            worker.state.corrupt = Some(why.clone());
            worker.state.corrupt_chunk = chunk;
        }
        fleet.kill(slot, KillReason::Corrupt(why));
    }

    /// The worker ended: settle the chunk it held. Returns a fresh worker to
    /// put in its slot when the chunk runs again.
    fn on_end<const W: usize>(
        &mut self,
        round: &Round<'_, W>,
        end: End,
        worker: Worker<MapWorker>,
        last_trouble: &mut Option<(Failure, i32)>,
    ) -> Result<Option<Worker<MapWorker>>, MapError> {
        let state = worker.state;
        let held = round
            .shared
            .dispenser
            .reclaim(state.id)
            .map(|i| round.list[i]);
        // A worker that sent a corrupt message failed by it, even if it
        // exited before the kill it earned.
        let killed = state.corrupt.map(KillReason::Corrupt).or(end.killed);
        let failure = match (killed, state.panic, end.exit) {
            (Some(reason), _, _) => reason.failure(),
            (None, Some(message), _) => Failure::Panicked(message),
            (None, None, Some(ChildExit::Exited(0))) => return Ok(None),
            (None, None, Some(exit)) => Failure::from_exit(exit, None),
            (None, None, None) => {
                Failure::Unknown("its exit status was taken by another wait in this process".into())
            }
        };
        // A corrupt message fails the call (the worker is broken, and a
        // corrupt message is not a crash to retry), charged to the chunk its
        // report named, even if another worker did that chunk; unreadable,
        // to the chunk the worker held or, if it had finished (it may exit
        // before its message is read), to the first chunk of the round left
        // undone: everything it sent from its corrupt message on was
        // dropped, so the chunk it was running then is among those.
        let corrupt = matches!(failure, Failure::Corrupt(_));
        let charged = corrupt
            .then(|| {
                state.corrupt_chunk.or(held).or_else(|| {
                    round
                        .list
                        .iter()
                        .copied()
                        .find(|&c| self.reports[c].is_none())
                })
            })
            .flatten();
        if let Some(chunk) = charged {
            self.failed_runs[chunk] += 1;
            return Err(MapError::Worker {
                items: self.schedule.chunk(chunk),
                failure,
                attempts: self.failed_runs[chunk],
                pid: end.pid,
                completed: (),
            });
        }
        let Some(chunk) = held.filter(|&c| self.reports[c].is_none()) else {
            // It died between chunks: nothing of its own to charge. Whatever
            // it left unreported is redone by the next round.
            *last_trouble = Some((failure, end.pid));
            return Ok(None);
        };
        self.failed_runs[chunk] += 1;
        if !self.config.retry.again(self.failed_runs[chunk], &failure) {
            return Err(MapError::Worker {
                items: self.schedule.chunk(chunk),
                failure,
                attempts: self.failed_runs[chunk],
                pid: end.pid,
                completed: (),
            });
        }
        // `reclaim` re-issued the chunk: a fresh worker with the same id
        // takes it first.
        self.spawn(round, state.id).map(Some)
    }

    /// Timeouts (by heartbeat) and stalls, looked at every tick.
    fn watch<const W: usize>(&self, fleet: &mut Fleet<MapWorker>, round: &Round<'_, W>) {
        let now = Instant::now();
        let limit = self.config.task_timeout;
        let mut stalled = Vec::new();
        let mut deadlines = Vec::new();
        for (slot, worker) in fleet.iter_mut() {
            let pid = worker.pid();
            let state = &mut worker.state;
            let beat = round.shared.beats[state.id].load(Relaxed);
            if beat != state.beat {
                state.beat = beat;
                if let Some(limit) = limit {
                    deadlines.push((slot, Some((now + limit, KillReason::Timeout(limit)))));
                }
            }
            if let Some(watch) = &mut state.stall {
                let progress = state.beat as u64 + state.frames;
                if let Some(reason) = watch.check(pid, progress, now) {
                    stalled.push((slot, reason));
                }
            }
        }
        for (slot, deadline) in deadlines {
            fleet.set_deadline(slot, deadline);
        }
        for (slot, reason) in stalled {
            fleet.kill(slot, reason);
        }
    }
}
