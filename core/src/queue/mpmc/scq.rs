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

use super::index_ring::IndexRing;
use crate::primitive::UnsafeCell;

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
pub struct ScqQueue<T, const N: usize> {
    /// Indices of slots that hold values, in FIFO order.
    ready: IndexRing<N>,
    /// Indices of slots that are free.
    free: IndexRing<N>,
    slots: [UnsafeCell<MaybeUninit<T>>; N],
}

// SAFETY: values move from the pushing thread to the popping thread, which needs
// `T: Send`; no `&T` is handed out. A slot index is owned by exactly one party at
// a time (in `free`, in `ready`, or held by the one push or pop that took it from
// a ring), so slot accesses never overlap.
unsafe impl<T: Send, const N: usize> Sync for ScqQueue<T, N> {}

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
        ScqQueue {
            ready: IndexRing::new_empty(),
            free: IndexRing::new_full(),
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; N],
        }
    }

    /// Creates an empty queue (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        ScqQueue {
            ready: IndexRing::new_empty(),
            free: IndexRing::new_full(),
            slots: core::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
        }
    }

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
        crate::fault_point!(ScqPushSlotTaken);
        // Taking `index` from `free` made this push its only owner: no pop reads
        // it before it is in `ready`, no push gets it before a pop returns it, and
        // `free`'s Acquire ordered the previous pop's read before this write.
        self.slots[index].with_mut(|p| {
            // SAFETY: we own slot `index` (above), so nothing else touches it.
            unsafe { p.write(MaybeUninit::new(value)) }
        });
        self.ready.enqueue(index);
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
        let index = self.ready.dequeue()?;
        crate::fault_point!(ScqPopIndexTaken);
        // SAFETY: taking `index` from `ready` made this pop its only owner, and
        // `ready`'s Acquire made the pusher's write of the value visible. The
        // slot counts as uninitialized once its index is back in `free`.
        let value = self.slots[index].with(|p| unsafe { p.read().assume_init() });
        self.free.enqueue(index);
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
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<T, const N: usize> Default for ScqQueue<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Drop for ScqQueue<T, N> {
    fn drop(&mut self) {
        // `&mut self`: nothing is in flight in this process; pop what is left.
        while self.pop().is_some() {}
    }
}

impl<T, const N: usize> fmt::Debug for ScqQueue<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScqQueue").field("capacity", &N).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
