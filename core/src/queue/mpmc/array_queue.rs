//! [`ArrayQueue`]: the per-slot-stamp bounded MPMC queue.
//!
//! # Algorithm
//!
//! D. Vyukov's bounded MPMC queue ("Bounded MPMC queue", 1024cores.net, 2010), in
//! the lap-and-index layout of crossbeam's `ArrayQueue` so it is correct for every
//! capacity `N ≥ 1`, not only powers of two.
//!
//! `head` and `tail` are positions packed as `lap | index`, where `index < N` and
//! `lap` is a multiple of `ONE_LAP = (N + 1).next_power_of_two()`. Stepping past
//! the last index jumps to index 0 of the next lap; the lap part wraps around
//! `usize` and everything compares with equality, which is harmless unless a
//! participant stalls between reading a position and its claiming CAS while
//! the others go once round the whole range (2^32 operations on 32-bit
//! targets, as in crossbeam's queue): that CAS would then claim a position of
//! another lap. Each slot carries a *stamp* that says what the slot is waiting
//! for:
//!
//! | slot stamp | meaning |
//! |---|---|
//! | `lap \| i` (equal to the tail that would push here) | empty, ready for the push of that lap |
//! | `(lap \| i) + 1` (equal to the head that would pop here, plus one) | full, ready for the pop of that lap |
//! | `(lap \| i) + ONE_LAP` (set by that pop) | empty again, ready for the push of the next lap |
//!
//! A push reads `tail`, checks the stamp of its slot, claims the position with a
//! compare-and-swap on `tail`, writes the value, and publishes it by storing
//! `tail + 1` into the stamp. A pop mirrors this on `head`. Claims and
//! publications are separate steps, so many producers and consumers work on
//! different slots at once.
//!
//! **Why heapless's version failed for some N.** Masking positions with `N - 1`
//! only works for powers of two; with other sizes, indices and stamps drift apart
//! and operations loop forever or panic. The lap/index split above never masks
//! with `N`, so every `N` works (tests cover 1 through 17 and odd sizes).
//!
//! # "Empty" means empty: waiting for an operation in flight
//!
//! A claim and its publication are separate steps, so a pop can find the head
//! slot claimed by a push that has not yet written its item (the queue is *not*
//! empty: that item is in it), and a push can find its slot still being read
//! by a pop that claimed it (the queue is *not* full). The queue offers both
//! answers to that situation, under different names:
//!
//! | | [`pop`](ArrayQueue::pop) / [`push`](ArrayQueue::push) | [`try_pop`](ArrayQueue::try_pop) / [`try_push`](ArrayQueue::try_push) |
//! |---|---|---|
//! | operation in flight at the slot | waits for it (spin, then yield to the OS) | returns at once with `Busy` |
//! | `None` / `Err(full)` means | empty / full at an instant during the call (linearizable) | `Empty`/`Full`: the same; `Busy`: neither |
//! | a participant stalls mid-operation | this call waits until it resumes | this call returns; the queue is stuck at that slot until it resumes |
//!
//! `pop` returning `None` is therefore a safe "drained" signal for a shutdown
//! loop, as in crossbeam's `ArrayQueue` (whose algorithm this is). The wait is
//! for the two stores that finish the other party's operation: brief between
//! threads, where a preempted thread is soon rescheduled (the wait yields to
//! the OS so it can be). A participant that is *stopped* mid-operation
//! (`SIGSTOP`, a debugger) or *killed* (a process sharing the queue) makes
//! `pop`/`push` wait as long as it is stopped, or for good. Callers that must
//! stay live then pick [`pop_with`](ArrayQueue::pop_with) /
//! [`push_with`](ArrayQueue::push_with) with a [`Patience`] (which answer `Busy`
//! when it runs out) or the never-waiting `try_*` forms; or they use
//! [`ScqQueue`](super::ScqQueue), which is both linearizable and live (the
//! [`mpmc`](super) module docs say which queue to use where a participant
//! can be stopped or killed).
//!
//! # Across processes
//!
//! An [`ArrayQueue`] holds no pointers: placed in memory shared between processes
//! (anonymous `MAP_SHARED` before `fork()`), any process can push and pop, for
//! plain-data item types (no pointers, no heap). A process killed mid-operation
//! leaves its slot claimed for good: `pop`/`push` then wait forever at it and the
//! `try_*` forms answer `Busy` forever. Use per-worker
//! [`spsc`](crate::queue::spsc) rings where a worker may die, or
//! [`ScqQueue`](super::ScqQueue), which stays live.
//!
//! # Example
//!
//! ```
//! use ply_core::queue::mpmc::ArrayQueue;
//!
//! static QUEUE: ArrayQueue<u32, 64> = ArrayQueue::new();
//!
//! std::thread::scope(|s| {
//!     for p in 0..2 {
//!         s.spawn(move || {
//!             for i in 0..100 {
//!                 while QUEUE.push(p * 1000 + i).is_err() {
//!                     std::hint::spin_loop();
//!                 }
//!             }
//!         });
//!     }
//!     let mut got = 0;
//!     while got < 200 {
//!         if QUEUE.pop().is_some() {
//!             got += 1;
//!         }
//!     }
//! });
//! assert!(QUEUE.is_empty());
//! ```

