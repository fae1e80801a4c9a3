//! A bounded single-producer/multi-consumer ring whose consumers take batches.
//!
//! This is the run queue of a work-stealing scheduler: one owner pushes work,
//! anyone (the owner included) takes it from the other end, and a thief takes
//! several items with one atomic operation so the cost of contention is shared by
//! a batch, not paid per item.
//!
//! # Algorithm
//!
//! The design of Go's per-P run queue and tokio's `multi_thread::queue::Local`
//! (itself from Go's `runqsteal`): the consumer end `head` is one word packing
//! two positions, `(steal, real)`.
//!
//! - `real` is the next item nobody has claimed yet. A consumer claims
//!   `[real, real + k)` with one compare-and-swap that advances `real` by `k`
//!   while leaving `steal` where it was.
//! - `steal` trails `real` while a claimer is still copying its items out of the
//!   slots. The producer measures free space from `steal`, so it never overwrites
//!   a slot that is still being read. When the copy is done the claimer sets
//!   `steal = real` (one store: while `steal != real` no other consumer may claim,
//!   so nothing else writes `head` meanwhile).
//! - The producer alone writes `tail`; an item is published by the `Release` store
//!   of `tail` after its slot was written.
//!
//! So the consumers form a tiny lock around "copy my batch out", held while
//! the batch is handed to the taker's sink (which should only store the items
//! somewhere); a consumer that finds it held gets [`Take::Busy`] back at once
//! instead of waiting, and can look elsewhere.
//!
//! Positions are half-width integers (16 bits on 32-bit targets, 32 bits on
//! 64-bit ones) so both fit in one `usize` — no 64-bit atomics are needed, and
//! the ring builds for `thumbv7em`. They wrap; `N` is a power of two no larger
//! than half their range, so `tail - steal` (wrapping) is always the true count.
//!
//! A consumer that stalls between loading `head` and its claiming CAS must not
//! stall while the positions go once round their range: a CAS that finds
//! `head` back at the value it loaded would claim items by a stale `tail`.
//! On 64-bit targets that takes 2^32 items taken meanwhile; on 32-bit ones
//! 2^16, which a preempted thief can see on a busy ring (tokio's run queue,
//! with the same layout, has the same bound).
//!
//! # Across processes
//!
//! The ring holds no pointers and works in `MAP_SHARED` memory, but it is not
//! live there when a participant is stopped or killed: a consumer stopped or
//! killed while it copies its batch out (between its claim and its release of
//! `steal`) leaves the claim standing, so every other [`take_batch`] answers
//! [`Take::Busy`], [`pop`](Ring::pop) waits until it resumes (for good, if it
//! died), and the producer sees the ring fill up. A producer that dies holding
//! its [`Producer`] leaves the ring without one for good ([`producer`] answers
//! `None`). Where a process may die, use [`take_batch`] (which never waits) or
//! an [`mpmc::ScqQueue`](super::mpmc::ScqQueue), which stays live.
//!
//! [`take_batch`]: Ring::take_batch
//! [`producer`]: Ring::producer
//!
//! # Memory ordering
//!
//! - Slot write, then `tail` store `Release`; consumers load `tail` `Acquire`:
//!   a consumer that sees an item sees its contents.
//! - Slot read, then `head` store `Release` (setting `steal = real`); the
//!   producer loads `head` `Acquire`: a slot is read before it is overwritten.
//! - The claiming CAS is `AcqRel`, and consumers load `head` `Acquire`, so a
//!   consumer that sees a claim also sees the `tail` the claimer saw: `tail` read
//!   afterwards is never behind `real`.
//!
//! # Example
//!
//! ```
//! use ply_core::queue::spmc::{Ring, Take};
//!
//! let ring = Ring::<u32, 8>::new();
//! let mut owner = ring.producer().expect("nobody else is producing");
//! for i in 0..6 {
//!     owner.push(i).unwrap();
//! }
//! // A thief takes about half of what it sees, in order, with one CAS.
//! let mut stolen = Vec::new();
//! assert_eq!(ring.take_batch(8, |x| stolen.push(x)), Take::Items(3));
//! assert_eq!(stolen, [0, 1, 2]);
//! assert_eq!(ring.pop(), Some(3)); // one at a time also works, from the same end
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::primitive::{AtomicBool, AtomicUsize, Ordering, UnsafeCell};

/// Bits of one position; two positions share a `usize`.
const HALF: u32 = usize::BITS / 2;
/// Positions wrap modulo `2^HALF`.
const POS_MASK: usize = (1 << HALF) - 1;

#[inline]
fn pack(steal: usize, real: usize) -> usize {
    (steal << HALF) | real
}

