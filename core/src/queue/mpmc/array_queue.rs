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
//! `usize` harmlessly because everything compares with equality. Each slot carries
//! a *stamp* that says what the slot is waiting for:
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
//! [`ScqQueue`](super::ScqQueue), which is both linearizable and live. See
//! `DESIGN.md`, "Crash and preemption tolerance".
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
use crate::sync::patience::Forever;
use crate::sync::{Patience, Spins};

mod error;
pub use error::{TryPopError, TryPushError};

/// One cell of the queue: a value and the stamp that says who may touch it next.
struct Slot<T> {
    /// See the state table in the module docs.
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
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
pub struct ArrayQueue<T, const N: usize> {
    /// Next position to pop, as `lap | index` (see module docs).
    head: CachePadded<AtomicUsize>,
    /// Next position to push, as `lap | index`.
    tail: CachePadded<AtomicUsize>,
    slots: [Slot<T>; N],
}

// SAFETY: values move from the pushing thread to the popping thread, which needs
// `T: Send`; no `&T` is ever handed out, so `T: Sync` is not needed. Every slot
// access is made exclusive by the claim protocol described in the module docs.
unsafe impl<T: Send, const N: usize> Sync for ArrayQueue<T, N> {}

impl<T, const N: usize> ArrayQueue<T, N> {
    /// Positions per lap: the smallest power of two above `N`, so `lap | index`
    /// never collides and `index + 1` never carries into the lap bits.
    const ONE_LAP: usize = {
        assert!(
            N >= 1 && N <= usize::MAX / 4,
            "mpmc::ArrayQueue capacity N must be at least 1 and at most usize::MAX / 4"
        );
        (N + 1).next_power_of_two()
    };

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
        let _ = Self::ONE_LAP;
        let mut slots = [const {
            Slot {
                stamp: AtomicUsize::new(0),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }
        }; N];
        // Slot i starts ready for the push at position `0 | i` of lap 0.
        let mut i = 0;
        while i < N {
            slots[i].stamp = AtomicUsize::new(i);
            i += 1;
        }
        ArrayQueue {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots,
        }
    }