use core::fmt;
use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::primitive::{
    AtomicUsize, Backoff, Ordering, UnsafeCell, fence, seq_cst_point, yield_now,
};
#[cfg(not(loom))]
use crate::queue::CapacityError;
use crate::sync::patience::Forever;
use crate::sync::{Patience, Spins};

mod error;
pub use error::{TryPopError, TryPushError};

/// One cell of an [`ArrayQueue`]: a value and the stamp that says who may touch
/// it next (see the state table in the module docs). Public so that a caller can
/// provide the cells of a [`SliceArrayQueue`].
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{ArraySlot, SliceArrayQueue};
///
/// let mut cells: [ArraySlot<u32>; 3] = Default::default();
/// let q = SliceArrayQueue::new(&mut cells).unwrap();
/// q.push(1).unwrap();
/// assert_eq!(q.pop(), Some(1));
/// ```
pub struct ArraySlot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

impl<T> ArraySlot<T> {
    /// An empty cell (the queue sets its stamp when it takes the cell).
    ///
    /// # Example
    ///
    /// ```
    /// let cell = ply_core::queue::mpmc::ArraySlot::<u8>::new();
    /// # let _ = cell;
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        ArraySlot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// An empty cell (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        ArraySlot {
            stamp: AtomicUsize::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

impl<T> Default for ArraySlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The cells of an [`ArrayQueueBase`]: a stamp and a value slot each.
///
/// # Safety
///
/// [`capacity`](StampedSlots::capacity) must return the same value every
/// time; for each `i` below it, [`stamp`](StampedSlots::stamp) must return the
/// same atomic word every time and the closures a pointer to the same value slot
/// (valid for reads and writes of one item, aligned), all disjoint from each
/// other and from the queue's counters.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{StampedInline, StampedSlots};
/// assert_eq!(StampedInline::<u8, 5>::new().capacity(), 5);
/// ```
pub unsafe trait StampedSlots {
    /// What a value slot holds: `MaybeUninit<T>`, or the first byte of a slot
    /// of a run-time size.
    type Item;

    /// The number of cells.
    fn capacity(&self) -> usize;

    /// The stamp of cell `i`.
    ///
    /// # Safety
    ///
    /// `i < capacity()`. The stamps carry the queue's protocol: a store to one
    /// could make a pop read a cell nobody wrote. Only the queue built over
    /// this storage calls this (and stores to the stamp only as its algorithm
    /// says); anyone else may at most load it.
    unsafe fn stamp(&self, i: usize) -> &AtomicUsize;

    /// Calls `f` with a pointer to the value of cell `i`, for reading it.
    fn with_value<R>(&self, i: usize, f: impl FnOnce(*const Self::Item) -> R) -> R;

    /// Calls `f` with a pointer to the value of cell `i`, for writing it.
    fn with_value_mut<R>(&self, i: usize, f: impl FnOnce(*mut Self::Item) -> R) -> R;

    /// Drops the value of cell `i` in place (nothing, for plain bytes).
    ///
    /// # Safety
    ///
    /// Cell `i` must hold an initialized value that nothing will read again.
    unsafe fn drop_value(&self, i: usize);
}

/// `N` cells of `T`, inline: the storage of [`ArrayQueue<T, N>`].
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{ArrayQueueBase, StampedInline};
/// let q = ArrayQueueBase::<StampedInline<u8, 2>>::new(); // = ArrayQueue<u8, 2>
/// assert_eq!(q.capacity(), 2);
/// ```
pub struct StampedInline<T, const N: usize>([ArraySlot<T>; N]);

impl<T, const N: usize> StampedInline<T, N> {
    /// `N` cells, cell `i` stamped ready for the push at position `i` of lap 0.
    ///
    /// # Example
    ///
    /// ```
    /// let cells = ply_core::queue::mpmc::StampedInline::<u8, 4>::new();
    /// # let _ = cells;
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        let mut slots = [const { ArraySlot::new() }; N];
        let mut i = 0;
        while i < N {
            slots[i].stamp = AtomicUsize::new(i);
            i += 1;
        }
        StampedInline(slots)
    }

    /// `N` cells, stamped as above (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        StampedInline(core::array::from_fn(|i| ArraySlot {
            stamp: AtomicUsize::new(i),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }))
    }
}

impl<T, const N: usize> Default for StampedInline<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: the cells hand out raw pointers only; the queue moves values between
// threads, which `T: Send` allows. No `&T` is created from shared cells.
unsafe impl<T: Send, const N: usize> Sync for StampedInline<T, N> {}

// SAFETY: `N` is fixed; cell `i` is element `i` of the array.
unsafe impl<T, const N: usize> StampedSlots for StampedInline<T, N> {
    type Item = MaybeUninit<T>;

    #[inline(always)]
    fn capacity(&self) -> usize {
        N
    }

    #[inline(always)]
    unsafe fn stamp(&self, i: usize) -> &AtomicUsize {
        &self.0[i].stamp
    }