#[inline]
fn unpack(head: usize) -> (usize, usize) {
    (head >> HALF, head & POS_MASK)
}

/// The outcome of [`Ring::take_batch`].
///
/// # Example
///
/// ```
/// use ply_core::queue::spmc::{Ring, Take};
/// let ring = Ring::<u8, 4>::new();
/// assert_eq!(ring.take_batch(4, drop), Take::Empty);
/// ring.producer().unwrap().push(1).unwrap();
/// assert_eq!(ring.take_batch(4, drop), Take::Items(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// This many items (at least one) were handed to the sink, oldest first.
    Items(usize),
    /// The ring was empty.
    Empty,
    /// Another consumer was copying its batch out; nothing was taken. Retry, or
    /// look for work elsewhere.
    Busy,
}

/// A bounded SPMC ring of capacity `N` (a power of two), storing items inline.
///
/// At most one [`Producer`] exists at a time ([`Ring::producer`] hands it out);
/// any number of threads take items through `&Ring`. Items left in the ring when
/// it is dropped are dropped.
///
/// # Example
///
/// ```
/// use ply_core::queue::spmc::Ring;
///
/// let ring = Ring::<String, 4>::new();
/// let mut tx = ring.producer().unwrap();
/// assert!(ring.producer().is_none()); // one producer at a time
/// tx.push("job".to_owned()).unwrap();
/// std::thread::scope(|s| {
///     s.spawn(|| assert_eq!(ring.pop().as_deref(), Some("job")));
/// });
/// assert!(ring.is_empty());
/// ```
pub struct Ring<T, const N: usize> {
    /// `(steal, real)`, see the module docs. Written by consumers.
    head: CachePadded<AtomicUsize>,
    /// The next free position. Written only by the producer.
    tail: CachePadded<AtomicUsize>,
    /// Whether a [`Producer`] is live.
    producing: AtomicBool,
    /// Positions in `[real, tail)` hold published, unclaimed items; those in
    /// `[steal, real)` are being copied out by a claimer.
    slots: [UnsafeCell<MaybeUninit<T>>; N],
}

// SAFETY: each item moves from the one producer to exactly one consumer (the CAS
// on `head` gives each position to one claimer), possibly on another thread:
// that needs `T: Send` and nothing more — no `&T` is ever shared.
unsafe impl<T: Send, const N: usize> Sync for Ring<T, N> {}
// SAFETY: the ring owns its items; moving it moves them.
unsafe impl<T: Send, const N: usize> Send for Ring<T, N> {}

impl<T, const N: usize> Ring<T, N> {
    const VALID_CAPACITY: () = assert!(
        N.is_power_of_two() && N <= 1 << (HALF - 1),
        "spmc::Ring capacity N must be a power of two, at most 2^15 on 32-bit targets"
    );

