//! [`ScqQueue`]: a bounded MPMC queue that stays live when a participant stalls.
//!
//! # Algorithm
//!
//! The "SCQ" design of R. Nikolaev ("A Scalable, Portable, and Memory-Efficient
//! Lock-Free FIFO Queue", DISC 2019): values live in a plain array of `N` slots,
//! and two lock-free rings of slot *indices* ([`IndexRing`]) say which slots are
//! free and which hold values, in order:
//!
//! - `push(v)`: take a free index from `free` (none: the queue is full), write `v`
//!   into that slot, then enqueue the index on `ready`.
//! - `pop()`: dequeue an index from `ready` (none: empty), move the value out of
//!   that slot, then give the index back to `free`.
//!
//! Each ring operation is one `fetch_add` on a counter plus a CAS on one entry,
//! and never waits for another participant to finish (see [`IndexRing`]).
//!
//! # Progress: lock-free in the strict sense
//!
//! A participant stopped at *any* instruction (preempted, `SIGSTOP`ped, killed)
//! never stops the others:
//!
//! - stopped inside `push` after taking a free index: that one slot is out of use
//!   until it resumes (capacity `N - 1` meanwhile); every other push and pop
//!   proceeds, in order.
//! - stopped inside `pop` after taking its position: the one value it was about
//!   to take stays where it is until it resumes; everything else proceeds.
//! - killed at those points: that one value (if any) is lost and that one slot
//!   stays out of use; the queue goes on with capacity `N - 1`.
//!
//! Compare [`ArrayQueue`](super::ArrayQueue), where one stopped producer stops
//! every consumer at its slot. `tests/stall_liveness.rs` checks this across
//! processes by freezing a participant with `SIGSTOP` mid-operation, hundreds of
//! times, and killing one with `SIGKILL`.
//!
//! # Memory ordering
//!
//! The slot write in `push` happens before the `ready` ring's enqueue CAS
//! (`AcqRel`), which the popper's `Acquire` load of the entry pairs with, so the
//! popper sees the value. The slot read in `pop` happens before the `free` ring's
//! enqueue CAS, which the next pusher of that slot Acquires, so the slot is not
//! overwritten while being read. See [`IndexRing`] for the rings' own orderings.
//!
//! # Across processes
//!
//! Holds no pointers: placed in memory shared between processes (anonymous
//! `MAP_SHARED` before `fork()`), any process can push and pop, for plain-data
//! item types. This is the MPMC queue to use when a process may die.

use core::fmt;
use core::mem::MaybeUninit;

#[cfg(not(loom))]
use super::index_ring::{BorrowedEntries, MAX_CAPACITY};
use super::index_ring::{Entries, IndexRing, InlineEntries};
#[cfg(not(loom))]
use crate::primitive::AtomicUsize;
#[cfg(not(loom))]
use crate::queue::CapacityError;
#[cfg(not(loom))]
use crate::queue::storage::Borrowed;
use crate::queue::storage::{Inline, Slots};