    #[inline(always)]
    fn with_value<R>(&self, i: usize, f: impl FnOnce(*const MaybeUninit<T>) -> R) -> R {
        self.0[i].value.with(f)
    }

    #[inline(always)]
    fn with_value_mut<R>(&self, i: usize, f: impl FnOnce(*mut MaybeUninit<T>) -> R) -> R {
        self.0[i].value.with_mut(f)
    }

    unsafe fn drop_value(&self, i: usize) {
        // SAFETY: the caller's promise.
        self.0[i]
            .value
            .with_mut(|p| unsafe { (*p).assume_init_drop() });
    }
}

/// Cells of `T` in a slice the caller owns, for the lifetime `'a`.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{ArraySlot, StampedBorrowed, StampedSlots};
/// let mut cells: [ArraySlot<u8>; 3] = Default::default();
/// assert_eq!(StampedBorrowed::new(&mut cells).capacity(), 3);
/// ```
#[cfg(not(loom))]
pub struct StampedBorrowed<'a, T>(&'a [ArraySlot<T>]);

#[cfg(not(loom))]
impl<'a, T> StampedBorrowed<'a, T> {
    /// Borrows `cells` for a queue (their contents are ignored; the queue
    /// stamps them).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::{ArraySlot, StampedBorrowed};
    /// let mut cells = [ArraySlot::<u8>::new(), ArraySlot::new()];
    /// let storage = StampedBorrowed::new(&mut cells);
    /// # let _ = storage;
    /// ```
    pub fn new(cells: &'a mut [ArraySlot<T>]) -> Self {
        StampedBorrowed(cells)
    }
}

// SAFETY: as for `StampedInline`.
#[cfg(not(loom))]
unsafe impl<T: Send> Sync for StampedBorrowed<'_, T> {}
// SAFETY: a unique borrow of the cells; the values are `Send`.
#[cfg(not(loom))]
unsafe impl<T: Send> Send for StampedBorrowed<'_, T> {}

// SAFETY: the slice's length is fixed; cell `i` is element `i`.
#[cfg(not(loom))]
unsafe impl<T> StampedSlots for StampedBorrowed<'_, T> {
    type Item = MaybeUninit<T>;

    #[inline(always)]
    fn capacity(&self) -> usize {
        self.0.len()
    }

    #[inline(always)]
    unsafe fn stamp(&self, i: usize) -> &AtomicUsize {
        &self.0[i].stamp
    }

    #[inline(always)]
    fn with_value<R>(&self, i: usize, f: impl FnOnce(*const MaybeUninit<T>) -> R) -> R {
        self.0[i].value.with(f)
    }

    #[inline(always)]
    fn with_value_mut<R>(&self, i: usize, f: impl FnOnce(*mut MaybeUninit<T>) -> R) -> R {
        self.0[i].value.with_mut(f)
    }

    unsafe fn drop_value(&self, i: usize) {
        // SAFETY: the caller's promise.
        self.0[i]
            .value
            .with_mut(|p| unsafe { (*p).assume_init_drop() });
    }
}

/// A slot a pop has claimed: its index, its stamp, and the stamp that
/// releases it for the next lap's push.
struct ClaimedSlot<'a> {
    index: usize,
    stamp: &'a AtomicUsize,
    next_lap: usize,
}

/// Releases a popped slot for the next lap's push when dropped: after the
/// pop's `read`, or while a panic from it unwinds.
struct ReleaseSlot<'a> {
    stamp: &'a AtomicUsize,
    next_lap: usize,
}

impl Drop for ReleaseSlot<'_> {
    fn drop(&mut self) {
        // Release: our read is done before the next lap's push (which
        // Acquires this stamp) overwrites the slot.
        self.stamp.store(self.next_lap, Ordering::Release);
    }
}

/// Spinning waits for an operation in flight before `push`/`pop` start
/// yielding to the OS. The other party needs two stores to finish; when it
/// takes longer than this, it is most likely preempted.
const SPINS_IN_FLIGHT: u32 = 32;

/// A push's or pop's waiting state: its backoff, and how many times it has
/// waited for an operation in flight.
struct Wait {
    backoff: Backoff,
    waits: u32,
}

impl Wait {
    fn new() -> Self {
        Wait {
            backoff: Backoff::new(),
            waits: 0,
        }
    }
}

/// What a push or pop does after finding its slot claimed by an operation in
/// flight.
enum InFlight {
    /// Look at the slot again (after waiting, or at once if the view was stale).
    Retry,
    /// Patience ran out: report `Busy`.
    GaveUp,
}

/// A bounded MPMC queue of capacity `N` (any `N ≥ 1`), storing items inline.
///
/// `Sync` for `T: Send`: share it by reference (or in a `static`) between any
/// number of producers and consumers. Items left in the queue when it is dropped
/// are dropped exactly once.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::ArrayQueue;
///
/// let q = ArrayQueue::<&str, 2>::new();
/// assert_eq!(q.push("a"), Ok(()));
/// assert_eq!(q.push("b"), Ok(()));
/// assert_eq!(q.push("c"), Err("c"));
/// assert_eq!(q.force_push("c"), Some("a")); // ring-buffer mode: evicts the oldest
/// assert_eq!(q.pop(), Some("b"));
/// assert_eq!(q.pop(), Some("c"));
/// assert_eq!(q.pop(), None);
/// ```
pub type ArrayQueue<T, const N: usize> = ArrayQueueBase<StampedInline<T, N>>;