    /// Creates an empty ring. `const`, so it can initialize a `static`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spmc::Ring;
    /// static RUN_QUEUE: Ring<u32, 64> = Ring::new();
    /// assert_eq!(RUN_QUEUE.capacity(), 64);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        let () = Self::VALID_CAPACITY;
        Ring {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            producing: AtomicBool::new(false),
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; N],
        }
    }

    /// Creates an empty ring (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        let () = Self::VALID_CAPACITY;
        Ring {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            producing: AtomicBool::new(false),
            slots: core::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
        }
    }

    /// The capacity `N`.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_core::queue::spmc::Ring::<u8, 16>::new().capacity(), 16);
    /// ```
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The producer handle, unless one is live already (`None`). Dropping it
    /// lets the next caller become the producer.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spmc::Ring;
    /// let ring = Ring::<u8, 2>::new();
    /// let tx = ring.producer().unwrap();
    /// assert!(ring.producer().is_none());
    /// drop(tx);
    /// assert!(ring.producer().is_some());
    /// ```
    pub fn producer(&self) -> Option<Producer<'_, T, N>> {
        // Acquire: pairs with the Release in the previous producer's drop, so we
        // start from the `tail` it published.
        self.producing
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        Some(Producer {
            ring: self,
            _not_send: PhantomData,
        })
    }

    /// The number of unclaimed items (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spmc::Ring;
    /// let ring = Ring::<u8, 4>::new();
    /// ring.producer().unwrap().push(1).unwrap();
    /// assert_eq!(ring.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        // Acquire on head first: see the module docs — the tail read after it is
        // never behind `real`.
        let (_, real) = unpack(self.head.load(Ordering::Acquire));
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(real) & POS_MASK
    }

    /// Whether there is no unclaimed item (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(ply_core::queue::spmc::Ring::<u8, 4>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the oldest item, if there is one. Waits (briefly, spinning) while
    /// another consumer copies its batch out, so `None` really means "empty".
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spmc::Ring;
    /// let ring = Ring::<char, 4>::new();
    /// let mut tx = ring.producer().unwrap();
    /// tx.push('a').unwrap();
    /// tx.push('b').unwrap();
    /// assert_eq!(ring.pop(), Some('a'));
    /// assert_eq!(ring.pop(), Some('b'));
    /// assert_eq!(ring.pop(), None);
    /// ```
    pub fn pop(&self) -> Option<T> {
        let backoff = crate::primitive::Backoff::new();
        loop {
            let mut out = None;
            match self.take_batch(1, |x| out = Some(x)) {
                Take::Items(_) => return out,
                Take::Empty => return None,
                Take::Busy => backoff.snooze(),
            }
        }
    }

    /// Claims up to `max` items (a `max` of 0 counts as 1) — half of those
    /// present, rounded up — and passes
    /// them, oldest first, to `sink`. Other consumers wait while `sink` runs, so
    /// it should only store the items (push them into a buffer or another ring).
    /// In particular it must not take from this ring: a `take_batch` there
    /// answers [`Take::Busy`], and a [`pop`](Ring::pop) waits for the sink to
    /// finish, which is waiting for it, for ever.
    ///
    /// If `sink` panics, the items not yet handed over are dropped and the ring
    /// stays usable.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spmc::{Ring, Take};
    /// let ring = Ring::<u32, 16>::new();
    /// let mut tx = ring.producer().unwrap();
    /// for i in 0..10 {
    ///     tx.push(i).unwrap();
    /// }
    /// let mut got = Vec::new();
    /// assert_eq!(ring.take_batch(3, |x| got.push(x)), Take::Items(3)); // capped by max
    /// assert_eq!(ring.take_batch(100, |x| got.push(x)), Take::Items(4)); // half of 7
    /// assert_eq!(got, [0, 1, 2, 3, 4, 5, 6]);
    /// ```
    pub fn take_batch(&self, max: usize, mut sink: impl FnMut(T)) -> Take {
        let max = max.max(1);
        let mut head = self.head.load(Ordering::Acquire);
        let (real, count) = loop {
            let (steal, real) = unpack(head);
            if steal != real {
                return Take::Busy;
            }
            let tail = self.tail.load(Ordering::Acquire);
            let available = tail.wrapping_sub(real) & POS_MASK;
            if available == 0 {
                return Take::Empty;
            }
            let count = (available - available / 2).min(max);
            let claimed = pack(steal, (real + count) & POS_MASK);
            // AcqRel: Release so a consumer that reads this `head` also sees the
            // `tail` we read (module docs); Acquire to pair with the previous
            // claimer's Release of `steal` (its slot reads precede our claim).
            match self
                .head
                .compare_exchange(head, claimed, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break (real, count),
                Err(actual) => head = actual,
            }
        };
        // From here `[real, real + count)` is ours; `steal` still guards it
        // against the producer. The guard releases it even if `sink` panics.
        let mut claim = Claim {
            ring: self,
            next: real,
            end: (real + count) & POS_MASK,
        };
        while claim.next != claim.end {
            // SAFETY: the position was published (it is below the `tail` we
            // acquired) and claimed by our CAS alone; the producer will not
            // overwrite it before we move `steal` past it.
            let item = unsafe { claim.ring.read_slot(claim.next) };
            claim.next = (claim.next + 1) & POS_MASK;
            sink(item);
        }
        Take::Items(count)
    }

    /// Appends `value` as [`Producer::push_within`] does, without a handle: for
    /// an owner that is the ring's producer for its whole life (a scheduler's
    /// worker and its own run queue) and cannot hold a borrowing [`Producer`].
    ///
    /// # Safety
    ///
    /// No other push (through this function or a live [`Producer`]) may run
    /// concurrently, and pushes from different threads must be ordered by
    /// happens-before (for instance, all made by one thread).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spmc::Ring;
    /// let ring = Ring::<u8, 4>::new();
    /// // SAFETY: this thread is the only one that pushes to `ring`.
    /// unsafe { ring.push_unchecked(5, 4).unwrap() };
    /// assert_eq!(ring.pop(), Some(5));
    /// ```
    #[inline]
    pub unsafe fn push_unchecked(&self, value: T, limit: usize) -> Result<(), T> {
        // Relaxed: only producers write `tail`, and the contract orders them.
        let tail = self.tail.load(Ordering::Relaxed);
        // Acquire: pairs with a claimer's Release of `steal`, so its reads of the
        // slots we may now reuse are finished.
        let (steal, _) = unpack(self.head.load(Ordering::Acquire));
        if tail.wrapping_sub(steal) & POS_MASK >= limit.min(N) {
            return Err(value);
        }
        // SAFETY: consumers touch only `[steal, tail)`, and `tail - steal < N`,
        // so this slot is outside it; by the contract we are the only producer.
        self.slots[tail & (N - 1)].with_mut(|p| unsafe {
            (*p).write(value);
        });
        // Release: publishes the slot write to consumers that acquire `tail`.
        self.tail.store((tail + 1) & POS_MASK, Ordering::Release);
        Ok(())
    }

    /// Moves the item at `pos` out of its slot.
    ///
    /// # Safety
    ///
    /// `pos` holds an initialized item that the caller alone has claimed.
    unsafe fn read_slot(&self, pos: usize) -> T {
        // SAFETY: per the contract, the slot is initialized and no one else reads
        // or writes it until the caller releases the claim.
        self.slots[pos & (N - 1)].with(|p| unsafe { (*p).assume_init_read() })
    }
}