/// A bounded MPMC queue of capacity `N` (a power of two) that stays live when
/// any participant stalls or dies mid-operation.
///
/// `Sync` for `T: Send`. Items left in the queue when it is dropped are dropped
/// exactly once. There is no `len`: counting items exactly would need one more
/// contended counter on every operation.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::ScqQueue;
///
/// static Q: ScqQueue<u32, 4> = ScqQueue::new();
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         for i in 0..100 {
///             while Q.push(i).is_err() {
///                 std::hint::spin_loop();
///             }
///         }
///     });
///     let mut expected = 0;
///     while expected < 100 {
///         if let Some(v) = Q.pop() {
///             assert_eq!(v, expected); // FIFO
///             expected += 1;
///         }
///     }
/// });
/// ```
pub type ScqQueue<T, const N: usize> = ScqBase<Inline<T, N>, InlineEntries<N>>;

/// An [`ScqQueue`] over buffers the caller owns, with the capacity (a power of
/// two) chosen at run time: the same algorithm and guarantees.
///
/// # Example
///
/// ```
/// use core::mem::MaybeUninit;
/// use core::sync::atomic::AtomicUsize;
/// use ply_core::queue::mpmc::SliceScqQueue;
///
/// let mut slots = [MaybeUninit::<u64>::uninit(); 4];
/// let mut entries: [AtomicUsize; 16] = Default::default(); // 4 words per slot
/// let q = SliceScqQueue::new(&mut slots, &mut entries).unwrap();
/// q.push(1).unwrap();
/// assert_eq!(q.pop(), Some(1));
/// ```
#[cfg(not(loom))]
pub type SliceScqQueue<'a, T> = ScqBase<Borrowed<'a, T>, BorrowedEntries<'a>>;

/// The SCQ queue, generic over where its value slots ([`Slots`]) and its index
/// rings' entries ([`Entries`]) live. See [`ScqQueue`] for the guarantees; they
/// hold for every storage.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{InlineEntries, ScqBase};
/// use ply_core::queue::storage::Inline;
///
/// let q = ScqBase::<Inline<u8, 2>, InlineEntries<2>>::new(); // = ScqQueue<u8, 2>
/// assert_eq!(q.capacity(), 2);
/// ```
pub struct ScqBase<S: Slots, E: Entries> {
    /// Indices of slots that hold values, in FIFO order.
    ready: IndexRing<E>,
    /// Indices of slots that are free.
    free: IndexRing<E>,
    slots: S,
}

// SAFETY: values move from the pushing thread to the popping thread, which the
// storage's `Sync` allows (typed storage: `T: Send`); no `&T` is handed out. A
// slot index is owned by exactly one party at a time (in `free`, in `ready`, or
// held by the one push or pop that took it from a ring), so slot accesses never
// overlap.
unsafe impl<S: Slots + Sync, E: Entries + Sync> Sync for ScqBase<S, E> {}

impl<T, const N: usize> ScqQueue<T, N> {
    /// Creates an empty queue. `const`, so it can initialize a `static`.
    ///
    /// `N` must be a power of two (checked at compile time).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ScqQueue;
    ///
    /// static Q: ScqQueue<u64, 1024> = ScqQueue::new();
    /// assert_eq!(Q.capacity(), 1024);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        ScqBase {
            ready: IndexRing::new_empty(),
            free: IndexRing::new_full(),
            slots: Inline::new(),
        }
    }

    /// Creates an empty queue (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        ScqBase {
            ready: IndexRing::new_empty(),
            free: IndexRing::new_full(),
            slots: Inline::new(),
        }
    }
}

#[cfg(not(loom))]
impl<'a, T> SliceScqQueue<'a, T> {
    /// Creates an empty queue over `slots` (capacity `slots.len()`, a power of
    /// two) and `entries`, the index rings' words: `4 * slots.len()` of them.
    /// The contents of both are ignored (and the entries overwritten).
    ///
    /// # Errors
    ///
    /// [`CapacityError::Zero`], [`CapacityError::NotPowerOfTwo`] or
    /// [`CapacityError::TooLarge`] for the capacity;
    /// [`CapacityError::EntryCount`] if `entries` is not `4 * slots.len()` long.
    ///
    /// # Example
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// use core::sync::atomic::AtomicUsize;
    /// use ply_core::queue::CapacityError;
    /// use ply_core::queue::mpmc::SliceScqQueue;
    ///
    /// let mut slots = [MaybeUninit::<u8>::uninit(); 3];
    /// let mut entries: [AtomicUsize; 12] = Default::default();
    /// assert_eq!(
    ///     SliceScqQueue::new(&mut slots, &mut entries).err(),
    ///     Some(CapacityError::NotPowerOfTwo { capacity: 3 })
    /// );
    /// ```
    pub fn new(
        slots: &'a mut [MaybeUninit<T>],
        entries: &'a mut [AtomicUsize],
    ) -> Result<Self, CapacityError> {
        let capacity = slots.len();
        let expected = capacity.saturating_mul(4);
        if entries.len() != expected {
            return Err(CapacityError::EntryCount {
                expected,
                got: entries.len(),
            });
        }
        let half = entries.len() / 2;
        let (free, ready) = entries.split_at_mut(half);
        Self::with_storage(
            Borrowed::new(slots),
            BorrowedEntries::new(free),
            BorrowedEntries::new(ready),
        )
    }
}

