//! [`ChunkDispenser`]: hand out chunks to whoever asks next.
//!
//! # Algorithm
//!
//! Dynamic self-scheduling with one shared counter: a worker claims the next
//! chunk *index* with one `fetch_add` and maps it to a range through the
//! [`Schedule`] (which every worker computes for itself). The counter cannot be
//! left half-updated by a worker that dies — a `fetch_add` either happened or
//! did not — which is why the process map (in ply-os) uses it to hand out
//! work: a crashed worker cannot corrupt the hand-out.
//!
//! Each worker also records the chunk it holds in its own slot, so a supervisor
//! that sees a worker die can [`reclaim`](ChunkDispenser::reclaim) that chunk; the
//! next [`claim`](ChunkDispenser::claim) by any worker gets it before new ones.
//! A worker killed in the instant between its `fetch_add` and recording the
//! index loses that one chunk's claim without a trace here; callers that must
//! never lose a chunk should also track completion per chunk (for example
//! through the results they collect) and re-issue what is missing.
//!
//! # Storage
//!
//! The per-worker slots live in a [`WorkerSlots`] storage, as a queue's items
//! live in its [`Slots`](crate::queue::storage::Slots): the algorithm below is
//! written once, over [`DispenserBase<S>`], and instantiated for
//! [`InlineWorkers<W>`] ([`ChunkDispenser<W>`], a worker count fixed at
//! compile time) and [`BorrowedWorkers`] ([`SliceDispenser`], a count chosen
//! at run time, in a buffer the caller provides). ply's C ABI has a third
//! storage of its own, in C-owned memory.
//!
//! # Across processes
//!
//! Counters and slots only, no pointers: a [`ChunkDispenser`] works in
//! `MAP_SHARED` memory. That is its main use: the workers of a forked map share
//! one dispenser.

use core::ops::Range;

use crossbeam_utils::CachePadded;

use super::Schedule;
use crate::primitive::{AtomicUsize, Ordering};

mod storage;

#[cfg(not(loom))]
pub use storage::{BorrowedWorkers, WorkerSlot};
pub use storage::{InlineWorkers, WorkerSlots};

/// Slot value meaning "no chunk".
const NONE: usize = 0;

/// A chunk handed to a worker by [`ChunkDispenser::claim`].
///
/// # Example
///
/// ```
/// use ply_core::partition::{ChunkDispenser, Fixed};
///
/// let d = ChunkDispenser::<2>::new();
/// let claim = d.claim(0, &Fixed::new(10, 4).unwrap()).unwrap();
/// assert_eq!((claim.index, claim.range), (0, 0..4));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The chunk's index in the schedule.
    pub index: usize,
    /// The items it covers.
    pub range: Range<usize>,
}

/// Hands chunk indices to up to `W` workers (ids `0..W`), one `fetch_add` each:
/// the [`DispenserBase`] over `W` inline worker slots.
///
/// Worker ids index the dispenser's per-worker slots as a slice is indexed:
/// every method that takes one panics if it is `W` or more (a bug in the
/// caller's numbering, not a condition to handle), and returns plain values.
///
/// # Example
///
/// Four threads sum `0..1000` in chunks of 64, each taking the next free chunk:
///
/// ```
/// use core::sync::atomic::{AtomicU64, Ordering};
/// use ply_core::partition::{ChunkDispenser, Fixed};
///
/// let schedule = Fixed::new(1000, 64).unwrap();
/// let dispenser = ChunkDispenser::<4>::new();
/// let sum = AtomicU64::new(0);
/// std::thread::scope(|s| {
///     for worker in 0..4 {
///         let (dispenser, sum) = (&dispenser, &sum);
///         s.spawn(move || {
///             while let Some(claim) = dispenser.claim(worker, &schedule) {
///                 let part: u64 = claim.range.map(|i| i as u64).sum();
///                 sum.fetch_add(part, Ordering::Relaxed);
///                 dispenser.complete(worker);
///             }
///         });
///     }
/// });
/// assert_eq!(sum.into_inner(), 999 * 1000 / 2);
/// ```
pub type ChunkDispenser<const W: usize> = DispenserBase<InlineWorkers<W>>;