    /// Creates an empty queue (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        let _ = Self::ONE_LAP;
        ArrayQueue {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: core::array::from_fn(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }),
        }
    }

    /// The position after `pos`: the next index, or index 0 of the next lap.
    #[inline(always)]
    fn next_position(pos: usize) -> usize {
        let index = pos & (Self::ONE_LAP - 1);
        if index + 1 < N {
            pos + 1
        } else {
            (pos & !(Self::ONE_LAP - 1)).wrapping_add(Self::ONE_LAP)
        }
    }

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
    pub fn push_with(&self, value: T, mut patience: impl Patience) -> Result<(), TryPushError<T>> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[tail & (Self::ONE_LAP - 1)];
            // Acquire: pairs with the Release stamp store of the pop that emptied
            // this slot, so its read of the old value is done before we write.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                // The slot is free for this lap: try to claim position `tail`.
                // SeqCst: the claim publishes nothing (the stamp store does), but
                // it must be in the total order the empty verdict of `pop` reads
                // (module docs, "Memory ordering").
                match self.tail.compare_exchange_weak(
                    tail,
                    Self::next_position(tail),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        seq_cst_point();
                        crate::fault_point!(ArrayPushClaimed);
                        slot.value.with_mut(|p| {
                            // SAFETY: the claim of `tail` makes us this slot's only
                            // writer until we publish; its old value was taken.
                            unsafe { p.write(MaybeUninit::new(value)) }
                        });
                        // Release: publishes the value to the pop that Acquires it.
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(current) => {
                        // Another producer took it: try the position it left us.
                        tail = current;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(Self::ONE_LAP) == tail + 1 {
                // The slot still holds the item of the previous lap. If `head` is
                // still at that item, the queue is full. Otherwise its consumer
                // has claimed it and is reading it: the queue is not full.
                // SeqCst fence: see "Memory ordering" in the module docs.
                fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(Self::ONE_LAP) == tail {
                    return Err(TryPushError::Full(value));
                }
                match self.in_flight(&self.tail, &mut tail, &mut patience, &backoff) {
                    InFlight::Retry => {}
                    InFlight::GaveUp => return Err(TryPushError::Busy(value)),
                }
            } else {
                // Our `tail` is stale (others pushed since): reload and retry.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// After finding the slot at `*position` (a copy of `end`) claimed by an
    /// operation in flight: either others have moved `end` on since (our view
    /// was stale: retry at once from there), or the caller waits for that
    /// operation — one backoff step, yielding to the OS once backed off — or
    /// gives up if `patience` has run out.
    fn in_flight(
        &self,
        end: &AtomicUsize,
        position: &mut usize,
        patience: &mut impl Patience,
        backoff: &Backoff,
    ) -> InFlight {
        let current = end.load(Ordering::Relaxed);
        if current != *position {
            *position = current;
            return InFlight::Retry;
        }
        if !patience.keep_waiting() {
            return InFlight::GaveUp;
        }
        if backoff.is_completed() {
            // The party in flight may be preempted: give it the CPU.
            yield_now();
        } else {
            backoff.snooze();
        }
        *position = end.load(Ordering::Relaxed);
        InFlight::Retry
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
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[tail & (Self::ONE_LAP - 1)];
            // Acquire: as in `push`; also makes the previous lap's value visible in
            // case we evict it below.
            let stamp = slot.stamp.load(Ordering::Acquire);
            let next = Self::next_position(tail);
            if stamp == tail {
                // Free: push exactly as `push` does (see there for the orderings).
                if self
                    .tail
                    .compare_exchange_weak(tail, next, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
                {
                    seq_cst_point();
                    slot.value.with_mut(|p| {
                        // SAFETY: as in `push`: the claim makes the slot ours.
                        unsafe { p.write(MaybeUninit::new(value)) }
                    });
                    slot.stamp.store(tail + 1, Ordering::Release);
                    return None;
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else if stamp.wrapping_add(Self::ONE_LAP) == tail + 1 {
                // Full: the oldest item is in this very slot, at `head = tail - lap`.
                // Claim it as a consumer would, by moving `head` past it.
                // Exclusivity comes from the CAS, visibility from the stamp
                // Acquire; SeqCst (here and on the `tail` store) keeps both moves
                // in the total order the empty/full verdicts read.
                let head = tail.wrapping_sub(Self::ONE_LAP);
                let new_head = next.wrapping_sub(Self::ONE_LAP);
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
                    let old = slot.value.with_mut(|p| unsafe {
                        core::ptr::replace(p, MaybeUninit::new(value)).assume_init()
                    });
                    // Release: publishes the new value to its pop.
                    slot.stamp.store(tail + 1, Ordering::Release);
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
    pub fn pop_with(&self, mut patience: impl Patience) -> Result<T, TryPopError> {
        let backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[head & (Self::ONE_LAP - 1)];
            // Acquire: pairs with the Release stamp store of the push that filled
            // this slot, so its value is visible.
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head + 1 {
                // Full for this lap: try to claim position `head`. SeqCst: as in
                // `push_with`, for the total order of claims and verdicts.
                match self.head.compare_exchange_weak(
                    head,
                    Self::next_position(head),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        seq_cst_point();
                        crate::fault_point!(ArrayPopClaimed);
                        // SAFETY: winning the claim makes us the only reader of this
                        // slot, whose value the producer initialized (stamp Acquire).
                        let value = slot.value.with(|p| unsafe { p.read().assume_init() });
                        // Release: our read is done before the next lap's push
                        // (which Acquires this stamp) overwrites the slot.
                        slot.stamp
                            .store(head.wrapping_add(Self::ONE_LAP), Ordering::Release);
                        return Ok(value);
                    }
                    Err(current) => {
                        head = current;
                        backoff.spin();
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
                match self.in_flight(&self.head, &mut head, &mut patience, &backoff) {
                    InFlight::Retry => {}
                    InFlight::GaveUp => return Err(TryPopError::Busy),
                }
            } else {
                // Our `head` is stale (others popped since): reload and retry.
                backoff.snooze();
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
                let hix = head & (Self::ONE_LAP - 1);
                let tix = tail & (Self::ONE_LAP - 1);
                return if hix < tix {
                    tix - hix
                } else if hix > tix {
                    N - hix + tix
                } else if tail == head {
                    0
                } else {
                    N
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
        self.len() == N
    }

    /// The capacity `N`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::ArrayQueue;
    /// assert_eq!(ArrayQueue::<u8, 7>::new().capacity(), 7);
    /// ```
    pub const fn capacity(&self) -> usize {
        N
    }
}

impl<T, const N: usize> Default for ArrayQueue<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Drop for ArrayQueue<T, N> {
    fn drop(&mut self) {
        // `&mut self`: no operation is in flight here. Walk the `len` positions
        // from `head`, dropping each item whose stamp says it was published (a
        // process that died mid-push may have left an unpublished hole).
        let len = self.len();
        let mut pos = self.head.load(Ordering::Relaxed);
        for _ in 0..len {
            let slot = &self.slots[pos & (Self::ONE_LAP - 1)];
            if slot.stamp.load(Ordering::Relaxed) == pos + 1 {
                // SAFETY: the stamp says this slot holds the initialized item of
                // position `pos`; each is dropped once as `pos` walks past it.
                slot.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
            }
            pos = Self::next_position(pos);
        }
    }
}

impl<T, const N: usize> fmt::Debug for ArrayQueue<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayQueue")
            .field("capacity", &N)
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
