//! The fork-join map: [`map`], [`map_plain`], [`reduce`].

use std::cell::UnsafeCell;
use std::fmt;
use std::io;
use std::mem::{MaybeUninit, size_of};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use ply_core::partition::{ChunkDispenser, Chunking, Plan, Schedule};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::failure::{Failure, oom_kills};
use super::placement::Placement;
use super::prefetch::for_each_prefetched;
use super::results::{Region, SharedResults, forking_worker};
use crate::fork::{ChildExit, ForkedChild, fork_child};
use crate::ipc::{IpcError, frame};
use crate::shm::{SharedBox, SharedSlice, ShmSafe};

/// The most workers one map call forks.
///
/// # Example
///
/// ```
/// use ply_os::process::{MAX_MAP_WORKERS, MapError, MapOptions, map_plain};
/// let too_many = MapOptions::new().workers(MAX_MAP_WORKERS + 1);
/// assert!(matches!(map_plain(&[1u8], |&x| x, &too_many), Err(MapError::Options(_))));
/// ```
pub const MAX_MAP_WORKERS: usize = 256;

/// A worker sends its chunk reports at most this often (and when done)...
const REPORT_INTERVAL: Duration = Duration::from_millis(20);
/// ...or when this many bytes of reports are waiting.
const REPORT_BATCH_BYTES: usize = 1 << 20;

/// Frame tags from a worker.
const TAG_DONE: u8 = 0;
const TAG_PANIC: u8 = 1;

/// What to do when a worker dies holding a chunk.
///
/// # Example
///
/// ```
/// use ply_os::process::{MapOptions, OnCrash};
/// let patient = MapOptions::new().on_crash(OnCrash::Retry { attempts: 5 });
/// let strict = MapOptions::new().on_crash(OnCrash::Fail);
/// # let _ = (patient, strict);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnCrash {
    /// Re-issue the chunk to a fresh worker; fail once a chunk has been tried
    /// this many times in all (at least 1).
    Retry {
        /// Runs allowed per chunk, the first included.
        attempts: u32,
    },
    /// Fail the call at the first crash.
    Fail,
}

impl OnCrash {
    fn attempts(self) -> u32 {
        match self {
            OnCrash::Retry { attempts } => attempts.max(1),
            OnCrash::Fail => 1,
        }
    }
}

/// Options of a fork-join [`map`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::process::{MapOptions, OnCrash};
/// use ply_core::partition::Chunking;
///
/// let options = MapOptions::new()
///     .workers(2)
///     .chunking(Chunking::Fixed(1000))
///     .task_timeout(Duration::from_secs(5))
///     .on_crash(OnCrash::Retry { attempts: 3 });
/// assert_eq!(options.worker_count(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct MapOptions {
    workers: Option<usize>,
    chunking: Chunking,
    task_timeout: Option<Duration>,
    on_crash: OnCrash,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            workers: None,
            chunking: Chunking::Auto,
            task_timeout: None,
            on_crash: OnCrash::Retry { attempts: 3 },
        }
    }
}

impl MapOptions {
    /// Defaults: one worker per available CPU, [`Chunking::Auto`], no timeout,
    /// three attempts per chunk.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(ply_os::process::MapOptions::new().worker_count() >= 1);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Worker processes to fork (at most [`MAX_MAP_WORKERS`]).
    ///
    /// # Example
    ///
    /// ```
    /// let o = ply_os::process::MapOptions::new().workers(4);
    /// assert_eq!(o.worker_count(), 4);
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// How the items are cut into chunks.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{MapOptions, reduce};
    /// use ply_core::partition::Chunking;
    /// let o = MapOptions::new().workers(2).chunking(Chunking::Even);
    /// assert_eq!(reduce(0..100, &o, 0u64, |i| i as u64, |a, b| a + b)?, 4950);
    /// # Ok::<(), ply_os::process::MapError>(())
    /// ```
    pub fn chunking(mut self, chunking: Chunking) -> Self {
        self.chunking = chunking;
        self
    }

