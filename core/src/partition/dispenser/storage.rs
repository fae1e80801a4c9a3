//! Where a [`DispenserBase`](super::DispenserBase) keeps its per-worker slots:
//! inline, for a worker count fixed at compile time, or in a buffer the caller
//! provides, for a count chosen at run time.
//!
//! Each worker has two words: `held`, the chunk it holds, which it writes on
//! every claim (so workers' `held` words must not share a cache line), and
//! `returned`, a re-issue slot, touched only after a
//! [`reclaim`](super::DispenserBase::reclaim). [`InlineWorkers`] pads every
//! `held` word and packs the `returned` words together; a [`WorkerSlot`] (of
//! [`BorrowedWorkers`]) is one cache line holding both of a worker's words, so
//! a buffer of them has one element per worker.

use crossbeam_utils::CachePadded;

use crate::primitive::AtomicUsize;

/// The per-worker slots of a [`DispenserBase`](super::DispenserBase).
///
/// # Safety
///
/// [`workers`](WorkerSlots::workers) must return the same value every time, and
/// for each `w` below it, [`held`](WorkerSlots::held) and
/// [`returned`](WorkerSlots::returned) must return the same atomic word every
/// time, distinct from each other and from every other worker's.
///
/// # Example
///
/// ```
/// use ply_core::partition::{InlineWorkers, WorkerSlots};
/// assert_eq!(InlineWorkers::<3>::new().workers(), 3);
/// ```
pub unsafe trait WorkerSlots {
    /// The number of workers (ids `0..workers()`).
    fn workers(&self) -> usize;

    /// Worker `w`'s held-chunk word (`w < workers()`).
    fn held(&self, w: usize) -> &AtomicUsize;

    /// Worker `w`'s re-issue word (`w < workers()`).
    fn returned(&self, w: usize) -> &AtomicUsize;
}

/// The slots of `W` workers, inline: the storage of
/// [`ChunkDispenser<W>`](super::ChunkDispenser).
///
/// # Example
///
/// ```
/// use ply_core::partition::{DispenserBase, InlineWorkers};
/// let d = DispenserBase::<InlineWorkers<2>>::new(); // = ChunkDispenser<2>
/// assert_eq!(d.workers(), 2);
/// ```
#[derive(Debug)]
pub struct InlineWorkers<const W: usize> {
    /// Each on its own cache line: workers write their slot on every claim.
    held: [CachePadded<AtomicUsize>; W],
    /// At most one outstanding re-issue per worker.
    returned: [AtomicUsize; W],
}

impl<const W: usize> InlineWorkers<W> {
    /// Slots for `W` workers, none holding a chunk.
    ///
    /// # Example
    ///
    /// ```
    /// let slots = ply_core::partition::InlineWorkers::<4>::new();
    /// # let _ = slots;
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        InlineWorkers {
            held: [const { CachePadded::new(AtomicUsize::new(super::NONE)) }; W],
            returned: [const { AtomicUsize::new(super::NONE) }; W],
        }
    }

    /// Slots for `W` workers (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        InlineWorkers {
            held: core::array::from_fn(|_| CachePadded::new(AtomicUsize::new(super::NONE))),
            returned: core::array::from_fn(|_| AtomicUsize::new(super::NONE)),
        }
    }
}

#[cfg(not(loom))]
impl<const W: usize> Default for InlineWorkers<W> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: `W` is fixed; worker `w < W` has its own element of each array.
unsafe impl<const W: usize> WorkerSlots for InlineWorkers<W> {
    #[inline(always)]
    fn workers(&self) -> usize {
        W
    }

    #[inline(always)]
    fn held(&self, w: usize) -> &AtomicUsize {
        &self.held[w]
    }

    #[inline(always)]
    fn returned(&self, w: usize) -> &AtomicUsize {
        &self.returned[w]
    }
}

/// One worker's two words, on a cache line of their own: the element of a
/// [`SliceDispenser`](super::SliceDispenser)'s buffer.
///
/// # Example
///
/// ```
/// use ply_core::partition::WorkerSlot;
/// let slots: Vec<WorkerSlot> = (0..8).map(|_| WorkerSlot::new()).collect();
/// assert_eq!(slots.len(), 8);
/// ```
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub struct WorkerSlot(CachePadded<[AtomicUsize; 2]>);

#[cfg(not(loom))]
impl WorkerSlot {
    /// A slot holding no chunk (a dispenser resets its slots anyway).
    ///
    /// # Example
    ///
    /// ```
    /// let slots = [const { ply_core::partition::WorkerSlot::new() }; 4];
    /// # let _ = slots;
    /// ```
    pub const fn new() -> Self {
        WorkerSlot(CachePadded::new([
            AtomicUsize::new(super::NONE),
            AtomicUsize::new(super::NONE),
        ]))
    }
}

/// The slots of `slots.len()` workers in a buffer the caller owns, borrowed for
/// `'a`: the storage of [`SliceDispenser`](super::SliceDispenser).
///
/// # Example
///
/// ```
/// use ply_core::partition::{BorrowedWorkers, WorkerSlot, WorkerSlots};
///
/// let mut slots = [WorkerSlot::new(), WorkerSlot::new()];
/// assert_eq!(BorrowedWorkers::new(&mut slots).workers(), 2);
/// ```
#[cfg(not(loom))]
#[derive(Debug)]
pub struct BorrowedWorkers<'a>(&'a [WorkerSlot]);

#[cfg(not(loom))]
impl<'a> BorrowedWorkers<'a> {
    /// Borrows `slots`, one per worker. Mutably, so no other dispenser can
    /// share them while this one lives.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{BorrowedWorkers, WorkerSlot};
    /// let mut slots = [WorkerSlot::new()];
    /// let workers = BorrowedWorkers::new(&mut slots);
    /// # let _ = workers;
    /// ```
    pub fn new(slots: &'a mut [WorkerSlot]) -> Self {
        BorrowedWorkers(slots)
    }
}

// SAFETY: the length of the borrowed slice is fixed; worker `w` has element
// `w`, whose two words are distinct.
#[cfg(not(loom))]
unsafe impl WorkerSlots for BorrowedWorkers<'_> {
    #[inline(always)]
    fn workers(&self) -> usize {
        self.0.len()
    }

    #[inline(always)]
    fn held(&self, w: usize) -> &AtomicUsize {
        &self.0[w].0[0]
    }

    #[inline(always)]
    fn returned(&self, w: usize) -> &AtomicUsize {
        &self.0[w].0[1]
    }
}
