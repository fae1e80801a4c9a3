//! The fork-join map: [`map`], [`map_plain`], [`reduce`], and their
//! [`MapOptions`].
//!
//! Each call forks its workers (the closure and the inputs reach them
//! copy-on-write, nothing serialized), which claim chunks from ply-core's
//! `ChunkDispenser` in shared memory and report each finished chunk over
//! their socket; the parent supervises them with the engine in
//! `supervisor` (see `map/run.rs` for the rounds and the retry accounting).

mod run;
#[cfg(test)]
mod tests;

use std::cell::UnsafeCell;
use std::mem::{MaybeUninit, size_of};
use std::ops::Range;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::MapError;
use super::prefetch::for_each_prefetched;
use super::results::{Region, SharedResults};
use super::retry::Retry;
use super::threads::ThreadPolicy;
use crate::shm::{SharedSlice, ShmSafe};
use ply_core::partition::Chunking;
use run::{Config, run_chunks};

/// The most workers one map call forks.
///
/// # Example
///
/// ```
/// use ply_os::process::{MAX_MAP_WORKERS, MapError, MapOptions, map_plain};
/// let too_many = MapOptions::new().workers(MAX_MAP_WORKERS + 1);
/// assert!(matches!(map_plain(&[1u8], |&x| x, &too_many), Err(MapError::Options(_))));
/// ```
pub const MAX_MAP_WORKERS: usize = run::MAX_WORKERS;

/// Options of a fork-join [`map`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_core::partition::Chunking;
/// use ply_os::process::{MapOptions, Retry};
///
/// let options = MapOptions::new()
///     .workers(2)
///     .chunking(Chunking::Fixed(1000))
///     .task_timeout(Duration::from_secs(5))
///     .retry(Retry::runs(3));
/// assert_eq!(options.worker_count(), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MapOptions {
    workers: Option<usize>,
    chunking: Chunking,
    task_timeout: Option<Duration>,
    retry: Retry,
    threads: ThreadPolicy,
}

impl MapOptions {
    /// Defaults: one worker per available CPU, [`Chunking::Auto`], no
    /// timeout, [`Retry::default`] (three runs per chunk),
    /// [`ThreadPolicy::default`].
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn chunking(mut self, chunking: Chunking) -> Self {
        self.chunking = chunking;
        self
    }

    /// Kill a worker that spends longer than `timeout` on one item; the call
    /// fails with [`Failure::Timeout`](super::Failure::Timeout) (timeouts are
    /// not retried).
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