/// An [`ArrayQueue`] over cells the caller owns, with the capacity chosen at run
/// time (any length from 1): the same algorithm and guarantees.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{ArraySlot, SliceArrayQueue};
///
/// let mut cells: Vec<ArraySlot<String>> = (0..5).map(|_| ArraySlot::new()).collect();
/// let q = SliceArrayQueue::new(&mut cells).unwrap();
/// q.push("a".to_string()).unwrap();
/// assert_eq!(q.capacity(), 5);
/// assert_eq!(q.pop().as_deref(), Some("a"));
/// ```
#[cfg(not(loom))]
pub type SliceArrayQueue<'a, T> = ArrayQueueBase<StampedBorrowed<'a, T>>;

/// The stamp queue, generic over where its cells live ([`StampedSlots`]). See
/// [`ArrayQueue`] for the guarantees; they hold for every storage.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{ArrayQueueBase, StampedInline};
///
/// let q = ArrayQueueBase::<StampedInline<u8, 3>>::new();
/// q.push(1).unwrap();
/// assert_eq!(q.len(), 1);
/// ```
pub struct ArrayQueueBase<S: StampedSlots> {
    /// Next position to pop, as `lap | index` (see module docs).
    head: CachePadded<AtomicUsize>,
    /// Next position to push, as `lap | index`.
    tail: CachePadded<AtomicUsize>,
    slots: S,
}

// SAFETY: values move from the pushing thread to the popping thread, which the
// storage's `Sync` allows (typed cells: `T: Send`); no `&T` is ever handed out.
// Every slot access is made exclusive by the claim protocol in the module docs.
unsafe impl<S: StampedSlots + Sync> Sync for ArrayQueueBase<S> {}

/// The largest capacity: positions `lap | index` need index bits to spare.
const MAX_CAPACITY: usize = usize::MAX / 4;

impl<T, const N: usize> ArrayQueue<T, N> {
    /// Rejects `N = 0` and capacities the position arithmetic cannot hold.
    const VALID: () = assert!(
        N >= 1 && N <= MAX_CAPACITY,
        "mpmc::ArrayQueue capacity N must be at least 1 and at most usize::MAX / 4"
    );

    /// Creates an empty queue. `const`, so it can initialize a `static`.
    ///
    /// A capacity of `N = 0` is rejected at compile time.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ArrayQueue;
    ///
    /// static Q: ArrayQueue<u64, 3> = ArrayQueue::new();
    /// assert_eq!(Q.capacity(), 3);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        let () = Self::VALID;
        // Cell i starts ready for the push at position `0 | i` of lap 0.
        ArrayQueueBase {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: StampedInline::new(),
        }
    }

    /// Creates an empty queue (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        let () = Self::VALID;
        ArrayQueueBase {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: StampedInline::new(),
        }
    }
}

#[cfg(not(loom))]
impl<'a, T> SliceArrayQueue<'a, T> {
    /// Creates an empty queue over `cells` (capacity `cells.len()`, any length
    /// from 1; their contents are ignored).
    ///
    /// # Errors
    ///
    /// [`CapacityError::Zero`] for no cells, [`CapacityError::TooLarge`] above
    /// `usize::MAX / 4`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::CapacityError;
    /// use ply_core::queue::mpmc::SliceArrayQueue;
    /// assert_eq!(SliceArrayQueue::<u8>::new(&mut []).err(), Some(CapacityError::Zero));
    /// ```
    pub fn new(cells: &'a mut [ArraySlot<T>]) -> Result<Self, CapacityError> {
        Self::with_slots(StampedBorrowed::new(cells))
    }
}

impl<S: StampedSlots> ArrayQueueBase<S> {
    /// Creates an empty queue over `slots`, stamping every cell. This is how
    /// storage made outside ply-core (such as the C ABI's) gets a queue;
    /// [`ArrayQueue::new`] and [`SliceArrayQueue::new`] are the usual ways in.
    ///
    /// # Errors
    ///
    /// [`CapacityError::Zero`] or [`CapacityError::TooLarge`].
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::{ArrayQueueBase, StampedInline};
    /// let q = ArrayQueueBase::with_slots(StampedInline::<u8, 2>::new()).unwrap();
    /// assert_eq!(q.capacity(), 2);
    /// ```
    #[cfg(not(loom))]
    pub fn with_slots(slots: S) -> Result<Self, CapacityError> {
        let capacity = slots.capacity();
        if capacity == 0 {
            return Err(CapacityError::Zero);
        }
        if capacity > MAX_CAPACITY {
            return Err(CapacityError::TooLarge {
                capacity,
                max: MAX_CAPACITY,
            });
        }
        for i in 0..capacity {
            // Cell i starts ready for the push at position `0 | i` of lap 0.
            // SAFETY: the queue being built stores its initial stamps.
            unsafe { slots.stamp(i) }.store(i, Ordering::Relaxed);
        }
        Ok(ArrayQueueBase {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots,
        })
    }