impl<S: Slots, E: Entries> ScqBase<S, E> {
    /// Creates an empty queue over `slots` and the entries of its two index
    /// rings (`2 * capacity` each), overwriting the entries. This is how storage
    /// made outside ply-core (such as the C ABI's) gets a queue;
    /// [`ScqQueue::new`] and [`SliceScqQueue::new`] are the usual ways in.
    ///
    /// # Errors
    ///
    /// [`CapacityError`] if the capacity is not a power of two from 1 to
    /// `usize::MAX / 8`, or an entry storage is not twice as long.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::{InlineEntries, ScqBase};
    /// use ply_core::queue::storage::Inline;
    ///
    /// let q = ScqBase::with_storage(
    ///     Inline::<u32, 4>::new(),
    ///     InlineEntries::<4>::new(),
    ///     InlineEntries::<4>::new(),
    /// )
    /// .unwrap();
    /// q.push(3).unwrap();
    /// assert_eq!(q.pop(), Some(3));
    /// ```
    #[cfg(not(loom))]
    pub fn with_storage(slots: S, free: E, ready: E) -> Result<Self, CapacityError> {
        let capacity = slots.capacity();
        if capacity == 0 {
            return Err(CapacityError::Zero);
        }
        if !capacity.is_power_of_two() {
            return Err(CapacityError::NotPowerOfTwo { capacity });
        }
        if capacity > MAX_CAPACITY {
            return Err(CapacityError::TooLarge {
                capacity,
                max: MAX_CAPACITY,
            });
        }
        for entries in [&free, &ready] {
            if entries.len() != 2 * capacity {
                return Err(CapacityError::EntryCount {
                    expected: 2 * capacity,
                    got: entries.len(),
                });
            }
        }
        let queue = ScqBase {
            ready: IndexRing::over(ready),
            free: IndexRing::over(free),
            slots,
        };
        queue.ready.clear();
        queue.free.fill();
        Ok(queue)
    }
    /// Takes a free slot, lets `write` fill it, and publishes it; returns
    /// `false` (calling nothing) if the queue is full.
    ///
    /// For storage whose items are not a Rust type (the C ABI's slots of a
    /// run-time byte size); typed queues use [`push`](ScqBase::push).
    ///
    /// # Safety
    ///
    /// When `write` returns, the slot must hold a valid item, as the storage
    /// defines it. `write` must not panic: a panic there would leave the slot
    /// taken for good (capacity one less), as a participant killed at that
    /// point does.
    ///
    /// # Example
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// use ply_core::queue::mpmc::ScqQueue;
    ///
    /// let q = ScqQueue::<u16, 1>::new();
    /// // SAFETY: the closure initializes the slot.
    /// assert!(unsafe { q.push_in_place(|slot| slot.write(MaybeUninit::new(9))) });
    /// assert!(!unsafe { q.push_in_place(|_| unreachable!("full")) });
    /// assert_eq!(q.pop(), Some(9));
    /// ```
    pub unsafe fn push_in_place(&self, write: impl FnOnce(*mut S::Item)) -> bool {
        let Some(index) = self.free.dequeue() else {
            return false;
        };
        // SAFETY: `index` came from `free`; `write` initializes the slot (our
        // caller's promise).
        unsafe { self.fill_and_publish(index, write) };
        true
    }

    /// Writes slot `index` with `write` and publishes it on `ready`.
    ///
    /// # Safety
    ///
    /// `index` must have just been taken from `free`, and `write` must leave
    /// the slot holding a valid item.
    #[inline(always)]
    unsafe fn fill_and_publish(&self, index: usize, write: impl FnOnce(*mut S::Item)) {
        crate::fault_point!(ScqPushSlotTaken);
        // Taking `index` from `free` made this push its only owner: no pop reads
        // it before it is in `ready`, no push gets it before a pop returns it, and
        // `free`'s Acquire ordered the previous pop's read before this write.
        self.slots.with_slot_mut(index, write);
        self.ready.enqueue(index);
    }

