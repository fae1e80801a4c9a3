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
//! # Across processes
//!
//! Counters and slots only, no pointers: works in `MAP_SHARED` memory. That is
//! its main use: the workers of a forked map share one dispenser.

use core::ops::Range;

use crossbeam_utils::CachePadded;

use super::Schedule;
use crate::primitive::{AtomicUsize, Ordering};

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

/// Hands chunk indices to up to `W` workers (ids `0..W`), one `fetch_add` each.
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
#[derive(Debug)]
pub struct ChunkDispenser<const W: usize> {
    /// The next never-issued chunk index.
    next: CachePadded<AtomicUsize>,
    /// Chunks given back by [`reclaim`](Self::reclaim), waiting to be re-issued.
    pending: CachePadded<AtomicUsize>,
    /// Per worker: the chunk it holds, as `index + 1`, or `NONE`. Each on its
    /// own cache line: workers write their slot on every claim.
    held: [CachePadded<AtomicUsize>; W],
    /// Re-issue slots (at most one per worker can be outstanding): `index + 1`
    /// or `NONE`.
    returned: [AtomicUsize; W],
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
        ChunkDispenser {
            next: CachePadded::new(AtomicUsize::new(0)),
            pending: CachePadded::new(AtomicUsize::new(0)),
            held: [const { CachePadded::new(AtomicUsize::new(NONE)) }; W],
            returned: [const { AtomicUsize::new(NONE) }; W],
        }
    }

    /// A dispenser at chunk 0 (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        ChunkDispenser {
            next: CachePadded::new(AtomicUsize::new(0)),
            pending: CachePadded::new(AtomicUsize::new(0)),
            held: core::array::from_fn(|_| CachePadded::new(AtomicUsize::new(NONE))),
            returned: core::array::from_fn(|_| AtomicUsize::new(NONE)),
        }
    }

    /// `worker`'s slot of `slots`, with slice indexing's panic made clearer.
    #[inline]
    #[track_caller]
    fn slot<T>(slots: &[T; W], worker: usize) -> &T {
        if worker >= W {
            worker_out_of_range(worker, W);
        }
        &slots[worker]
    }

    /// Claims the next chunk of `schedule` for `worker`: a re-issued chunk if
    /// there is one, else the next new one; `Ok(None)` when all are handed out.
    ///
    /// The claim is recorded as `worker`'s until [`complete`](Self::complete) or
    /// the next claim.
    ///
    /// # Panics
    ///
    /// If `worker >= W`.
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
    pub fn claim<S: Schedule>(&self, worker: usize, schedule: &S) -> Option<Claim> {
        let held = Self::slot(&self.held, worker);
        let index = match self.take_returned() {
            Some(index) => index,
            None => {
                let chunks = schedule.chunks();
                // Relaxed: the RMW alone makes each index unique; the chunk's
                // items are the caller's business.
                let index = self.next.fetch_add(1, Ordering::Relaxed);
                if index >= chunks {
                    // Exhausted. Take the increment back, so callers that keep
                    // polling cannot walk the counter round (on 32-bit targets)
                    // and be handed chunk 0 again.
                    self.next.fetch_sub(1, Ordering::Relaxed);
                    held.store(NONE, Ordering::Release);
                    return None;
                }
                index
            }
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
    fn take_returned(&self) -> Option<usize> {
        if self.pending.load(Ordering::Acquire) == 0 {
            return None;
        }
        for slot in &self.returned {
            // Acquire: pairs with the Release in `reclaim`.
            let value = slot.swap(NONE, Ordering::AcqRel);
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
    /// If `worker >= W`.
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
        Self::slot(&self.held, worker).store(NONE, Ordering::Release);
    }

    /// The chunk `worker` holds now, if any.
    ///
    /// # Panics
    ///
    /// If `worker >= W`.
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
        let value = Self::slot(&self.held, worker).load(Ordering::Acquire);
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
    /// If `worker >= W`.
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
        let held = Self::slot(&self.held, worker);
        let value = held.swap(NONE, Ordering::AcqRel);
        if value == NONE {
            return None;
        }
        // Count it before publishing it, so a taker (which decrements only after
        // finding it) never drives `pending` below zero.
        self.pending.fetch_add(1, Ordering::AcqRel);
        // A free re-issue slot exists: at most one outstanding chunk per worker,
        // and `W` slots. Prefer the dead worker's own slot.
        for offset in 0..W {
            let slot = &self.returned[(worker + offset) % W];
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