    /// The cells (for storage types that offer more, such as the C ABI's
    /// element size).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::{ArrayQueue, StampedSlots};
    /// assert_eq!(ArrayQueue::<u8, 3>::new().slots().capacity(), 3);
    /// ```
    pub fn slots(&self) -> &S {
        &self.slots
    }

    /// Positions per lap: the smallest power of two above the capacity, so
    /// `lap | index` never collides and `index + 1` never carries into the lap
    /// bits. (A constant for `ArrayQueue<T, N>`.)
    #[inline(always)]
    fn one_lap(&self) -> usize {
        (self.capacity() + 1).next_power_of_two()
    }

    /// The position after `pos`: the next index, or index 0 of the next lap.
    #[inline(always)]
    fn next_position(&self, pos: usize) -> usize {
        let one_lap = self.one_lap();
        let index = pos & (one_lap - 1);
        if index + 1 < self.capacity() {
            pos + 1
        } else {
            (pos & !(one_lap - 1)).wrapping_add(one_lap)
        }
    }

    /// After finding the slot at `*position` (a copy of `end`) claimed by an
    /// operation in flight: either others have moved `end` on since (our view
    /// was stale: retry at once from there), or the caller waits for that
    /// operation — spinning for its first [`SPINS_IN_FLIGHT`] waits (it needs
    /// two stores to finish, as in crossbeam), then yielding to the OS each
    /// time, in case it was preempted — or gives up if `patience` has run out.
    fn in_flight(
        &self,
        end: &AtomicUsize,
        position: &mut usize,
        patience: &mut impl Patience,
        wait: &mut Wait,
    ) -> InFlight {
        let current = end.load(Ordering::Relaxed);
        if current != *position {
            *position = current;
            return InFlight::Retry;
        }
        if !patience.keep_waiting() {
            return InFlight::GaveUp;
        }
        if wait.waits < SPINS_IN_FLIGHT {
            wait.waits += 1;
            wait.backoff.spin();
        } else {
            // The party in flight may be preempted: give it the CPU.
            yield_now();
        }
        *position = end.load(Ordering::Relaxed);
        InFlight::Retry
    }