/// A [`ChunkDispenser`] whose worker count is chosen at run time: its slots
/// are a buffer the caller provides, one [`WorkerSlot`] per worker. The same
/// algorithm and guarantees.
///
/// # Example
///
/// ```
/// use ply_core::partition::{Fixed, SliceDispenser, WorkerSlot};
///
/// let workers = 3; // known only at run time
/// let mut slots: Vec<WorkerSlot> = (0..workers).map(|_| WorkerSlot::new()).collect();
/// let d = SliceDispenser::over(&mut slots);
/// assert_eq!(d.workers(), 3);
/// let claim = d.claim(2, &Fixed::new(10, 4).unwrap()).unwrap();
/// assert_eq!(claim.range, 0..4);
/// ```
#[cfg(not(loom))]
pub type SliceDispenser<'a> = DispenserBase<BorrowedWorkers<'a>>;

/// The chunk dispenser, generic over where its per-worker slots live
/// ([`WorkerSlots`]). See [`ChunkDispenser`] for how to use it; everything
/// there holds for every storage.
///
/// # Example
///
/// ```
/// use ply_core::partition::{DispenserBase, InlineWorkers};
///
/// let d = DispenserBase::<InlineWorkers<2>>::new(); // = ChunkDispenser<2>
/// assert_eq!(d.workers(), 2);
/// ```
#[derive(Debug)]
pub struct DispenserBase<S: WorkerSlots> {
    /// The next never-issued chunk index.
    next: CachePadded<AtomicUsize>,
    /// Chunks given back by [`reclaim`](Self::reclaim), waiting to be re-issued.
    pending: CachePadded<AtomicUsize>,
    /// Per worker: the chunk it holds (`held`), and a re-issue slot
    /// (`returned`), each `index + 1` or `NONE`.
    slots: S,
}

impl<const W: usize> ChunkDispenser<W> {
    /// A dispenser at chunk 0, tracking workers `0..W`.
    ///
    /// # Example
    ///
    /// ```
    /// static D: ply_core::partition::ChunkDispenser<8> = ply_core::partition::ChunkDispenser::new();
    /// assert_eq!(D.issued(), 0);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        DispenserBase {
            next: CachePadded::new(AtomicUsize::new(0)),
            pending: CachePadded::new(AtomicUsize::new(0)),
            slots: InlineWorkers::new(),
        }
    }

    /// A dispenser at chunk 0 (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        DispenserBase {
            next: CachePadded::new(AtomicUsize::new(0)),
            pending: CachePadded::new(AtomicUsize::new(0)),
            slots: InlineWorkers::new(),
        }
    }
}

#[cfg(not(loom))]
impl<'a> SliceDispenser<'a> {
    /// A dispenser at chunk 0 over `slots`, tracking workers
    /// `0..slots.len()` (the slots' old contents are overwritten).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{SliceDispenser, WorkerSlot};
    ///
    /// let mut slots = [WorkerSlot::new(), WorkerSlot::new()];
    /// assert_eq!(SliceDispenser::over(&mut slots).workers(), 2);
    /// ```
    pub fn over(slots: &'a mut [WorkerSlot]) -> Self {
        Self::with_slots(BorrowedWorkers::new(slots))
    }
}

impl<S: WorkerSlots> DispenserBase<S> {
    /// A dispenser at chunk 0 over `slots`, which it resets (no worker holds a
    /// chunk, none waits to be re-issued). This is how storage made outside
    /// ply-core (such as the C ABI's) gets a dispenser;
    /// [`ChunkDispenser::new`] and [`SliceDispenser::over`] are the usual
    /// ways in.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{DispenserBase, InlineWorkers};
    ///
    /// let d = DispenserBase::with_slots(InlineWorkers::<4>::new());
    /// assert_eq!(d.workers(), 4);
    /// ```
    pub fn with_slots(slots: S) -> Self {
        for worker in 0..slots.workers() {
            slots.held(worker).store(NONE, Ordering::Relaxed);
            slots.returned(worker).store(NONE, Ordering::Relaxed);
        }
        DispenserBase {
            next: CachePadded::new(AtomicUsize::new(0)),
            pending: CachePadded::new(AtomicUsize::new(0)),
            slots,
        }
    }