    /// Kill a worker that spends longer than `timeout` on one item; the call
    /// fails with [`Failure::Timeout`] (timeouts are not retried).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_os::process::{Failure, MapError, MapOptions, map_plain};
    /// let o = MapOptions::new().workers(1).task_timeout(Duration::from_millis(200));
    /// let err = map_plain(&[1u64, 60_000], |&ms| std::thread::sleep(Duration::from_millis(ms)), &o).unwrap_err();
    /// assert!(matches!(err, MapError::Worker { failure: Failure::Timeout(_), .. }));
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// The crash policy (default: three attempts per chunk).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{MapOptions, OnCrash};
    /// let o = MapOptions::new().on_crash(OnCrash::Fail);
    /// # let _ = o;
    /// ```
    pub fn on_crash(mut self, policy: OnCrash) -> Self {
        self.on_crash = policy;
        self
    }

    /// The number of workers these options ask for.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::process::MapOptions::new().workers(3).worker_count(), 3);
    /// ```
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// Why a fork-join map failed. No partial result is returned: either every
/// item has its result, or this says which items could not be done and why.
///
/// # Example
///
/// ```
/// use ply_os::process::{Failure, MapError, MapOptions, OnCrash, map_plain};
///
/// let inputs: Vec<u32> = (0..100).collect();
/// let options = MapOptions::new().workers(2).on_crash(OnCrash::Fail);
/// let err = map_plain(&inputs, |&x| {
///     if x == 42 {
///         std::process::abort(); // a crash in one item
///     }
///     x
/// }, &options)
/// .unwrap_err();
/// match &err {
///     MapError::Worker { items, failure, .. } => {
///         assert!(items.contains(&42));
///         assert!(matches!(failure, Failure::Signaled { signal: libc::SIGABRT, .. }));
///     }
///     other => panic!("unexpected: {other}"),
/// }
/// ```
#[derive(Debug)]
pub enum MapError {
    /// The items of a chunk could not be done.
    Worker {
        /// The chunk's items.
        items: Range<usize>,
        /// How its last worker failed.
        failure: Failure,
        /// How many times the chunk was tried.
        attempts: u32,
    },
    /// A worker's report did not decode (a bug or memory corruption in it).
    Corrupt(IpcError),
    /// Bad options (zero workers, too many).
    Options(String),
    /// The OS refused a fork, a socket or a mapping.
    Os(io::Error),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Worker {
                items,
                failure,
                attempts,
            } => write!(
                f,
                "items {}..{} failed after {attempts} attempt(s): the worker {failure}",
                items.start, items.end
            ),
            MapError::Corrupt(e) => write!(f, "a worker sent a corrupt report: {e}"),
            MapError::Options(why) => write!(f, "invalid map options: {why}"),
            MapError::Os(e) => write!(f, "could not start workers: {e}"),
        }
    }
}

impl std::error::Error for MapError {}

impl From<io::Error> for MapError {
    fn from(e: io::Error) -> Self {
        MapError::Os(e)
    }
}