    /// The push of [`push_with`](Self::push_with), with the value moved into its
    /// slot by `write(slot, value)`, called only once the slot is claimed (on
    /// `Full` or `Busy` the value comes back untouched). For storage whose items
    /// are not a Rust type (the C ABI's cells of a run-time byte size).
    ///
    /// # Safety
    ///
    /// When `write` returns, the slot must hold a valid item, as the storage
    /// defines it. `write` must not panic: the claimed slot would never be
    /// published, a hole as left by a participant killed mid-push.
    ///
    /// # Example
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// use ply_core::queue::mpmc::ArrayQueue;
    /// use ply_core::sync::Spins;
    ///
    /// let q = ArrayQueue::<u32, 1>::new();
    /// let write = |slot: *mut MaybeUninit<u32>, v: u32| {
    ///     // SAFETY: `slot` is the claimed slot, valid for a write.
    ///     unsafe { slot.write(MaybeUninit::new(v)) }
    /// };
    /// // SAFETY: `write` initializes the slot and cannot panic.
    /// assert!(unsafe { q.push_in_place(7, write, Spins(0)) }.is_ok());
    /// assert!(unsafe { q.push_in_place(8, write, Spins(0)) }.is_err()); // full
    /// assert_eq!(q.pop(), Some(7));
    /// ```
    pub unsafe fn push_in_place<V>(
        &self,
        value: V,
        write: impl FnOnce(*mut S::Item, V),
        mut patience: impl Patience,
    ) -> Result<(), TryPushError<V>> {
        let one_lap = self.one_lap();
        let mut wait = Wait::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let index = tail & (one_lap - 1);
            // SAFETY: this queue's own use of its stamp, as its algorithm says.
            let slot_stamp = unsafe { self.slots.stamp(index) };
            // Acquire: pairs with the Release stamp store of the pop that emptied
            // this slot, so its read of the old value is done before we write.
            let stamp = slot_stamp.load(Ordering::Acquire);
            if stamp == tail {
                // The slot is free for this lap: try to claim position `tail`.
                // SeqCst: the claim publishes nothing (the stamp store does), but
                // it must be in the total order the empty verdict of `pop` reads
                // (module docs, "Memory ordering").
                match self.tail.compare_exchange_weak(
                    tail,
                    self.next_position(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        seq_cst_point();
                        crate::fault_point!(ArrayPushClaimed);
                        // The claim of `tail` makes us this slot's only writer
                        // until we publish; its old value was taken.
                        self.slots.with_value_mut(index, |p| write(p, value));
                        // Release: publishes the value to the pop that Acquires it.
                        slot_stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => {
                        // Another producer took it: try the position it left us.
                        tail = current;
                        wait.backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(one_lap) == tail + 1 {
                // The slot still holds the item of the previous lap. If `head` is
                // still at that item, the queue is full. Otherwise its consumer
                // has claimed it and is reading it: the queue is not full.
                // SeqCst fence: see "Memory ordering" in the module docs.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(one_lap) == tail {
                    return Err(TryPushError::Full(value));
                }
                match self.in_flight(&self.tail, &mut tail, &mut patience, &mut wait) {
                    InFlight::Retry => {}
                    InFlight::GaveUp => return Err(TryPushError::Busy(value)),
                }
            } else {
                // Our `tail` is stale (others pushed since): reload and retry.
                wait.backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// The pop of [`pop_with`](Self::pop_with), with the item moved out of its
    /// slot by `read`, called only for a claimed, published slot. For storage
    /// whose items are not a Rust type (the C ABI's cells). Whatever `read`
    /// does not move out is forgotten, never dropped, also when `read` panics
    /// (the slot is released all the same). `read` runs while the slot is
    /// claimed: a [`push`](Self::push) to this queue from inside it can come
    /// round to that very slot (a full queue of capacity 1, say) and wait for
    /// this pop to finish, for ever; use [`try_push`](Self::try_push) there.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::{ArrayQueue, TryPopError};
    /// use ply_core::sync::Spins;
    ///
    /// let q = ArrayQueue::<u32, 2>::new();
    /// q.push(3).unwrap();
    /// // SAFETY: `read` runs only on an initialized, published slot.
    /// let got = q.pop_in_place(|slot| unsafe { (*slot).assume_init() }, Spins(0));
    /// assert_eq!(got, Ok(3));
    /// assert_eq!(q.pop_in_place(|_| (), Spins(0)), Err(TryPopError::Empty));
    /// ```
    pub fn pop_in_place<R>(
        &self,
        read: impl FnOnce(*const S::Item) -> R,
        patience: impl Patience,
    ) -> Result<R, TryPopError> {
        let slot = self.claim_head(patience)?;
        // `read` is the caller's code: the guard releases the slot even if it
        // panics (what it did not move out is forgotten), so no later push
        // waits for it forever.
        let release = ReleaseSlot {
            stamp: slot.stamp,
            next_lap: slot.next_lap,
        };
        let value = self.slots.with_value(slot.index, read);
        drop(release);
        Ok(value)
    }

    /// Claims the slot at `head` for a pop: returns it once this thread is its
    /// only reader (its value published), or why there is none. The caller
    /// reads the value, then releases the slot for the next lap's push.
    #[inline(always)]
    fn claim_head(&self, mut patience: impl Patience) -> Result<ClaimedSlot<'_>, TryPopError> {
        let one_lap = self.one_lap();
        let mut wait = Wait::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let index = head & (one_lap - 1);
            // SAFETY: this queue's own use of its stamp, as its algorithm says.
            let slot_stamp = unsafe { self.slots.stamp(index) };
            // Acquire: pairs with the Release stamp store of the push that filled
            // this slot, so its value is visible.
            let stamp = slot_stamp.load(Ordering::Acquire);
            if stamp == head + 1 {
                // Full for this lap: try to claim position `head`. SeqCst: as in
                // `push_with`, for the total order of claims and verdicts.
                match self.head.compare_exchange_weak(
                    head,
                    self.next_position(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        seq_cst_point();
                        crate::fault_point!(ArrayPopClaimed);
                        // Winning the claim makes us the only reader of this slot,
                        // whose value the producer initialized (stamp Acquire).
                        return Ok(ClaimedSlot {
                            index,
                            stamp: slot_stamp,
                            next_lap: head.wrapping_add(one_lap),
                        });
                    }
                    Err(current) => {
                        head = current;
                        wait.backoff.spin();
                    }
                }
            } else if stamp == head {
                // Not yet written for this lap. If `tail` is still here, the
                // queue is empty. Otherwise a push has claimed this position and
                // is writing it: the queue is not empty.
                // SeqCst fence: see "Memory ordering" in the module docs.
                fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail == head {
                    return Err(TryPopError::Empty);
                }
                match self.in_flight(&self.head, &mut head, &mut patience, &mut wait) {
                    InFlight::Retry => {}
                    InFlight::GaveUp => return Err(TryPopError::Busy),
                }
            } else {
                // Our `head` is stale (others popped since): reload and retry.
                wait.backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    /// The number of items, as a consistent snapshot of `head` and `tail`
    /// (it may be stale by the time it is used while others are active).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ArrayQueue;
    ///
    /// let q = ArrayQueue::<u8, 3>::new();
    /// q.push(1).unwrap();
    /// q.push(2).unwrap();
    /// assert_eq!(q.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        loop {
            // SeqCst loads, retried until `tail` did not move in between: then the
            // pair is a snapshot of one moment.
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                let (one_lap, capacity) = (self.one_lap(), self.capacity());
                let hix = head & (one_lap - 1);
                let tix = tail & (one_lap - 1);
                return if hix < tix {
                    tix - hix
                } else if hix > tix {
                    capacity - hix + tix
                } else if tail == head {
                    0
                } else {
                    capacity
                };
            }
        }
    }

    /// Whether the queue is empty (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ArrayQueue;
    /// assert!(ArrayQueue::<u8, 3>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ArrayQueue;
    ///
    /// let q = ArrayQueue::<u8, 1>::new();
    /// q.push(0).unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// The capacity `N`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ArrayQueue;
    /// assert_eq!(ArrayQueue::<u8, 7>::new().capacity(), 7);
    /// ```
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }
}

impl<T, S: StampedSlots<Item = MaybeUninit<T>>> ArrayQueueBase<S> {
    /// Adds `value` at the back, or gives it back if the queue is full.
    ///
    /// Linearizable: `Err` means the queue was full at an instant during the
    /// call. If the slot to push into still holds an item whose pop is in
    /// flight (claimed, not yet read), this waits for that pop to finish; see
    /// the module docs for the trade-off, and [`try_push`](Self::try_push) for
    /// the form that never waits.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ArrayQueue;
    ///
    /// let q = ArrayQueue::<u8, 1>::new();
    /// assert_eq!(q.push(1), Ok(()));
    /// assert_eq!(q.push(2), Err(2)); // full
    /// ```
    pub fn push(&self, value: T) -> Result<(), T> {
        self.push_with(value, Forever)
            .map_err(TryPushError::into_inner)
    }

    /// Adds `value` at the back without ever waiting for another party: if the
    /// slot to push into is still being read by a pop in flight, answers
    /// [`TryPushError::Busy`] (the queue is not full) instead of waiting.
    ///
    /// For callers that choose liveness over linearizability: a consumer stopped
    /// mid-pop cannot stop this call, but `Busy` is not a verdict on the queue.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::{ArrayQueue, TryPushError};
    ///
    /// let q = ArrayQueue::<u8, 1>::new();
    /// assert_eq!(q.try_push(1), Ok(()));
    /// assert_eq!(q.try_push(2), Err(TryPushError::Full(2)));
    /// ```
    pub fn try_push(&self, value: T) -> Result<(), TryPushError<T>> {
        self.push_with(value, Spins(0))
    }

    /// Adds `value` at the back, waiting for a pop in flight at its slot until
    /// `patience` runs out (then [`TryPushError::Busy`]). `Full` is returned at
    /// once, as by [`push`](Self::push).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::{ArrayQueue, TryPushError};
    /// use ply_core::sync::Spins;
    ///
    /// let q = ArrayQueue::<u8, 2>::new();
    /// assert_eq!(q.push_with(1, Spins(100)), Ok(()));
    /// ```
    pub fn push_with(&self, value: T, patience: impl Patience) -> Result<(), TryPushError<T>> {
        let write = |slot: *mut MaybeUninit<T>, value: T| {
            // SAFETY: `push_in_place` passes the slot it claimed for us, valid
            // for writes; the write cannot panic.
            unsafe { slot.write(MaybeUninit::new(value)) }
        };
        // SAFETY: `write` initializes the slot and cannot panic.
        unsafe { self.push_in_place(value, write, patience) }
    }

    /// Adds `value` at the back; if the queue is full, evicts the oldest item
    /// and returns it (ring-buffer mode, for "keep the latest N").
    ///
    /// If the oldest item's consumer has claimed it but not finished reading it,
    /// this waits (spinning) for that consumer — briefly between threads; across
    /// processes, a consumer that died there would make this wait forever.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ArrayQueue;
    ///
    /// let q = ArrayQueue::<u32, 2>::new();
    /// assert_eq!(q.force_push(1), None);
    /// assert_eq!(q.force_push(2), None);
    /// assert_eq!(q.force_push(3), Some(1));
    /// assert_eq!(q.pop(), Some(2));
    /// ```
    pub fn force_push(&self, value: T) -> Option<T> {
        let one_lap = self.one_lap();
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let index = tail & (one_lap - 1);
            // SAFETY: this queue's own use of its stamp, as its algorithm says.
            let slot_stamp = unsafe { self.slots.stamp(index) };
            // Acquire: as in `push`; also makes the previous lap's value visible in
            // case we evict it below.
            let stamp = slot_stamp.load(Ordering::Acquire);
            let next = self.next_position(tail);
            if stamp == tail {
                // Free: push exactly as `push` does (see there for the orderings).
                if self
                    .tail
                    .compare_exchange_weak(tail, next, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    seq_cst_point();
                    self.slots.with_value_mut(index, |p| {
                        // SAFETY: as in `push`: the claim makes the slot ours.
                        unsafe { p.write(MaybeUninit::new(value)) }
                    });
                    slot_stamp.store(tail + 1, Ordering::Release);
                    return None;
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else if stamp.wrapping_add(one_lap) == tail + 1 {
                // Full: the oldest item is in this very slot, at `head = tail - lap`.
                // Claim it as a consumer would, by moving `head` past it.
                // Exclusivity comes from the CAS, visibility from the stamp
                // Acquire; SeqCst (here and on the `tail` store) keeps both moves
                // in the total order the empty/full verdicts read.
                let head = tail.wrapping_sub(one_lap);
                let new_head = next.wrapping_sub(one_lap);
                if self
                    .head
                    .compare_exchange_weak(head, new_head, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    seq_cst_point();
                    // We own the slot as its consumer. No producer can claim `tail`
                    // (its stamp is not `tail`), so a plain store moves it.
                    self.tail.store(next, Ordering::SeqCst);
                    seq_cst_point();
                    // SAFETY: the slot holds the previous lap's initialized value
                    // (stamp Acquire above), and both claims are ours: no one else
                    // reads or writes it until we publish the new stamp.
                    let old = self.slots.with_value_mut(index, |p| unsafe {
                        core::ptr::replace(p, MaybeUninit::new(value)).assume_init()
                    });
                    // Release: publishes the new value to its pop.
                    slot_stamp.store(tail + 1, Ordering::Release);
                    return Some(old);
                }
                // A consumer took the oldest item first (or is still reading it).
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Removes the item at the front, or returns `None` if the queue is empty.
    ///
    /// Linearizable: `None` means the queue was empty at an instant during the
    /// call, so a consumer may treat it as "drained". If the oldest item's push
    /// is in flight (its slot claimed, the item not yet written), this waits for
    /// that push to finish; see the module docs for the trade-off, and
    /// [`try_pop`](Self::try_pop) for the form that never waits.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ArrayQueue;
    ///
    /// let q = ArrayQueue::<String, 4>::new();
    /// q.push("hi".to_string()).unwrap();
    /// assert_eq!(q.pop().as_deref(), Some("hi"));
    /// assert_eq!(q.pop(), None);
    /// ```
    pub fn pop(&self) -> Option<T> {
        // `Forever` never gives up, so the only error is `Empty`.
        self.pop_with(Forever).ok()
    }

    /// Removes the item at the front without ever waiting for another party:
    /// if the oldest item's push is in flight, answers [`TryPopError::Busy`]
    /// (the queue is not empty) instead of waiting.
    ///
    /// For callers that choose liveness over linearizability: a producer stopped
    /// mid-push cannot stop this call, but `Busy` is not "drained".
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::{ArrayQueue, TryPopError};
    ///
    /// let q = ArrayQueue::<u8, 2>::new();
    /// assert_eq!(q.try_pop(), Err(TryPopError::Empty));
    /// q.push(5).unwrap();
    /// assert_eq!(q.try_pop(), Ok(5));
    /// ```
    pub fn try_pop(&self) -> Result<T, TryPopError> {
        self.pop_with(Spins(0))
    }

    /// Removes the item at the front, waiting for a push in flight at the head
    /// until `patience` runs out (then [`TryPopError::Busy`]). `Empty` is
    /// returned at once, as by [`pop`](Self::pop).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ply_core::queue::mpmc::{ArrayQueue, TryPopError};
    /// use ply_core::sync::Deadline;
    ///
    /// let q = ArrayQueue::<u8, 2>::new();
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// let got = q.pop_with(Deadline(|| Instant::now() >= deadline));
    /// assert_eq!(got, Err(TryPopError::Empty));
    /// ```
    pub fn pop_with(&self, patience: impl Patience) -> Result<T, TryPopError> {
        // Not through `pop_in_place`, whose guard is there for a `read` that
        // may panic: moving the value out cannot, and with the guard this path
        // measured 2x slower in the 2P/2C bench (BENCHMARKS.md, 2026-12-01).
        let slot = self.claim_head(patience)?;
        let value = self.slots.with_value(slot.index, |p| {
            // SAFETY: the claimed slot holds the value a push initialized and
            // published; the release below lets the next lap overwrite it, so
            // the value is moved out exactly once.
            unsafe { p.read().assume_init() }
        });
        // Release: our read is done before the next lap's push (which
        // Acquires this stamp) overwrites the slot.
        slot.stamp.store(slot.next_lap, Ordering::Release);
        Ok(value)
    }
}

impl<T, const N: usize> Default for ArrayQueue<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: StampedSlots> Drop for ArrayQueueBase<S> {
    fn drop(&mut self) {
        // `&mut self`: no operation is in flight here. Walk the `len` positions
        // from `head`, dropping each item whose stamp says it was published (a
        // process that died mid-push may have left an unpublished hole).
        let mut len = self.len();
        let one_lap = self.one_lap();
        let mut pos = self.head.load(Ordering::Relaxed);
        crate::queue::storage::drop_each(|| {
            if len == 0 {
                return false;
            }
            let this = pos;
            pos = self.next_position(pos);
            len -= 1;
            let index = this & (one_lap - 1);
            // SAFETY: this queue reads its own stamp.
            let stamp = unsafe { self.slots.stamp(index) }.load(Ordering::Relaxed);
            if stamp == this + 1 {
                // SAFETY: the stamp says this slot holds the initialized item of
                // position `this`; each is dropped once, as `pos` has already
                // walked past it (so a panic in its drop does not revisit it).
                unsafe { self.slots.drop_value(index) };
            }
            true
        });
    }
}

impl<S: StampedSlots> fmt::Debug for ArrayQueueBase<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayQueue")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