    /// How often a chunk whose worker crashed is run (default
    /// [`Retry::default`]: three runs in all).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{MapOptions, Retry};
    /// let strict = MapOptions::new().retry(Retry::never());
    /// # let _ = strict;
    /// ```
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// What to do if the caller has other threads when the workers are
    /// forked (default [`ThreadPolicy::default`]); see "Fork safety" in the
    /// [module docs](super).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{MapOptions, ThreadPolicy, map};
    /// let o = MapOptions::new().workers(1).threads(ThreadPolicy::Refuse);
    /// // This doc test is single-threaded, so nothing is refused.
    /// assert_eq!(map(&[1, 2], |x| x * 10, &o)?, [10, 20]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn threads(mut self, policy: ThreadPolicy) -> Self {
        self.threads = policy;
        self
    }

    /// What the rounds of a call need of these options.
    fn config(&self) -> Config {
        Config {
            workers: self.worker_count(),
            task_timeout: self.task_timeout,
            retry: self.retry,
            threads: self.threads,
        }
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

/// Maps `f` over `inputs` in worker processes; results come back serialized
/// through each worker's socket, in input order.
///
/// `f` and `inputs` reach the workers through `fork` (copy-on-write), so they
/// need no serialization. Each worker has its own copy of them, as a thread
/// could be given one: they are `Send`, which keeps lock guards and permits
/// out of them (a worker that released its copy would release the caller's
/// claim; see [`fork`](crate::fork#what-the-child-is-given)), and a worker
/// never drops them. Use [`map_plain`] when `O` is plain data: it skips
/// serialization on the way back too.
///
/// # Fork safety
///
/// The workers are forks of the caller. If the caller has other threads,
/// [`MapOptions::threads`] decides what happens; by default a worker stuck on
/// a lock one of them held is killed within seconds and the call fails with
/// [`Failure::Stalled`](super::Failure::Stalled). Printing and allocating are
/// always safe in `f`. See the [module docs](super).
///
/// # Errors
///
/// [`MapError`]: a chunk that failed on every run (with the worker's
/// [`Failure`](super::Failure), and the results that did complete), bad
/// options, a refusal by the thread policy, or an OS refusal.
///
/// # Example
///
/// ```
/// use ply_os::process::{MapOptions, map};
/// let words = ["fork", "join", "map"];
/// let upper = map(&words, |w| w.to_uppercase(), &MapOptions::new().workers(2))?;
/// assert_eq!(upper, ["FORK", "JOIN", "MAP"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn map<I, O, F>(
    inputs: &[I],
    f: F,
    options: &MapOptions,
) -> Result<Vec<O>, MapError<Vec<Option<O>>>>
where
    I: Send,
    F: Fn(&I) -> O + Send,
    O: Serialize + DeserializeOwned,
{
    let schedule = options
        .chunking
        .schedule(inputs.len(), options.worker_count());
    let body = |range: Range<usize>, beat: run::Heartbeat<'_>| {
        let mut results: Vec<O> = Vec::with_capacity(range.len());
        // No output slots here (results go into a Vec): pages are counted
        // in inputs alone.
        for_each_prefetched::<I, ()>(range, inputs, None, |i| {
            beat.at(i);
            results.push(f(&inputs[i]));
        });
        results
    };
    // A report with the wrong number of results is the worker's corrupt
    // message: it is killed for it, and the chunk fails with
    // `Failure::Corrupt`. So every report taken has its chunk's length.
    let check = |_: usize, items: Range<usize>, part: &Vec<O>| {
        if part.len() == items.len() {
            Ok(())
        } else {
            Err(format!("{} results for {} items", part.len(), items.len()))
        }
    };
    let by_chunk = |reports: Vec<Option<Vec<O>>>| {
        let mut out: Vec<Option<O>> = Vec::with_capacity(inputs.len());
        for (chunk, report) in reports.into_iter().enumerate() {
            match report {
                Some(part) => out.extend(part.into_iter().map(Some)),
                None => {
                    let items = ply_core::partition::Schedule::chunk(&schedule, chunk);
                    out.extend(items.map(|_| None));
                }
            }
        }
        out
    };
    match run_chunks::<_, Vec<O>>(
        &schedule,
        &options.config(),
        &|_, range, beat| body(range, beat),
        &check,
    ) {
        // Every chunk reported, each with its chunk's length: in chunk
        // order, they are the output.
        Ok(reports) => Ok(reports.into_iter().flatten().flatten().collect()),
        Err((error, reports)) => Err(error.map_completed(|()| by_chunk(reports))),
    }
}