/// Maps `f` over `inputs` in worker processes; results come back serialized
/// through each worker's socket, in input order.
///
/// `f` and `inputs` reach the workers through `fork` (copy-on-write), so they
/// need no serialization and no `Send`. Use [`map_plain`] when `O` is plain
/// data: it skips serialization on the way back too.
///
/// # Errors
///
/// [`MapError`]: a chunk that failed on every attempt (with the worker's
/// [`Failure`]), a corrupt report, bad options, or an OS refusal.
///
/// # Example
///
/// ```
/// use ply_os::process::{MapOptions, map};
/// let words = ["fork", "join", "map"];
/// let upper = map(&words, |w| w.to_uppercase(), &MapOptions::new().workers(2))?;
/// assert_eq!(upper, ["FORK", "JOIN", "MAP"]);
/// # Ok::<(), ply_os::process::MapError>(())
/// ```
pub fn map<I, O, F>(inputs: &[I], f: F, options: &MapOptions) -> Result<Vec<O>, MapError>
where
    F: Fn(&I) -> O,
    O: Serialize + DeserializeOwned,
{
    let schedule = options
        .chunking
        .schedule(inputs.len(), options.worker_count());
    let payloads = run_chunks(&schedule, options, &|_, range, beat| {
        let mut results: Vec<O> = Vec::with_capacity(range.len());
        // No output slots here (results go into a Vec): pages are counted
        // in inputs alone.
        for_each_prefetched::<I, ()>(range, inputs, None, |i| {
            beat.at(i);
            results.push(f(&inputs[i]));
        });
        frame::encode(&results)
    })?;
    let mut out = Vec::with_capacity(inputs.len());
    for payload in payloads {
        let part: Vec<O> = frame::decode(&payload).map_err(MapError::Corrupt)?;
        out.extend(part);
    }
    if out.len() != inputs.len() {
        return Err(MapError::Corrupt(IpcError::Decode(format!(
            "{} results for {} inputs",
            out.len(),
            inputs.len()
        ))));
    }
    Ok(out)
}

/// A slot of shared memory written by one worker at a time.
#[repr(transparent)]
struct ResultSlot<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY: each slot is written only by the worker that holds its chunk (the
// dispenser hands a chunk to one worker at a time; a re-issued chunk goes out
// only after its previous holder is dead and reaped), and read by the parent
// only after every worker has exited.
unsafe impl<T: Send> Sync for ResultSlot<T> {}
// SAFETY: a maybe-uninitialized `T` in a cell; `T` is `ShmSafe`.
unsafe impl<T: ShmSafe> ShmSafe for ResultSlot<T> {}

/// Maps `f` over `inputs` in worker processes, for plain-data results: each
/// worker writes its results straight into shared memory (no serialization),
/// and they are returned in place, as [`SharedResults`] (a `&[O]`), not
/// copied.
///
/// `O` is [`ShmSafe`] (no pointers or references, no heap memory: a result
/// that pointed into a worker's memory would dangle once the worker exits)
/// and `Copy`. For other results use [`map`].
///
/// Dropping the results keeps their mapping for the next call, whose workers
/// then write into pages that already exist (see [`SharedResults`]): the
/// first call in a process pays for fresh pages, later ones do not.
///
/// # Errors
///
/// As [`map`].
///
/// # Example
///
/// ```
/// use ply_os::process::{MapOptions, map_plain};
/// let inputs: Vec<u64> = (0..10_000).collect();
/// let squares = map_plain(&inputs, |&x| x * x, &MapOptions::new().workers(2))?;
/// assert_eq!(squares[9_999], 9_999 * 9_999);
/// # Ok::<(), ply_os::process::MapError>(())
/// ```
pub fn map_plain<I, O, F>(
    inputs: &[I],
    f: F,
    options: &MapOptions,
) -> Result<SharedResults<O>, MapError>
where
    F: Fn(&I) -> O,
    O: ShmSafe + Copy,
{
    let region = Region::take::<O>(inputs.len())?;
    let slots = region.as_ptr().cast::<O>();
    let schedule = options
        .chunking
        .schedule(inputs.len(), options.worker_count());
    run_chunks(&schedule, options, &|_, range, beat| {
        let size = size_of::<O>();
        region.populate(range.start * size, range.end * size);
        for_each_prefetched(range, inputs, Some(slots.cast_const()), |i| {
            beat.at(i);
            let value = f(&inputs[i]);
            // SAFETY: slot `i < inputs.len()` is in the region and aligned
            // (`take`); only this worker, which holds the chunk, writes it,
            // and the parent reads only after every worker has exited.
            unsafe { slots.add(i).write(value) };
        });
        Ok(Vec::new())
    })?;
    // SAFETY: every chunk was reported complete, so every slot `0..len` was
    // written, and every worker has been reaped.
    Ok(unsafe { SharedResults::new(region, inputs.len()) })
}

/// Folds `map(i)` for every `i` in `range` with `combine`, in worker processes:
/// each chunk's partial result is written to shared memory, and the parent
/// combines the partials in chunk order (so `combine` need only be
/// associative). `identity` must be a neutral element of `combine`.
///
/// The partials live in shared memory, so `T` is [`ShmSafe`] and `Copy`, as
/// [`map_plain`]'s results are.
///
/// # Errors
///
/// As [`map`].
///
/// # Example
///
/// The sum of the primes below 100,000, in two processes:
///
/// ```
/// use ply_os::process::{MapOptions, reduce};
/// let is_prime = |n: usize| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0);
/// let sum = reduce(0..100_000, &MapOptions::new().workers(2), 0u64,
///     |i| if is_prime(i) { i as u64 } else { 0 }, |a, b| a + b)?;
/// assert_eq!(sum, 454_396_537);
/// # Ok::<(), ply_os::process::MapError>(())
/// ```
pub fn reduce<T, M, C>(
    range: Range<usize>,
    options: &MapOptions,
    identity: T,
    map: M,
    combine: C,
) -> Result<T, MapError>
where
    T: ShmSafe + Copy,
    M: Fn(usize) -> T,
    C: Fn(T, T) -> T,
{
    let len = range.len();
    let schedule = options.chunking.schedule(len, options.worker_count());
    let partials = SharedSlice::new(schedule.chunks(), |_| {
        ResultSlot::<T>(UnsafeCell::new(MaybeUninit::uninit()))
    })?;
    let start = range.start;
    run_chunks(&schedule, options, &|chunk, items, beat| {
        let mut acc = identity;
        for i in items {
            beat.at(i);
            acc = combine(acc, map(start + i));
        }
        // SAFETY: one writer per chunk (see `ResultSlot`), read after exit.
        unsafe { (*partials[chunk].0.get()).write(acc) };
        Ok(Vec::new())
    })?;
    Ok(partials
        .iter()
        // SAFETY: every chunk completed, so every partial was written.
        .map(|slot| unsafe { (*slot.0.get()).assume_init() })
        .fold(identity, &combine))
}

/// A chunk body: (chunk index, its items, the worker's heartbeat) → report.
type ChunkBody<'a> = dyn Fn(usize, Range<usize>, Heartbeat<'_>) -> Result<Vec<u8>, IpcError> + 'a;