    /// The number of workers it tracks (ids `0..workers()`).
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_core::partition::ChunkDispenser::<5>::new().workers(), 5);
    /// ```
    #[inline]
    pub fn workers(&self) -> usize {
        self.slots.workers()
    }

    /// The per-worker slots (for storage types that must reach their own
    /// fields once the dispenser is in place, such as the C ABI's).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{ChunkDispenser, WorkerSlots};
    /// assert_eq!(ChunkDispenser::<3>::new().slots().workers(), 3);
    /// ```
    pub fn slots(&self) -> &S {
        &self.slots
    }

    /// `worker`'s held-chunk slot, with slice indexing's panic made clearer.
    #[inline]
    #[track_caller]
    fn held(&self, worker: usize) -> &AtomicUsize {
        let workers = self.slots.workers();
        if worker >= workers {
            worker_out_of_range(worker, workers);
        }
        self.slots.held(worker)
    }

    /// Claims the next chunk of `schedule` for `worker`: a re-issued chunk if
    /// there is one, else the next new one; `Ok(None)` when all are handed out.
    ///
    /// The claim is recorded as `worker`'s until [`complete`](Self::complete) or
    /// the next claim.
    ///
    /// # Panics
    ///
    /// If `worker >= workers()` (`W`, for a `ChunkDispenser<W>`).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{ChunkDispenser, Even};
    ///
    /// let d = ChunkDispenser::<1>::new();
    /// let s = Even::new(10, 2).unwrap();
    /// assert_eq!(d.claim(0, &s).unwrap().range, 0..5);
    /// assert_eq!(d.claim(0, &s).unwrap().range, 5..10);
    /// assert_eq!(d.claim(0, &s), None);
    /// ```
    ///
    /// A worker id past the capacity is a bug, and panics:
    ///
    /// ```should_panic
    /// # use ply_core::partition::{ChunkDispenser, Even};
    /// let d = ChunkDispenser::<1>::new();
    /// let _ = d.claim(1, &Even::new(10, 2).unwrap()); // panics: worker 1 of 0..1
    /// ```
    #[track_caller]
    #[must_use = "a claimed chunk stays held by this worker until it completes or claims again"]
    pub fn claim<P: Schedule>(&self, worker: usize, schedule: &P) -> Option<Claim> {
        let held = self.held(worker);
        let index = match self.take_returned() {
            Some(index) => index,
            None => match self.take_next(schedule.chunks()) {
                Some(index) => index,
                None => {
                    held.store(NONE, Ordering::Release);
                    return None;
                }
            },
        };
        // Release: a supervisor that reads the slot (after this worker died) sees
        // a value this worker really claimed.
        held.store(index + 1, Ordering::Release);
        Some(Claim {
            index,
            range: schedule.chunk(index),
        })
    }

    /// Takes a chunk given back by `reclaim`, if any.
    /// The next new chunk index below `chunks`, if any is left.
    fn take_next(&self, chunks: usize) -> Option<usize> {
        if chunks <= usize::MAX / 2 {
            // Relaxed: the RMW alone makes each index unique; the chunk's
            // items are the caller's business.
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= chunks {
                // Exhausted. Take the increment back, so callers that keep
                // polling cannot walk the counter round (on 32-bit targets)
                // and be handed chunk 0 again. Between the two steps the
                // counter is past `chunks` by at most one per claimer in
                // flight, far from wrapping while `chunks` is in the lower
                // half of the range.
                self.next.fetch_sub(1, Ordering::Relaxed);
                return None;
            }
            return Some(index);
        }
        // A schedule with more chunks than half the range (possible on 32-bit
        // targets): a step past the end could wrap the counter round to 0
        // before it is taken back, and a claim in between would be handed
        // chunk 0 again. Here the counter only moves while it is below
        // `chunks`, by a compare-and-swap (Relaxed, as above).
        let mut index = self.next.load(Ordering::Relaxed);
        loop {
            if index >= chunks {
                return None;
            }
            match self.next.compare_exchange_weak(
                index,
                index + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(index),
                Err(current) => index = current,
            }
        }
    }

    fn take_returned(&self) -> Option<usize> {
        if self.pending.load(Ordering::Acquire) == 0 {
            return None;
        }
        for worker in 0..self.slots.workers() {
            // Acquire: pairs with the Release in `reclaim`.
            let value = self.slots.returned(worker).swap(NONE, Ordering::AcqRel);
            if value != NONE {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                return Some(value - 1);
            }
        }
        None
    }

    /// Marks `worker`'s current chunk as done (it will not be reclaimed).
    ///
    /// # Panics
    ///
    /// If `worker >= workers()` (`W`, for a `ChunkDispenser<W>`).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{ChunkDispenser, Fixed};
    ///
    /// let d = ChunkDispenser::<1>::new();
    /// assert!(d.claim(0, &Fixed::new(4, 2).unwrap()).is_some());
    /// d.complete(0);
    /// assert_eq!(d.held_by(0), None);
    /// ```
    #[track_caller]
    pub fn complete(&self, worker: usize) {
        self.held(worker).store(NONE, Ordering::Release);
    }

    /// The chunk `worker` holds now, if any.
    ///
    /// # Panics
    ///
    /// If `worker >= workers()` (`W`, for a `ChunkDispenser<W>`).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{ChunkDispenser, Fixed};
    ///
    /// let d = ChunkDispenser::<2>::new();
    /// assert!(d.claim(1, &Fixed::new(4, 2).unwrap()).is_some());
    /// assert_eq!(d.held_by(1), Some(0));
    /// ```
    #[track_caller]
    pub fn held_by(&self, worker: usize) -> Option<usize> {
        let value = self.held(worker).load(Ordering::Acquire);
        (value != NONE).then(|| value - 1)
    }

    /// For a supervisor, after `worker` died: takes its chunk (if it held one)
    /// and queues it so the next [`claim`](Self::claim) by anyone gets it.
    /// Returns the chunk index re-queued.
    ///
    /// Call it only for a worker that is dead (or otherwise will never
    /// [`complete`](Self::complete) its chunk), or the chunk is done twice.
    ///
    /// # Panics
    ///
    /// If `worker >= workers()` (`W`, for a `ChunkDispenser<W>`).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{ChunkDispenser, Fixed};
    ///
    /// let s = Fixed::new(6, 2).unwrap();
    /// let d = ChunkDispenser::<2>::new();
    /// assert!(d.claim(0, &s).is_some()); // worker 0 takes chunk 0 ... and dies
    /// assert_eq!(d.reclaim(0), Some(0));
    /// assert_eq!(d.claim(1, &s).unwrap().index, 0); // re-issued first
    /// assert_eq!(d.claim(1, &s).unwrap().index, 1);
    /// ```
    #[track_caller]
    pub fn reclaim(&self, worker: usize) -> Option<usize> {
        let held = self.held(worker);
        let value = held.swap(NONE, Ordering::AcqRel);
        if value == NONE {
            return None;
        }
        // Count it before publishing it, so a taker (which decrements only after
        // finding it) never drives `pending` below zero.
        self.pending.fetch_add(1, Ordering::AcqRel);
        // A free re-issue slot exists: at most one outstanding chunk per worker,
        // and a slot per worker. Prefer the dead worker's own slot.
        let workers = self.slots.workers();
        for offset in 0..workers {
            let slot = self.slots.returned((worker + offset) % workers);
            // Release: pairs with the Acquire swap in `take_returned`.
            if slot
                .compare_exchange(NONE, value, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Some(value - 1);
            }
        }
        // Every slot busy: can only happen if `reclaim` is called for live
        // workers. Put the claim back rather than lose it.
        self.pending.fetch_sub(1, Ordering::AcqRel);
        held.store(value, Ordering::Release);
        None
    }

    /// Chunk indices issued so far (for progress reports; may exceed the
    /// schedule's chunk count once it is exhausted).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{ChunkDispenser, Fixed};
    /// let d = ChunkDispenser::<1>::new();
    /// assert!(d.claim(0, &Fixed::new(4, 2).unwrap()).is_some());
    /// assert_eq!(d.issued(), 1);
    /// ```
    pub fn issued(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }
}

/// The panic of a worker id out of range, kept out of line: formatting its
/// message inside `claim` made the claim too big to inline, and twice as slow
/// (18 ns against 9 ns per claim on one thread, `benches/partition.rs`).
#[cold]
#[inline(never)]
#[track_caller]
fn worker_out_of_range(worker: usize, capacity: usize) -> ! {
    panic!(
        "worker {worker} is out of range: this dispenser tracks workers 0 to {}",
        capacity.saturating_sub(1)
    )
}

#[cfg(not(loom))]
impl<const W: usize> Default for ChunkDispenser<W> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