/// A slot of shared memory written by one worker at a time.
#[repr(transparent)]
struct ResultSlot<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY: each slot is written only by the worker that holds its chunk (the
// dispenser hands a chunk to one worker at a time; a re-issued chunk goes out
// only after its previous holder is dead and reaped), and read by the parent
// only for chunks reported complete, after every worker has exited.
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
/// # Fork safety
///
/// As for [`map`].
///
/// # Errors
///
/// As [`map`]; the completed results are copied out of shared memory.
///
/// # Example
///
/// ```
/// use ply_os::process::{MapOptions, map_plain};
/// let inputs: Vec<u64> = (0..10_000).collect();
/// let squares = map_plain(&inputs, |&x| x * x, &MapOptions::new().workers(2))?;
/// assert_eq!(squares[9_999], 9_999 * 9_999);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn map_plain<I, O, F>(
    inputs: &[I],
    f: F,
    options: &MapOptions,
) -> Result<SharedResults<O>, MapError<Vec<Option<O>>>>
where
    I: Send,
    F: Fn(&I) -> O + Send,
    O: ShmSafe + Copy,
{
    let region = Region::take::<O>(inputs.len())?;
    let slots = region.as_ptr().cast::<O>();
    let schedule = options
        .chunking
        .schedule(inputs.len(), options.worker_count());
    let body = |_, range: Range<usize>, beat: run::Heartbeat<'_>| {
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
    };
    let outcome = run_chunks::<(), ()>(&schedule, &options.config(), &body, &run::no_check);
    match outcome {
        // SAFETY: every chunk was reported complete, so every slot `0..len`
        // was written, and every worker has been reaped.
        Ok(_) => Ok(unsafe { SharedResults::new(region, inputs.len()) }),
        Err((error, reports)) => Err(error.map_completed(|()| {
            let mut out = vec![None; inputs.len()];
            for (chunk, report) in reports.iter().enumerate() {
                if report.is_some() {
                    for i in ply_core::partition::Schedule::chunk(&schedule, chunk) {
                        // SAFETY: the chunk was reported complete, so its
                        // slots were written, and no worker is alive.
                        out[i] = Some(unsafe { slots.add(i).read() });
                    }
                }
            }
            out
        })),
    }
}

/// Folds `map(i)` for every `i` in `range` with `combine`, in worker processes:
/// each chunk's partial result is written to shared memory, and the parent
/// combines the partials in chunk order (so `combine` need only be
/// associative). `identity` must be a neutral element of `combine`.
///
/// The partials live in shared memory, so `T` is [`ShmSafe`] and `Copy`, as
/// [`map_plain`]'s results are.
///
/// # Fork safety
///
/// As for [`map`].
///
/// # Errors
///
/// As [`map`]; the completed results are the finished chunks' items and
/// partial results.
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[allow(clippy::type_complexity)]
pub fn reduce<T, M, C>(
    range: Range<usize>,
    options: &MapOptions,
    identity: T,
    map: M,
    combine: C,
) -> Result<T, MapError<Vec<(Range<usize>, T)>>>
where
    T: ShmSafe + Copy,
    M: Fn(usize) -> T + Send,
    C: Fn(T, T) -> T + Send,
{
    let len = range.len();
    let schedule = options.chunking.schedule(len, options.worker_count());
    let chunks = ply_core::partition::Schedule::chunks(&schedule);
    let partials = SharedSlice::new(chunks, |_| {
        ResultSlot::<T>(UnsafeCell::new(MaybeUninit::uninit()))
    })?;
    let start = range.start;
    let body = |chunk: usize, items: Range<usize>, beat: run::Heartbeat<'_>| {
        let mut acc = identity;
        for i in items {
            beat.at(i);
            acc = combine(acc, map(start + i));
        }
        // SAFETY: one writer per chunk (see `ResultSlot`), read after exit.
        unsafe { (*partials[chunk].0.get()).write(acc) };
    };
    let outcome = run_chunks::<(), ()>(&schedule, &options.config(), &body, &run::no_check);
    match outcome {
        Ok(_) => Ok(partials
            .iter()
            // SAFETY: every chunk was reported complete, so every partial
            // was written, and every worker has been reaped.
            .map(|slot| unsafe { (*slot.0.get()).assume_init() })
            .fold(identity, &combine)),
        Err((error, reports)) => Err(error.shift_items(start).map_completed(|()| {
            reports
                .iter()
                .enumerate()
                .filter(|(_, r)| r.is_some())
                .map(|(c, _)| {
                    let items = ply_core::partition::Schedule::chunk(&schedule, c);
                    // SAFETY: chunk `c` was reported complete, so its
                    // partial was written, and every worker has been reaped.
                    let value = unsafe { (*partials[c].0.get()).assume_init() };
                    (items.start + start..items.end + start, value)
                })
                .collect()
        })),
    }
}