/// A worker's heartbeat: the item it is on, in shared memory, which the
/// parent watches to enforce the per-item timeout. Without a timeout nobody
/// reads it, so [`at`](Self::at) stores nothing rather than write a shared
/// cache line per item for no reader.
#[derive(Clone, Copy)]
struct Heartbeat<'a> {
    cell: &'a AtomicUsize,
    on: bool,
}

impl Heartbeat<'_> {
    /// Records that the worker has started item `item`.
    #[inline(always)]
    fn at(self, item: usize) {
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

/// One forked worker as the parent sees it.
struct Worker {
    child: ForkedChild,
    reports: UnixStream,
    /// Heartbeat value last seen, and since when.
    last_beat: (usize, Instant),
    /// A panic message the worker reported before exiting.
    panic: Option<String>,
    /// Set when the parent killed it for running over the timeout.
    timed_out: bool,
}

/// Runs `body` over every chunk of `schedule` in worker processes; returns
/// each chunk's report, in chunk order.
fn run_chunks(
    schedule: &Plan,
    options: &MapOptions,
    body: &ChunkBody<'_>,
) -> Result<Vec<Vec<u8>>, MapError> {
    let workers = options.worker_count();
    if workers == 0 || workers > MAX_MAP_WORKERS {
        return Err(MapError::Options(format!(
            "workers must be 1 to {MAX_MAP_WORKERS}, not {workers}"
        )));
    }
    // The round's shared state is initialized whole, so each of its pages is
    // a fresh page fault: slots for 256 workers take 17 pages, for 8 one.
    if workers <= 8 {
        run_rounds::<8>(schedule, options, workers, body)
    } else {
        run_rounds::<MAX_MAP_WORKERS>(schedule, options, workers, body)
    }
}

/// [`run_chunks`] with room for `W` workers.
fn run_rounds<const W: usize>(
    schedule: &Plan,
    options: &MapOptions,
    workers: usize,
    body: &ChunkBody<'_>,
) -> Result<Vec<Vec<u8>>, MapError> {
    let chunks = schedule.chunks();
    let max_attempts = options.on_crash.attempts();
    let oom_before = oom_kills();
    let mut reports: Vec<Option<Vec<u8>>> = (0..chunks).map(|_| None).collect();
    let mut attempts = vec![0u32; chunks];
    // Chunks still to do; each round forks workers over what the last left.
    let mut todo: Vec<usize> = (0..chunks).collect();
    while !todo.is_empty() {
        let round = Round {
            shared: SharedBox::new(RoundShared::<W>::new())?,
            timed: options.task_timeout.is_some(),
            schedule: ListSchedule {
                base: schedule,
                list: &todo,
            },
            body,
        };
        let mut live: Vec<Option<Worker>> = Vec::with_capacity(workers);
        // Every worker but the last is moved off this CPU as soon as it is
        // forked, so that it starts while the rest are forked (placement.rs).
        let count = workers.min(todo.len());
        let mut placement = Placement::new();
        for id in 0..count {
            let worker = round.spawn(id)?;
            if id + 1 < count {
                placement.move_off_this_cpu(worker.child.pid());
            }
            live.push(Some(worker));
        }
        placement.restore();
        round.supervise(
            &mut live,
            &mut reports,
            &mut attempts,
            max_attempts,
            oom_before,
            options.task_timeout,
        )?;
        // Chunks claimed by a worker that died before recording its claim are
        // not reported: try them again (a bounded number of times).
        let left: Vec<usize> = todo
            .iter()
            .copied()
            .filter(|&c| reports[c].is_none())
            .collect();
        for &c in &left {
            attempts[c] += 1;
            if attempts[c] >= max_attempts {
                return Err(MapError::Worker {
                    items: schedule.chunk(c),
                    failure: Failure::Exited(-1),
                    attempts: attempts[c],
                });
            }
        }
        todo = left;
    }
    Ok(reports.into_iter().map(Option::unwrap_or_default).collect())
}

/// What a round's workers share with the parent, in one mapping.
struct RoundShared<const W: usize> {
    dispenser: ChunkDispenser<W>,
    /// Per worker: the item it is on, plus one (0 when between items), read
    /// by the parent to find a worker stuck past the timeout.
    beats: [CachePadded<AtomicUsize>; W],
}

// SAFETY: ply-core's `ChunkDispenser` and cache-padded `AtomicUsize`s.
unsafe impl<const W: usize> ShmSafe for RoundShared<W> {}

impl<const W: usize> RoundShared<W> {
    fn new() -> Self {
        RoundShared {
            dispenser: ChunkDispenser::new(),
            beats: std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
        }
    }
}

/// One round of workers over a list of chunks.
struct Round<'a, 'b, const W: usize> {
    shared: SharedBox<RoundShared<W>>,
    /// Whether a per-item timeout is set (so heartbeats are watched).
    timed: bool,
    schedule: ListSchedule<'a>,
    body: &'a ChunkBody<'b>,
}

impl<const W: usize> Round<'_, '_, W> {
    /// Forks worker `id`: it claims chunks until none are left, reporting each.
    fn spawn(&self, id: usize) -> Result<Worker, MapError> {
        let (reports, mut out) = UnixStream::pair()?;
        self.shared.beats[id].store(0, Relaxed);
        let child = forking_worker(|| {
            fork_child(|| {
                let beat = Heartbeat {
                    cell: &self.shared.beats[id],
                    on: self.timed,
                };
                // Reports are sent in batches, at most every REPORT_INTERVAL: each
                // one wakes the parent, which on a small machine takes CPU from
                // the workers. A crash loses only unreported chunks, which the
                // next round redoes.
                let mut batch: Vec<u8> = Vec::new();
                let mut last_sent = Instant::now();
                while let Some(claim) = self.shared.dispenser.claim(id, &self.schedule) {
                    let chunk = self.schedule.list[claim.index];
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        (self.body)(chunk, claim.range, beat)
                    }));
                    let (tag, data) = match run {
                        Ok(Ok(data)) => (TAG_DONE, data),
                        Ok(Err(e)) => (
                            TAG_PANIC,
                            format!("could not encode results: {e}").into_bytes(),
                        ),
                        Err(payload) => (
                            TAG_PANIC,
                            crate::thread::panic_message(&*payload).into_bytes(),
                        ),
                    };
                    let mut message = Vec::with_capacity(9 + data.len());
                    message.push(tag);
                    message.extend_from_slice(&(chunk as u64).to_le_bytes());
                    message.extend_from_slice(&data);
                    // Framing into a Vec cannot fail.
                    let _ = frame::write_frame(&mut batch, &message);
                    let due = tag == TAG_PANIC
                        || batch.len() >= REPORT_BATCH_BYTES
                        || last_sent.elapsed() >= REPORT_INTERVAL;
                    if due {
                        if std::io::Write::write_all(&mut out, &batch).is_err() || tag == TAG_PANIC
                        {
                            return 101;
                        }
                        batch.clear();
                        last_sent = Instant::now();
                    }
                    self.shared.dispenser.complete(id);
                }
                beat.cell.store(0, Relaxed);
                if std::io::Write::write_all(&mut out, &batch).is_err() {
                    return 101;
                }
                0
            })
        })?;
        drop(out); // only the child writes: its exit closes the stream
        reports.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Worker {
            child,
            reports,
            last_beat: (0, Instant::now()),
            panic: None,
            timed_out: false,
        })
    }

    /// Reads reports and reaps workers until all have exited; re-forks a
    /// crashed worker while its chunk has attempts left.
    fn supervise(
        &self,
        live: &mut [Option<Worker>],
        reports: &mut [Option<Vec<u8>>],
        attempts: &mut [u32],
        max_attempts: u32,
        oom_before: Option<u64>,
        timeout: Option<Duration>,
    ) -> Result<(), MapError> {
        // Bounds re-forks of workers that die without holding a chunk.
        let mut spare_forks = live.len() * max_attempts as usize;
        while live.iter().any(Option::is_some) {
            let mut fds: Vec<libc::pollfd> = live
                .iter()
                .map(|w| libc::pollfd {
                    fd: w.as_ref().map_or(-1, |w| w.reports.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: `fds` is a live array of `fds.len()` pollfd structs
            // (negative fds are ignored by poll).
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 20) };
            for (id, pfd) in fds.iter().enumerate() {
                if pfd.revents == 0 {
                    continue;
                }
                let Some(worker) = live[id].as_mut() else {
                    continue;
                };
                match frame::read_frame(&mut worker.reports, frame::DEFAULT_MAX_FRAME) {
                    Ok(message) => {
                        if message.len() < 9 {
                            return Err(MapError::Corrupt(IpcError::Truncated {
                                expected: 9,
                                got: message.len(),
                            }));
                        }
                        let chunk =
                            u64::from_le_bytes(message[1..9].try_into().expect("8 bytes")) as usize;
                        if chunk >= reports.len() {
                            return Err(MapError::Corrupt(IpcError::Decode(format!(
                                "report for chunk {chunk} of {}",
                                reports.len()
                            ))));
                        }
                        if message[0] == TAG_PANIC {
                            worker.panic =
                                Some(String::from_utf8_lossy(&message[9..]).into_owned());
                        } else if reports[chunk].is_none() {
                            reports[chunk] = Some(message[9..].to_vec());
                        }
                    }
                    // End of stream (or a torn last frame): the worker is gone
                    // or going. Its chunk is settled below.
                    Err(_) => {
                        let worker = live[id].take().expect("checked above");
                        self.settle(
                            id,
                            worker,
                            live,
                            reports,
                            attempts,
                            max_attempts,
                            oom_before,
                            timeout,
                            &mut spare_forks,
                        )?;
                    }
                }
            }
            if let Some(limit) = timeout {
                for (id, slot) in live.iter_mut().enumerate() {
                    let Some(worker) = slot.as_mut() else {
                        continue;
                    };
                    let beat = self.shared.beats[id].load(Relaxed);
                    if beat != worker.last_beat.0 {
                        worker.last_beat = (beat, Instant::now());
                    } else if beat != 0 && !worker.timed_out && worker.last_beat.1.elapsed() > limit
                    {
                        worker.timed_out = true;
                        let _ = worker.child.kill(libc::SIGKILL);
                    }
                }
            }
        }
        Ok(())
    }

    /// A worker's stream ended: reap it, and on failure re-issue or fail its chunk.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        id: usize,
        worker: Worker,
        live: &mut [Option<Worker>],
        reports: &[Option<Vec<u8>>],
        attempts: &mut [u32],
        max_attempts: u32,
        oom_before: Option<u64>,
        timeout: Option<Duration>,
        spare_forks: &mut usize,
    ) -> Result<(), MapError> {
        let Worker {
            child,
            panic,
            timed_out,
            ..
        } = worker;
        let exit = child.wait()?;
        if exit == ChildExit::Exited(0) {
            return Ok(());
        }
        let failure = match (panic, timed_out) {
            (_, true) => Failure::Timeout(timeout.unwrap_or_default()),
            (Some(message), _) => Failure::Panicked(message),
            (None, false) => Failure::from_exit(exit, oom_before),
        };
        let held = self.shared.dispenser.reclaim(id);
        let chunk = held.map(|i| self.schedule.list[i]);
        if let Some(c) = chunk.filter(|&c| reports[c].is_none()) {
            attempts[c] += 1;
            let final_failure = matches!(failure, Failure::Panicked(_) | Failure::Timeout(_));
            if final_failure || attempts[c] >= max_attempts {
                return Err(MapError::Worker {
                    items: self.schedule.base.chunk(c),
                    failure,
                    attempts: attempts[c],
                });
            }
        } else if *spare_forks == 0 {
            return Err(MapError::Worker {
                items: 0..0,
                failure,
                attempts: max_attempts,
            });
        } else {
            *spare_forks -= 1;
        }
        // A fresh worker with the same id takes the re-issued chunk first.
        live[id] = Some(self.spawn(id)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> MapOptions {
        MapOptions::new().workers(2)
    }

    /// Aborts the test binary if the returned guard is not dropped within
    /// `limit`: a broken timeout or crash path must fail CI, not hang it.
    fn watchdog(limit: Duration) -> std::sync::mpsc::Sender<()> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("watchdog: a process::map test ran over {limit:?}");
                std::process::abort();
            }
        });
        tx
    }

    #[test]
    fn a_million_items_match_sequential_every_way() {
        let inputs: Vec<u64> = (0..1_000_000).collect();
        let expected: Vec<u64> = inputs.iter().map(|x| x * 3 + 1).collect();
        for chunking in [
            Chunking::Auto,
            Chunking::Even,
            Chunking::Fixed(777),
            Chunking::Guided { min: 100 },
        ] {
            let o = opts().chunking(chunking);
            assert_eq!(map_plain(&inputs, |x| x * 3 + 1, &o).unwrap(), expected);
        }
        let small = &inputs[..50_000];
        assert_eq!(
            map(small, |x| x * 3 + 1, &opts()).unwrap(),
            expected[..50_000]
        );
        let total = reduce(
            0..1_000_000,
            &opts(),
            0u64,
            |i| i as u64 * 3 + 1,
            |a, b| a + b,
        );
        assert_eq!(total.unwrap(), expected.iter().sum::<u64>());
    }

    #[test]
    fn empty_input_and_bad_options() {
        let none: [u8; 0] = [];
        assert_eq!(map_plain(&none, |&x| x, &opts()).unwrap(), []);
        assert!(matches!(
            map_plain(&[1u8], |&x| x, &MapOptions::new().workers(0)),
            Err(MapError::Options(_))
        ));
    }

    /// A worker SIGKILLs itself in the middle of a chunk, once (a marker in
    /// shared memory says whether it already happened): the chunk is re-issued
    /// and the result is complete and correct.
    #[test]
    fn a_worker_killed_mid_map_has_its_chunk_redone() {
        let _dog = watchdog(Duration::from_secs(120));
        let killed = SharedBox::new(AtomicUsize::new(0)).unwrap();
        let inputs: Vec<u64> = (0..1_000_000).collect();
        let out = map_plain(
            &inputs,
            |&x| {
                if x == 500_000 && killed.fetch_add(1, Relaxed) == 0 {
                    // SAFETY: raise has no preconditions; this child dies here.
                    unsafe { libc::raise(libc::SIGKILL) };
                }
                x + 1
            },
            &opts().chunking(Chunking::Fixed(10_000)),
        )
        .unwrap();
        assert_eq!(killed.load(Relaxed), 2, "the item ran again after the kill");
        assert!(out.iter().enumerate().all(|(i, &y)| y == i as u64 + 1));
    }

    #[test]
    fn a_crash_every_time_fails_with_the_signal_and_the_items() {
        let _dog = watchdog(Duration::from_secs(120));
        let inputs: Vec<u32> = (0..1000).collect();
        let err = map(
            &inputs,
            |&x| {
                if x == 700 {
                    // A real segfault's default action (Rust's own handler
                    // would return from a raised, non-fault SIGSEGV).
                    // SAFETY: signal and raise have no memory preconditions.
                    unsafe {
                        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                        libc::raise(libc::SIGSEGV);
                    }
                }
                x
            },
            &opts()
                .chunking(Chunking::Fixed(100))
                .on_crash(OnCrash::Retry { attempts: 2 }),
        )
        .unwrap_err();
        match err {
            MapError::Worker {
                items,
                failure,
                attempts,
            } => {
                assert_eq!(items, 700..800);
                assert_eq!(attempts, 2);
                assert!(
                    matches!(failure, Failure::Signaled { signal, .. } if signal == libc::SIGSEGV)
                );
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_panic_and_a_hang_are_reported_not_retried() {
        let _dog = watchdog(Duration::from_secs(120));
        let inputs: Vec<u32> = (0..100).collect();
        let err = map_plain(
            &inputs,
            |&x| if x == 5 { panic!("bad item {x}") } else { x },
            &opts(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, MapError::Worker { failure: Failure::Panicked(m), attempts: 1, .. } if m.contains("bad item 5")),
            "{err}"
        );
        let start = Instant::now();
        let err = map_plain(
            &inputs,
            |&x| {
                if x == 50 {
                    std::thread::sleep(Duration::from_secs(600));
                }
                x
            },
            &opts().task_timeout(Duration::from_millis(300)),
        )
        .unwrap_err();
        assert!(
            matches!(&err, MapError::Worker { failure: Failure::Timeout(_), items, .. } if items.contains(&50)),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(60));
    }
}