/// A claimed range being copied out; releases it (`steal = real`) on drop.
struct Claim<'a, T, const N: usize> {
    ring: &'a Ring<T, N>,
    next: usize,
    end: usize,
}

impl<T, const N: usize> Drop for Claim<'_, T, N> {
    fn drop(&mut self) {
        // Only after a panicking sink: drop what it did not get.
        while self.next != self.end {
            // SAFETY: as in `take_batch`, these claimed positions are ours.
            drop(unsafe { self.ring.read_slot(self.next) });
            self.next = (self.next + 1) & POS_MASK;
        }
        // Release: our slot reads happen before the producer, which loads `head`
        // with Acquire, reuses them. No one else writes `head` while
        // `steal != real`, so a store (not a CAS) is enough.
        self.ring
            .head
            .store(pack(self.end, self.end), Ordering::Release);
    }
}

impl<T, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Drop for Ring<T, N> {
    fn drop(&mut self) {
        // Each pop moves past its item before the item is dropped.
        crate::queue::storage::drop_each(|| self.pop().is_some());
    }
}

impl<T, const N: usize> fmt::Debug for Ring<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("spmc::Ring")
            .field("len", &self.len())
            .field("capacity", &N)
            .finish()
    }
}

/// The one pushing end of a [`Ring`]; `!Sync`, so only its holder pushes.
///
/// # Example
///
/// ```
/// use ply_core::queue::spmc::Ring;
/// let ring = Ring::<u8, 2>::new();
/// let mut tx = ring.producer().unwrap();
/// assert_eq!(tx.push(1), Ok(()));
/// assert_eq!(tx.push(2), Ok(()));
/// assert_eq!(tx.push(3), Err(3)); // full
/// ```
pub struct Producer<'a, T, const N: usize> {
    ring: &'a Ring<T, N>,
    /// Neither `Sync` (two threads pushing at once) nor `Send`: the role is
    /// given back on drop, so a copy handed to a forked child would be given
    /// back by the parent while the child still pushes.
    _not_send: PhantomData<*const ()>,
}

impl<T, const N: usize> Producer<'_, T, N> {
    /// Appends `value`, or gives it back if the ring is full.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spmc::Ring;
    /// let ring = Ring::<u8, 4>::new();
    /// ring.producer().unwrap().push(9).unwrap();
    /// assert_eq!(ring.pop(), Some(9));
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        self.push_within(value, N)
    }

    /// Appends `value` if fewer than `limit` items (claimed-but-not-copied ones
    /// included) are in the ring; otherwise gives it back. For a run queue that
    /// honours a configurable bound below `N`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spmc::Ring;
    /// let ring = Ring::<u8, 8>::new();
    /// let mut tx = ring.producer().unwrap();
    /// assert_eq!(tx.push_within(1, 1), Ok(()));
    /// assert_eq!(tx.push_within(2, 1), Err(2));
    /// ```
    #[inline]
    pub fn push_within(&mut self, value: T, limit: usize) -> Result<(), T> {
        // SAFETY: a `Producer` is the one live producer of its ring (`producer()`
        // hands out one at a time) and `!Sync`, so no other push runs now.
        unsafe { self.ring.push_unchecked(value, limit) }
    }

    /// The ring this producer feeds.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spmc::Ring;
    /// let ring = Ring::<u8, 4>::new();
    /// let tx = ring.producer().unwrap();
    /// assert!(core::ptr::eq(tx.ring(), &ring));
    /// ```
    pub fn ring(&self) -> &Ring<T, N> {
        self.ring
    }
}

impl<T, const N: usize> Drop for Producer<'_, T, N> {
    fn drop(&mut self) {
        // Release: the next producer, which acquires the flag, sees our `tail`.
        self.ring.producing.store(false, Ordering::Release);
    }
}

impl<T, const N: usize> fmt::Debug for Producer<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("spmc::Producer")
            .field("ring", self.ring)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