    /// Lets `read` take the item at the front, then frees its slot; returns
    /// `None` (calling nothing) if the queue is empty.
    ///
    /// For storage whose items are not a Rust type (the C ABI's slots of a
    /// run-time byte size); typed queues use [`pop`](ScqBase::pop). Whatever
    /// `read` does not move out of the slot is forgotten, never dropped, also
    /// when `read` panics (the slot is freed all the same).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ScqQueue;
    ///
    /// let q = ScqQueue::<u16, 2>::new();
    /// q.push(4).unwrap();
    /// // SAFETY: `pop_in_place` only calls for an initialized, published slot.
    /// assert_eq!(q.pop_in_place(|slot| unsafe { (*slot).assume_init() }), Some(4));
    /// assert_eq!(q.pop_in_place(|_| ()), None);
    /// ```
    pub fn pop_in_place<R>(&self, read: impl FnOnce(*const S::Item) -> R) -> Option<R> {
        let index = self.ready.dequeue()?;
        crate::fault_point!(ScqPopIndexTaken);
        // Taking `index` from `ready` made this pop its only owner, and `ready`'s
        // Acquire made the pusher's write of the value visible. The slot counts
        // as uninitialized once its index is back in `free`. `read` is the
        // caller's code: the guard gives the slot back even if it panics
        // (what it did not move out is forgotten), or the queue would lose
        // the slot for good.
        let give_back = GiveBack {
            free: &self.free,
            index,
        };
        let value = self.slots.with_slot(index, read);
        drop(give_back);
        Some(value)
    }

    /// The capacity `N`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ScqQueue;
    /// assert_eq!(ScqQueue::<u8, 8>::new().capacity(), 8);
    /// ```
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// The value slots (for storage types that offer more than slots, such as
    /// the C ABI's element size).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ScqQueue;
    /// use ply_core::queue::storage::Slots;
    /// assert_eq!(ScqQueue::<u8, 8>::new().slots().capacity(), 8);
    /// ```
    pub fn slots(&self) -> &S {
        &self.slots
    }

    /// The entries of the two index rings, `(free, ready)` (for storage types
    /// that must reach their own fields once the queue is in place, such as the
    /// C ABI's, which then record where their buffer is relative to themselves).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::{Entries, ScqQueue};
    /// let q = ScqQueue::<u8, 4>::new();
    /// let (free, ready) = q.entries();
    /// assert_eq!((free.len(), ready.len()), (8, 8));
    /// ```
    pub fn entries(&self) -> (&E, &E) {
        (self.free.entries(), self.ready.entries())
    }
}

impl<T, S: Slots<Item = MaybeUninit<T>>, E: Entries> ScqBase<S, E> {
    /// Adds `value` at the back, or gives it back if the queue is full.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ScqQueue;
    ///
    /// let q = ScqQueue::<u8, 2>::new();
    /// assert_eq!(q.push(1), Ok(()));
    /// assert_eq!(q.push(2), Ok(()));
    /// assert_eq!(q.push(3), Err(3));
    /// ```
    pub fn push(&self, value: T) -> Result<(), T> {
        let Some(index) = self.free.dequeue() else {
            return Err(value);
        };
        // SAFETY: `index` came from `free`; the closure initializes the slot.
        unsafe { self.fill_and_publish(index, |p| p.write(MaybeUninit::new(value))) };
        Ok(())
    }

    /// Removes the item at the front, or returns `None` if the queue is empty.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ScqQueue;
    ///
    /// let q = ScqQueue::<String, 2>::new();
    /// q.push("a".to_string()).unwrap();
    /// assert_eq!(q.pop().as_deref(), Some("a"));
    /// assert_eq!(q.pop(), None);
    /// ```
    pub fn pop(&self) -> Option<T> {
        // SAFETY: `pop_in_place` calls the closure only for a slot a push initialized
        // and published, and frees the slot afterwards, so the value is moved
        // out exactly once.
        self.pop_in_place(|p| unsafe { p.read().assume_init() })
    }
}

impl<T, const N: usize> Default for ScqQueue<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Gives a popped slot back to the free ring when dropped: after the pop's
/// `read`, or while a panic from it unwinds.
struct GiveBack<'a, E: Entries> {
    free: &'a IndexRing<E>,
    index: usize,
}

impl<E: Entries> Drop for GiveBack<'_, E> {
    fn drop(&mut self) {
        self.free.enqueue(self.index);
    }
}

impl<S: Slots, E: Entries> Drop for ScqBase<S, E> {
    fn drop(&mut self) {
        // `&mut self`: nothing is in flight in this process; drop what is left.
        crate::queue::storage::drop_each(|| {
            let Some(index) = self.ready.dequeue() else {
                return false;
            };
            // SAFETY: an index in `ready` names a slot holding a published item,
            // and taking it from `ready` made it ours alone (so a panic in its
            // drop does not revisit it).
            unsafe { self.slots.drop_slot(index) };
            true
        });
    }
}

impl<S: Slots, E: Entries> fmt::Debug for ScqBase<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScqQueue")
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
