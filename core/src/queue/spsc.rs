//! A bounded, wait-free single-producer/single-consumer ring.
//!
//! # Algorithm
//!
//! The classic Lamport ring (L. Lamport, "Specifying Concurrent Program Modules",
//! TOPLAS 1983) with the two refinements that make it fast on real caches, as in
//! [rtrb] and the "FastForward"/"MCRingBuffer" line of work:
//!
//! 1. **Positions run modulo `2N`**, not `N`. With positions in `0..2N` the ring can
//!    tell "full" (`tail - head == N`) from "empty" (`tail == head`) without
//!    wasting a slot, and without requiring `N` to be a power of two. The slot of
//!    a position is `pos mod N`.
//! 2. **Each side caches the other side's position.** The producer only re-reads
//!    `head` when its cached copy says the ring is full; the consumer only re-reads
//!    `tail` when its cached copy says the ring is empty. (The producer keeps its
//!    copy as the `tail` at which the ring is full, `head + N`, so that both
//!    tests are one compare of positions.) In steady state each
//!    operation touches only its own cache line (plus the slot), so the two cores
//!    do not bounce the index lines back and forth on every item. `head` and `tail`
//!    sit on separate cache lines ([`CachePadded`]) for the same reason.
//!
//! Only the producer writes `tail` and only the consumer writes `head`, so no
//! read-modify-write is ever needed: every operation finishes in a bounded number
//! of its own steps (wait-free).
//!
//! The consumer learns of new items from `tail`, not from a "full" flag in each
//! slot (FastForward, Giacomoni et al., PPoPP 2008). A per-slot flag saves the
//! transfer of `tail`'s line when the consumer waits on every item, but one
//! read of `tail` reports every item published since the last, where a flag
//! reports one slot, and the waiting consumer then polls the very line the
//! producer writes next. Measured beside this ring and rtrb, a per-slot
//! sequence prototype waited less per item than this ring when both waited on
//! every item, but never reached the streaming state and trailed rtrb
//! (BENCHMARKS.md, issue 15 target 1). It would also break the contiguous
//! slots that the chunk API and the C ABI hand out.
//!
//! # Memory ordering
//!
//! - The producer writes a slot, then stores `tail` with `Release`; the consumer
//!   loads `tail` with `Acquire`. So a consumer that sees the new `tail` sees the
//!   slot's contents.
//! - The consumer moves a value out of a slot, then stores `head` with `Release`;
//!   the producer loads `head` with `Acquire`. So the consumer's read of a slot
//!   happens before the producer overwrites it.
//!
//! # Across processes
//!
//! A [`Ring`] holds no pointers, only two positions and the slots, so it works
//! when placed in memory shared between processes (an anonymous `MAP_SHARED`
//! mapping made before `fork()`), for item types that are themselves plain data
//! (no pointers, no heap: `u64`, `[u8; 64]`, `#[repr(C)]` structs of those).
//! The rules:
//!
//! - Exactly one process uses the [`Producer`] and exactly one uses the
//!   [`Consumer`]. Handles made before `fork()` are copied into the child; each
//!   process must simply not use the side that is not its own (the handles have no
//!   `Drop`, so forgetting or dropping the unused one is harmless).
//! - Items must not own heap memory or pointers into one process's address space.
//! - If the producer dies mid-push, the half-written item is never published: the
//!   ring stays consistent and the item is lost. If the consumer dies mid-pop, the
//!   item was copied out but `head` did not move: a new consumer sees it again.
//! - The ring must be dropped (or never dropped) by one process only.
//!
//! [rtrb]: https://docs.rs/rtrb
//!
//! # Example
//!
//! ```
//! use ply_core::queue::spsc::Ring;
//!
//! let mut ring = Ring::<u64, 4>::new();
//! let (mut tx, mut rx) = ring.split();
//! std::thread::scope(|s| {
//!     s.spawn(move || {
//!         for i in 0..1000 {
//!             // Retry while full; a real program might back off or park.
//!             let mut item = i;
//!             while let Err(back) = tx.push(item) {
//!                 item = back;
//!                 std::hint::spin_loop();
//!             }
//!         }
//!     });
//!     let mut expected = 0;
//!     while expected < 1000 {
//!         if let Some(v) = rx.pop() {
//!             assert_eq!(v, expected); // FIFO
//!             expected += 1;
//!         }
//!     }
//! });
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

#[cfg(not(loom))]
use super::CapacityError;
#[cfg(not(loom))]
use super::storage::{Borrowed, ContiguousSlots};
use super::storage::{Inline, Slots};
use crate::primitive::{AtomicUsize, Ordering};

/// A bounded SPSC ring of capacity `N` (any `N ≥ 1`), storing items inline.
///
/// Make one with [`Ring::new`] (a `const fn`, so a `static` works), then
/// [`split`](Ring::split) it into its [`Producer`] and [`Consumer`].
///
/// Items still in the ring when it is dropped are dropped exactly once.
///
/// # Example
///
/// ```
/// use ply_core::queue::spsc::Ring;
///
/// let mut ring = Ring::<&str, 2>::new();
/// let (mut tx, mut rx) = ring.split();
/// assert_eq!(tx.push("a"), Ok(()));
/// assert_eq!(tx.push("b"), Ok(()));
/// assert_eq!(tx.push("c"), Err("c")); // full: the value comes back
/// assert_eq!(rx.pop(), Some("a"));
/// assert_eq!(rx.pop(), Some("b"));
/// assert_eq!(rx.pop(), None);
/// ```
pub type Ring<T, const N: usize> = RingBase<Inline<T, N>>;

/// A bounded SPSC ring over a buffer the caller owns, with the capacity chosen at
/// run time (the buffer's length). The same algorithm and API as [`Ring`].
///
/// # Example
///
/// ```
/// use core::mem::MaybeUninit;
/// use ply_core::queue::spsc::SliceRing;
///
/// let mut buffer = [MaybeUninit::<u32>::uninit(); 3]; // capacity 3, any size works
/// let mut ring = SliceRing::new(&mut buffer).unwrap();
/// let (mut tx, mut rx) = ring.split();
/// assert_eq!(tx.push_slice(&[1, 2, 3, 4]), 3);
/// assert_eq!(rx.pop(), Some(1));
/// assert_eq!(ring.capacity(), 3);
/// ```
#[cfg(not(loom))]
pub type SliceRing<'a, T> = RingBase<Borrowed<'a, T>>;

/// The SPSC ring, generic over where its slots live ([`Slots`]): [`Ring`] keeps
/// them inline, [`SliceRing`] in a caller's buffer, and ply's C ABI in C memory.
///
/// See [`Ring`] for the guarantees; they hold for every storage.
///
/// # Example
///
/// ```
/// use ply_core::queue::spsc::RingBase;
/// use ply_core::queue::storage::Inline;
///
/// let mut ring = RingBase::<Inline<u8, 2>>::new(); // the same type as Ring<u8, 2>
/// ring.split().0.push(1).unwrap();
/// assert_eq!(ring.len(), 1);
/// ```
pub struct RingBase<S: Slots> {
    /// Consumer position in `0..2N`; the next item to read is in slot `head mod N`.
    /// Written only by the consumer. (`N` is the capacity.)
    head: CachePadded<AtomicUsize>,
    /// Producer position in `0..2N`; the next free slot is `tail mod N`.
    /// Written only by the producer. `tail - head (mod 2N)` is the number of items.
    tail: CachePadded<AtomicUsize>,
    /// The storage. Slots in `[head, tail)` (mod 2N, mod N) hold initialized items.
    slots: S,
}

// SAFETY: the ring hands each item from exactly one producer to exactly one
// consumer, which may be on different threads: that needs the items to be
// `Send` (which the storage's `Sync` bound expresses for typed storage), and
// nothing more (no `&T` is ever shared between the two sides at the same time).
unsafe impl<S: Slots + Sync> Sync for RingBase<S> {}

/// The largest capacity of any SPSC ring: positions run in `0..2N`, and a
/// position plus a step of `N` must not overflow.
const MAX_CAPACITY: usize = usize::MAX / 4;

impl<T, const N: usize> RingBase<Inline<T, N>> {
    /// Rejects `N = 0` (a ring that can hold nothing) and `N` so large that
    /// positions in `0..2N` plus a step of `N` could overflow a `usize`.
    const VALID_CAPACITY: () = assert!(
        N >= 1 && N <= MAX_CAPACITY,
        "spsc::Ring capacity N must be at least 1 and at most usize::MAX / 4"
    );

    /// Creates an empty ring. `const`, so it can initialize a `static`.
    ///
    /// A capacity of `N = 0` is rejected at compile time.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// static RING: Ring<u32, 8> = Ring::new();
    /// assert!(RING.is_empty());
    /// assert_eq!(RING.capacity(), 8);
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        let () = Self::VALID_CAPACITY;
        RingBase {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: Inline::new(),
        }
    }

    /// Creates an empty ring (loom build: loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        let () = Self::VALID_CAPACITY;
        RingBase {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            slots: Inline::new(),
        }
    }
}

#[cfg(not(loom))]
impl<'a, T> RingBase<Borrowed<'a, T>> {
    /// Creates an empty ring over `buffer`, of capacity `buffer.len()` (any
    /// length from 1 up; the contents are ignored).
    ///
    /// # Errors
    ///
    /// [`CapacityError::Zero`] for an empty buffer, [`CapacityError::TooLarge`]
    /// beyond `usize::MAX / 4` slots (possible only for zero-sized items).
    ///
    /// # Example
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// use ply_core::queue::spsc::SliceRing;
    ///
    /// let mut buffer = [const { MaybeUninit::<String>::uninit() }; 2];
    /// let mut ring = SliceRing::new(&mut buffer).unwrap();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push("hello".to_string()).unwrap();
    /// assert_eq!(rx.pop().as_deref(), Some("hello"));
    /// ```
    pub fn new(buffer: &'a mut [MaybeUninit<T>]) -> Result<Self, CapacityError> {
        Self::with_slots(Borrowed::new(buffer))
    }
}

impl<S: Slots> RingBase<S> {
    /// Creates an empty ring over `slots`. This is how storage made outside
    /// ply-core (such as the C ABI's) gets a ring; [`Ring::new`] and
    /// [`SliceRing::new`] are the usual ways in.
    ///
    /// # Errors
    ///
    /// [`CapacityError::Zero`] or [`CapacityError::TooLarge`] if the storage's
    /// capacity is 0 or above `usize::MAX / 4`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::RingBase;
    /// use ply_core::queue::storage::Inline;
    ///
    /// let ring = RingBase::with_slots(Inline::<u8, 4>::new()).unwrap();
    /// assert_eq!(ring.capacity(), 4);
    /// ```
    #[cfg(not(loom))]
    pub fn with_slots(slots: S) -> Result<Self, CapacityError> {
        match slots.capacity() {
            0 => Err(CapacityError::Zero),
            capacity if capacity > MAX_CAPACITY => Err(CapacityError::TooLarge {
                capacity,
                max: MAX_CAPACITY,
            }),
            _ => Ok(RingBase {
                head: CachePadded::new(AtomicUsize::new(0)),
                tail: CachePadded::new(AtomicUsize::new(0)),
                slots,
            }),
        }
    }

    /// Splits the ring into its producer and consumer halves.
    ///
    /// The `&mut` borrow guarantees these are the only two handles; when both are
    /// dropped the ring can be split again (items in it stay in it).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 3>::new();
    /// {
    ///     let (mut tx, _rx) = ring.split();
    ///     tx.push(7).unwrap();
    /// }
    /// let (_tx, mut rx) = ring.split();
    /// assert_eq!(rx.pop(), Some(7));
    /// ```
    pub fn split(&mut self) -> (Producer<'_, S>, Consumer<'_, S>) {
        // SAFETY: `&mut self` means no other handle exists, and the two made here
        // are one producer and one consumer.
        unsafe { self.split_unchecked() }
    }

    /// Makes a producer and a consumer from a shared reference: for a ring in a
    /// `static` or in memory shared between processes, where no `&mut` exists.
    ///
    /// # Safety
    ///
    /// At any moment there must be at most one live [`Producer`] and at most one
    /// live [`Consumer`] in use for this ring, across all threads and processes.
    /// (After `fork()`, each process may keep the copy of the handle it uses and
    /// ignore the other.)
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// static RING: Ring<u32, 16> = Ring::new();
    /// // SAFETY: this is the only place the static ring is split.
    /// let (mut tx, mut rx) = unsafe { RING.split_unchecked() };
    /// tx.push(1).unwrap();
    /// assert_eq!(rx.pop(), Some(1));
    /// ```
    pub unsafe fn split_unchecked(&self) -> (Producer<'_, S>, Consumer<'_, S>) {
        // Acquire: pairs with the Release stores of a previous pair of handles, so
        // the new handles start from positions (and slot contents) they published.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        (
            Producer {
                ring: self,
                tail,
                full_at: full_at(head, self.capacity()),
                _not_sync: PhantomData,
            },
            Consumer {
                ring: self,
                head,
                cached_tail: tail,
                _not_sync: PhantomData,
            },
        )
    }

    /// The capacity `N`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    /// assert_eq!(Ring::<u8, 5>::new().capacity(), 5);
    /// ```
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// The storage (for storage types that offer more than slots, such as the
    /// C ABI's layout checks).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    /// use ply_core::queue::storage::Slots;
    /// assert_eq!(Ring::<u8, 5>::new().slots().capacity(), 5);
    /// ```
    pub fn slots(&self) -> &S {
        &self.slots
    }

    /// The number of items, as seen from outside both handles: a snapshot that may
    /// be stale by the time it is used if a producer or consumer is active.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 5>::new();
    /// ring.split().0.push(1).unwrap();
    /// assert_eq!(ring.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        // Read head first: it only grows toward tail, so a tail read afterwards is
        // never "behind" it. The clamp covers a snapshot taken across many laps.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        let capacity = self.capacity();
        distance(head, tail, capacity).min(capacity)
    }

    /// Whether the ring holds no items (a snapshot, see [`len`](Ring::len)).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    /// assert!(Ring::<u8, 5>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring holds `N` items (a snapshot, see [`len`](Ring::len)).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 1>::new();
    /// ring.split().0.push(1).unwrap();
    /// assert!(ring.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }
}

impl<T, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Slots> Drop for RingBase<S> {
    fn drop(&mut self) {
        // `&mut self`: no handle is alive, Relaxed loads see the final positions.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let capacity = self.capacity();
        // SAFETY: slots in [head, tail) hold initialized items that no one else
        // will read; each is dropped once.
        unsafe {
            super::storage::drop_slots(
                &self.slots,
                index(head, capacity),
                distance(head, tail, capacity),
            )
        };
    }
}

impl<S: Slots> fmt::Debug for RingBase<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

/// The writing half of a [`Ring`].
///
/// # Example
///
/// ```
/// use ply_core::queue::spsc::Ring;
///
/// let mut ring = Ring::<u32, 2>::new();
/// let (mut tx, _rx) = ring.split();
/// assert!(!tx.is_full());
/// // Only this producer adds items, so "not full" stays true until it pushes.
/// tx.push(1).unwrap();
/// ```
pub struct Producer<'a, S: Slots> {
    ring: &'a RingBase<S>,
    /// Our own position: a private copy of `ring.tail`, which only we write.
    tail: usize,
    /// The `tail` at which the ring is full, as of the last `head` we read:
    /// that `head` plus `N`, modulo `2N` ([`full_at`]). Keeping this rather
    /// than the `head` itself makes the one-item full test a single compare
    /// (`tail == full_at`), as the consumer's empty test is. The consumer only
    /// moves `head` forward, so this can only under-estimate the free space
    /// (`full_at - tail`), never over-estimate it.
    full_at: usize,
    /// One producer per ring: the handle may move between threads but is not
    /// meant to be shared by reference between them.
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

/// The reading half of a [`Ring`].
///
/// # Example
///
/// ```
/// use ply_core::queue::spsc::Ring;
///
/// let mut ring = Ring::<u32, 2>::new();
/// let (mut tx, mut rx) = ring.split();
/// tx.push(5).unwrap();
/// // Only this consumer removes items, so "not empty" stays true until it pops.
/// assert!(!rx.is_empty());
/// assert_eq!(rx.peek(), Some(&5));
/// assert_eq!(rx.pop(), Some(5));
/// ```
pub struct Consumer<'a, S: Slots> {
    ring: &'a RingBase<S>,
    /// Our own position: a private copy of `ring.head`, which only we write.
    head: usize,
    /// The last `tail` we read. The producer only moves it forward, so this can
    /// only under-estimate the items available, never over-estimate them.
    cached_tail: usize,
    /// See [`Producer`].
    _not_sync: PhantomData<core::cell::Cell<()>>,
}

impl<'a, S: Slots> Producer<'a, S> {
    /// The ring this handle pushes into.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 2>::new();
    /// let (tx, _rx) = ring.split();
    /// assert_eq!(tx.ring().capacity(), 2);
    /// ```
    pub fn ring(&self) -> &'a RingBase<S> {
        self.ring
    }

    /// Free slots, refreshing the cached consumer position only if needed to
    /// find at least `wanted` of them.
    #[inline]
    fn free_slots(&mut self, wanted: usize) -> usize {
        let capacity = self.capacity();
        let mut free = distance(self.tail, self.full_at, capacity);
        if free < wanted {
            self.refresh_full_at();
            free = distance(self.tail, self.full_at, capacity);
        }
        free
    }

    /// Re-reads the consumer's position, moving `full_at` forward.
    #[inline(always)]
    fn refresh_full_at(&mut self) {
        // Acquire: pairs with the consumer's Release store of `head`, so the
        // consumer is done reading every slot before `head` that we reuse.
        let head = self.ring.head.load(Ordering::Acquire);
        self.full_at = full_at(head, self.capacity());
    }

    /// Whether no slot is free, re-reading `head` only if the cached `full_at`
    /// says so: [`free_slots`](Self::free_slots)`(1) == 0` as one compare of
    /// positions, for the one-item path.
    #[inline(always)]
    fn is_full_now(&mut self) -> bool {
        if self.tail != self.full_at {
            return false;
        }
        self.refresh_full_at();
        self.tail == self.full_at
    }

    /// Free slots right now. Only the consumer can change this, and only upward:
    /// if it returns `k`, the next `k` pushes succeed.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 3>::new();
    /// let (mut tx, _rx) = ring.split();
    /// tx.push(1).unwrap();
    /// assert_eq!(tx.slots(), 2);
    /// ```
    pub fn slots(&mut self) -> usize {
        self.free_slots(self.capacity())
    }

    /// Whether the ring is full. If this returns `false`, the next push succeeds.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 1>::new();
    /// let (mut tx, _rx) = ring.split();
    /// tx.push(1).unwrap();
    /// assert!(tx.is_full());
    /// ```
    pub fn is_full(&mut self) -> bool {
        self.free_slots(1) == 0
    }

    /// Items in the ring (the consumer may be removing some concurrently, so this
    /// is an upper bound by the time it is used).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 3>::new();
    /// let (mut tx, _rx) = ring.split();
    /// tx.push(1).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&mut self) -> usize {
        self.capacity() - self.slots()
    }

    /// Whether the ring is empty right now (a snapshot: the consumer only makes it
    /// emptier).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 3>::new();
    /// let (mut tx, _rx) = ring.split();
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// The capacity `N`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 3>::new();
    /// assert_eq!(ring.split().0.capacity(), 3);
    /// ```
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Publishes the first `n` slots after `tail`.
    #[cfg(not(loom))]
    fn commit_slots(&mut self, n: usize) {
        self.tail = advance(self.tail, n, self.capacity());
        // Release: publishes the chunk's slot writes to the consumer's Acquire load.
        self.ring.tail.store(self.tail, Ordering::Release);
    }

    /// Claims the next free slot, lets `write` fill it, and publishes it to the
    /// consumer; returns `false` (calling nothing) if the ring is full.
    ///
    /// For storage whose items are not a Rust type (the C ABI's slots of a
    /// run-time byte size); typed rings use [`push`](Producer::push).
    ///
    /// # Safety
    ///
    /// When `write` returns, the slot must hold a valid item, as the storage
    /// defines it (for `MaybeUninit<T>` slots: an initialized `T`). If `write`
    /// panics, nothing is published.
    ///
    /// # Example
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 1>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// // SAFETY: the closure initializes the slot.
    /// assert!(unsafe { tx.push_in_place(|slot| slot.write(MaybeUninit::new(7))) });
    /// assert!(!unsafe { tx.push_in_place(|_| unreachable!("full")) });
    /// assert_eq!(rx.pop(), Some(7));
    /// ```
    #[inline]
    pub unsafe fn push_in_place(&mut self, write: impl FnOnce(*mut S::Item)) -> bool {
        if self.is_full_now() {
            return false;
        }
        // SAFETY: a slot is free (checked above); `write` initializes it (our
        // caller's promise).
        unsafe { self.write_next(write) };
        true
    }

    /// Writes the free slot at `tail` with `write`, then publishes it.
    ///
    /// # Safety
    ///
    /// At least one slot must be free, and `write` must leave it holding a
    /// valid item.
    #[inline(always)]
    unsafe fn write_next(&mut self, write: impl FnOnce(*mut S::Item)) {
        let capacity = self.capacity();
        // The slot at `tail` is free (the consumer finished with it, see the
        // Acquire in `free_slots`) and only this unique producer writes it.
        self.ring
            .slots
            .with_slot_mut(index(self.tail, capacity), write);
        self.tail = advance_one(self.tail, capacity);
        // Release: publishes the slot write to the consumer's Acquire load of `tail`.
        self.ring.tail.store(self.tail, Ordering::Release);
    }
}

impl<T, S: Slots<Item = MaybeUninit<T>>> Producer<'_, S> {
    /// Adds `value` at the back, or gives it back if the ring is full.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 1>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// assert_eq!(tx.push(1), Ok(()));
    /// assert_eq!(tx.push(2), Err(2));
    /// rx.pop();
    /// assert_eq!(tx.push(2), Ok(()));
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.is_full_now() {
            return Err(value);
        }
        // SAFETY: a slot is free (checked above), and the closure initializes it.
        unsafe { self.write_next(|p| p.write(MaybeUninit::new(value))) };
        Ok(())
    }
}

#[cfg(not(loom))]
impl<'a, T, S: ContiguousSlots<Item = MaybeUninit<T>>> Producer<'a, S> {
    /// Reserves `n` free slots and hands them out as up to two slices (the part
    /// before the end of the array and the part that wraps to its start), to be
    /// filled and then published in one step with
    /// [`commit`](WriteChunkUninit::commit) or
    /// [`fill_from_iter`](WriteChunkUninit::fill_from_iter).
    ///
    /// Fails, reserving nothing, if fewer than `n` slots are free.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// let chunk = tx.write_chunk_uninit(3).unwrap();
    /// assert_eq!(chunk.fill_from_iter(10..), 3); // writes 10, 11, 12 and commits
    /// assert_eq!(rx.pop(), Some(10));
    /// assert!(tx.write_chunk_uninit(3).is_err()); // 2 items in the ring, 2 slots free
    /// ```
    #[cfg(not(loom))]
    pub fn write_chunk_uninit(
        &mut self,
        n: usize,
    ) -> Result<WriteChunkUninit<'_, 'a, T, S>, ChunkError> {
        let free = self.free_slots(n);
        if free < n {
            return Err(ChunkError::TooFewSlots {
                requested: n,
                available: free,
            });
        }
        let capacity = self.capacity();
        let start = index(self.tail, capacity);
        let first_len = n.min(capacity - start);
        let base = self.ring.slots.as_mut_ptr();
        // `start + first_len <= N` and `n - first_len <= start`: both slices lie
        // inside the array and do not overlap. The `n` slots from `tail` are free
        // (the consumer cannot read them until `tail` moves).
        // SAFETY: in bounds and disjoint (above); `&mut self` makes this the only
        // chunk, and `MaybeUninit` makes any content valid.
        let (first, second) = unsafe {
            (
                core::slice::from_raw_parts_mut(base.add(start), first_len),
                core::slice::from_raw_parts_mut(base, n - first_len),
            )
        };
        Ok(WriteChunkUninit {
            first,
            second,
            producer: self,
        })
    }

    /// Pushes as many items from `items` as fit, in order; returns how many.
    /// The whole batch is published with a single store.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5, 6]), 4);
    /// let mut out = [0; 8];
    /// assert_eq!(rx.pop_slice(&mut out), 4);
    /// assert_eq!(&out[..4], &[1, 2, 3, 4]);
    /// ```
    #[cfg(not(loom))]
    pub fn push_slice(&mut self, items: &[T]) -> usize
    where
        T: Copy,
    {
        let n = items.len().min(self.free_slots(items.len()));
        if n == 0 {
            return 0;
        }
        let Ok(mut chunk) = self.write_chunk_uninit(n) else {
            unreachable!("free_slots just reported {n} free slots")
        };
        let (first, second) = chunk.as_mut_slices();
        let (a, b) = items[..n].split_at(first.len());
        for (dst, src) in first.iter_mut().zip(a) {
            dst.write(*src);
        }
        for (dst, src) in second.iter_mut().zip(b) {
            dst.write(*src);
        }
        // SAFETY: both slices (all `n` slots) were just initialized.
        unsafe { chunk.commit_all() };
        n
    }
}

impl<S: Slots> fmt::Debug for Producer<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("ring", self.ring).finish()
    }
}

impl<'a, S: Slots> Consumer<'a, S> {
    /// The ring this handle pops from.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 2>::new();
    /// let (_tx, rx) = ring.split();
    /// assert_eq!(rx.ring().capacity(), 2);
    /// ```
    pub fn ring(&self) -> &'a RingBase<S> {
        self.ring
    }

    /// Items available, refreshing the cached producer position only if needed to
    /// find at least `wanted` of them.
    #[inline]
    fn available(&mut self, wanted: usize) -> usize {
        let capacity = self.capacity();
        let mut avail = distance(self.head, self.cached_tail, capacity);
        if avail < wanted {
            // Acquire: pairs with the producer's Release store of `tail`, so the
            // slot contents written before it are visible here.
            self.cached_tail = self.ring.tail.load(Ordering::Acquire);
            avail = distance(self.head, self.cached_tail, capacity);
        }
        avail
    }

    /// Whether no item is available, re-reading `tail` only if the cached copy
    /// says so: [`available`](Self::available)`(1) == 0` as two comparisons of
    /// positions, for the one-item path.
    #[inline(always)]
    fn is_empty_now(&mut self) -> bool {
        if self.head != self.cached_tail {
            return false;
        }
        // Acquire: as in `available`.
        self.cached_tail = self.ring.tail.load(Ordering::Acquire);
        self.head == self.cached_tail
    }

    /// Items available right now. Only the producer can change this, and only
    /// upward: if it returns `k`, the next `k` pops succeed.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 2>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push(1).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&mut self) -> usize {
        self.available(self.capacity())
    }

    /// Whether the ring is empty. If this returns `false`, the next pop succeeds.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 2>::new();
    /// let (_tx, mut rx) = ring.split();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&mut self) -> bool {
        self.available(1) == 0
    }

    /// Whether the ring is full right now (a snapshot: the producer only makes it
    /// fuller).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 1>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push(1).unwrap();
    /// assert!(rx.is_full());
    /// ```
    pub fn is_full(&mut self) -> bool {
        self.len() == self.capacity()
    }

    /// The capacity `N`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 3>::new();
    /// assert_eq!(ring.split().1.capacity(), 3);
    /// ```
    #[inline(always)]
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Releases the first `n` slots after `head` back to the producer.
    #[cfg(not(loom))]
    fn release_slots(&mut self, n: usize) {
        self.head = advance(self.head, n, self.capacity());
        // Release: our reads of these slots happen before the producer reuses them.
        self.ring.head.store(self.head, Ordering::Release);
    }

    /// Lets `read` take the item at the front, then releases its slot to the
    /// producer; returns `None` (calling nothing) if the ring is empty.
    ///
    /// For storage whose items are not a Rust type (the C ABI's slots of a
    /// run-time byte size); typed rings use [`pop`](Consumer::pop). Whatever
    /// `read` does not move out of the slot is forgotten, never dropped.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 2>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push(5).unwrap();
    /// // SAFETY: the slot holds an initialized `u32` (pop_in_place only calls
    /// // `read` for a published item).
    /// let got = rx.pop_in_place(|slot| unsafe { (*slot).assume_init() });
    /// assert_eq!(got, Some(5));
    /// assert_eq!(rx.pop_in_place(|_| ()), None);
    /// ```
    #[inline]
    pub fn pop_in_place<R>(&mut self, read: impl FnOnce(*const S::Item) -> R) -> Option<R> {
        if self.is_empty_now() {
            return None;
        }
        let capacity = self.capacity();
        // The slot at `head` is before `tail`, so the producer initialized it
        // (visible via the Acquire in `available`), and only this unique
        // consumer reads it; moving `head` past it below marks it free.
        let value = self.ring.slots.with_slot(index(self.head, capacity), read);
        self.head = advance_one(self.head, capacity);
        // Release: our read of the slot happens before the producer, which loads
        // `head` with Acquire, overwrites it.
        self.ring.head.store(self.head, Ordering::Release);
        Some(value)
    }
}

impl<T, S: Slots<Item = MaybeUninit<T>>> Consumer<'_, S> {
    /// Removes the item at the front, or returns `None` if the ring is empty.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<String, 2>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push("x".to_string()).unwrap();
    /// assert_eq!(rx.pop().as_deref(), Some("x"));
    /// assert_eq!(rx.pop(), None);
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        // SAFETY: `pop_in_place` calls the closure only for a slot the producer
        // initialized and published, and marks it uninitialized afterwards, so
        // the value is moved out exactly once.
        self.pop_in_place(|p| unsafe { p.read().assume_init() })
    }

    /// A reference to the item at the front, without removing it.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 2>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// assert_eq!(rx.peek(), None);
    /// tx.push(3).unwrap();
    /// assert_eq!(rx.peek(), Some(&3));
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn peek(&mut self) -> Option<&T> {
        if self.available(1) == 0 {
            return None;
        }
        let head = index(self.head, self.capacity());
        Some(self.ring.slots.with_slot(head, |p| {
            // SAFETY: as in `pop`, the slot is initialized and only this
            // consumer may remove it; the returned borrow of `self` prevents a
            // pop while it lives, and the producer never writes a slot before
            // `head` moves past it.
            unsafe { (*p).assume_init_ref() }
        }))
    }
}

#[cfg(not(loom))]
impl<'a, T, S: ContiguousSlots<Item = MaybeUninit<T>>> Consumer<'a, S> {
    /// Borrows the `n` items at the front as up to two slices (before and after
    /// the wrap of the array). [`commit`](ReadChunk::commit) removes (drops) a
    /// prefix of them in one step; dropping the chunk removes nothing.
    ///
    /// Fails if fewer than `n` items are available.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push_slice(&[1, 2, 3]);
    /// let chunk = rx.read_chunk(3).unwrap();
    /// let (a, b) = chunk.as_slices();
    /// assert_eq!(a.iter().chain(b).sum::<u32>(), 6);
    /// chunk.commit_all();
    /// assert!(rx.is_empty());
    /// ```
    #[cfg(not(loom))]
    pub fn read_chunk(&mut self, n: usize) -> Result<ReadChunk<'_, 'a, T, S>, ChunkError> {
        let avail = self.available(n);
        if avail < n {
            return Err(ChunkError::TooFewItems {
                requested: n,
                available: avail,
            });
        }
        let capacity = self.capacity();
        let start = index(self.head, capacity);
        let first_len = n.min(capacity - start);
        let base = self.ring.slots.as_mut_ptr();
        Ok(ReadChunk {
            // SAFETY: `start < N`, so the pointer stays inside the array.
            first: unsafe { base.add(start) }.cast::<T>(),
            first_len,
            second: base.cast::<T>(),
            second_len: n - first_len,
            consumer: self,
        })
    }

    /// Pops as many items as are available into `out`, in order; returns how many.
    /// The whole batch is released to the producer with a single store.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u16, 8>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push_slice(&[5, 6, 7]);
    /// let mut out = [0; 2];
    /// assert_eq!(rx.pop_slice(&mut out), 2);
    /// assert_eq!(out, [5, 6]);
    /// assert_eq!(rx.pop(), Some(7));
    /// ```
    #[cfg(not(loom))]
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize
    where
        T: Copy,
    {
        let n = out.len().min(self.available(out.len()));
        if n == 0 {
            return 0;
        }
        let Ok(chunk) = self.read_chunk(n) else {
            unreachable!("available just reported {n} items")
        };
        let (a, b) = chunk.as_slices();
        out[..a.len()].copy_from_slice(a);
        out[a.len()..n].copy_from_slice(b);
        chunk.commit_all();
        n
    }
}

impl<S: Slots> fmt::Debug for Consumer<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").field("ring", self.ring).finish()
    }
}

/// `n` reserved free slots of a [`Ring`], from [`Producer::write_chunk_uninit`].
///
/// Fill them through [`as_mut_slices`](Self::as_mut_slices) and publish a prefix
/// with the `unsafe` [`commit`](Self::commit), or let
/// [`fill_from_iter`](Self::fill_from_iter) do both safely. Dropping the chunk
/// publishes nothing (and drops nothing written into it).
#[cfg(not(loom))]
pub struct WriteChunkUninit<'p, 'a, T, S: Slots> {
    first: &'p mut [MaybeUninit<T>],
    second: &'p mut [MaybeUninit<T>],
    producer: &'p mut Producer<'a, S>,
}

#[cfg(not(loom))]
impl<T, S: Slots> WriteChunkUninit<'_, '_, T, S> {
    /// The reserved slots: first the run up to the end of the array, then the run
    /// that wrapped to its start (often empty).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push_slice(&[0, 0, 0]);
    /// rx.pop_slice(&mut [0; 3]);
    /// // tail is now at slot 3: a chunk of 3 wraps after one slot.
    /// let mut chunk = tx.write_chunk_uninit(3).unwrap();
    /// let (a, b) = chunk.as_mut_slices();
    /// assert_eq!((a.len(), b.len()), (1, 2));
    /// ```
    pub fn as_mut_slices(&mut self) -> (&mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) {
        (self.first, self.second)
    }

    /// The number of reserved slots.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 4>::new();
    /// let (mut tx, _rx) = ring.split();
    /// assert_eq!(tx.write_chunk_uninit(2).unwrap().len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    /// Whether zero slots were reserved.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 4>::new();
    /// let (mut tx, _rx) = ring.split();
    /// assert!(tx.write_chunk_uninit(0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Publishes the first `n` reserved slots to the consumer in one step.
    ///
    /// # Safety
    ///
    /// The first `n` slots (in the order `first` then `second`) must have been
    /// initialized, and `n` must not exceed [`len`](Self::len).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// let mut chunk = tx.write_chunk_uninit(2).unwrap();
    /// chunk.as_mut_slices().0[0].write(9);
    /// // SAFETY: slot 0 of the chunk was initialized just above.
    /// unsafe { chunk.commit(1) };
    /// assert_eq!(rx.pop(), Some(9));
    /// assert_eq!(rx.pop(), None);
    /// ```
    pub unsafe fn commit(self, n: usize) {
        debug_assert!(
            n <= self.len(),
            "commit({n}) of a {}-slot chunk",
            self.len()
        );
        self.producer.commit_slots(n);
    }

    /// Publishes every reserved slot.
    ///
    /// # Safety
    ///
    /// Every slot of the chunk must have been initialized.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u32, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// let mut chunk = tx.write_chunk_uninit(1).unwrap();
    /// chunk.as_mut_slices().0[0].write(4);
    /// // SAFETY: the chunk's only slot was initialized.
    /// unsafe { chunk.commit_all() };
    /// assert_eq!(rx.pop(), Some(4));
    /// ```
    pub unsafe fn commit_all(self) {
        let n = self.len();
        self.producer.commit_slots(n);
    }

    /// Writes items from `iter` into the reserved slots until either runs out,
    /// then publishes them; returns how many were written.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<char, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// assert_eq!(tx.write_chunk_uninit(4).unwrap().fill_from_iter("ab".chars()), 2);
    /// assert_eq!(rx.len(), 2);
    /// ```
    pub fn fill_from_iter<I: IntoIterator<Item = T>>(self, iter: I) -> usize {
        let mut iter = iter.into_iter();
        let mut written = 0;
        // Two plain loops, not a `chain`: the common case (no wrap) then compiles
        // to one tight loop.
        'fill: for part in [&mut *self.first, &mut *self.second] {
            for slot in part.iter_mut() {
                match iter.next() {
                    Some(item) => {
                        slot.write(item);
                        written += 1;
                    }
                    None => break 'fill,
                }
            }
        }
        // The iterator may panic above: then nothing is committed and the written
        // items are leaked (not dropped twice, not exposed half-made).
        self.producer.commit_slots(written);
        written
    }
}

/// `n` items at the front of a [`Ring`], from [`Consumer::read_chunk`].
///
/// Read them through [`as_slices`](Self::as_slices); remove a prefix with
/// [`commit`](Self::commit). Dropping the chunk leaves every item in the ring.
#[cfg(not(loom))]
pub struct ReadChunk<'c, 'a, T, S: Slots> {
    first: *mut T,
    first_len: usize,
    second: *mut T,
    second_len: usize,
    consumer: &'c mut Consumer<'a, S>,
}

#[cfg(not(loom))]
impl<T, S: Slots> ReadChunk<'_, '_, T, S> {
    /// The items: first the run up to the end of the array, then the run that
    /// wrapped to its start (often empty).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 2>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push(1).unwrap();
    /// assert_eq!(rx.read_chunk(1).unwrap().as_slices(), (&[1][..], &[][..]));
    /// ```
    pub fn as_slices(&self) -> (&[T], &[T]) {
        // SAFETY: both runs lie inside the array (see `read_chunk`), hold items the
        // producer initialized and published, and stay untouched by the producer
        // until `head` moves past them, which needs this chunk's `commit`.
        unsafe {
            (
                core::slice::from_raw_parts(self.first, self.first_len),
                core::slice::from_raw_parts(self.second, self.second_len),
            )
        }
    }

    /// The number of items in the chunk.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 2>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push(1).unwrap();
    /// assert_eq!(rx.read_chunk(1).unwrap().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.first_len + self.second_len
    }

    /// Whether the chunk has no items.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 2>::new();
    /// let (_tx, mut rx) = ring.split();
    /// assert!(rx.read_chunk(0).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the first `n` items of the chunk (clamped to its length) and releases
    /// their slots to the producer in one step.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push_slice(&[1, 2, 3]);
    /// rx.read_chunk(3).unwrap().commit(2);
    /// assert_eq!(rx.pop(), Some(3));
    /// ```
    pub fn commit(self, n: usize) {
        let n = n.min(self.len());
        let in_first = n.min(self.first_len);
        // An item's destructor may panic. The slots are released all the same
        // (by this guard, as the panic unwinds), and the second run is still
        // dropped (by `second`): otherwise `head` would stay put and the next
        // pop, or the ring's own drop, would reach items already dropped.
        let release = ReleaseOnDrop {
            consumer: &mut *self.consumer,
            n,
        };
        // Taking the slices as `*mut [T]` avoids creating a `&mut` that would
        // alias the producer's view of other slots.
        let second = DropInPlace(core::ptr::slice_from_raw_parts_mut(
            self.second,
            n - in_first,
        ));
        // SAFETY: the chunk's first `n` items are initialized and ours; each is
        // dropped once (`drop_in_place` of a slice goes on past a panicking
        // element), then its slot is released, so none is read again.
        unsafe {
            core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(self.first, in_first))
        };
        drop(second);
        drop(release);
    }

    /// Drops every item of the chunk and releases the slots.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::spsc::Ring;
    ///
    /// let mut ring = Ring::<u8, 4>::new();
    /// let (mut tx, mut rx) = ring.split();
    /// tx.push_slice(&[1, 2]);
    /// rx.read_chunk(2).unwrap().commit_all();
    /// assert!(rx.is_empty());
    /// ```
    pub fn commit_all(self) {
        let n = self.len();
        self.commit(n);
    }
}

/// Releases a read chunk's `n` slots when dropped, even while a panic from an
/// item's destructor unwinds.
#[cfg(not(loom))]
struct ReleaseOnDrop<'c, 'a, S: Slots> {
    consumer: &'c mut Consumer<'a, S>,
    n: usize,
}

#[cfg(not(loom))]
impl<S: Slots> Drop for ReleaseOnDrop<'_, '_, S> {
    fn drop(&mut self) {
        self.consumer.release_slots(self.n);
    }
}

/// Drops the items of a slice of a read chunk when dropped, even while a
/// panic from an earlier item's destructor unwinds.
#[cfg(not(loom))]
struct DropInPlace<T>(*mut [T]);

#[cfg(not(loom))]
impl<T> Drop for DropInPlace<T> {
    fn drop(&mut self) {
        // SAFETY: made only in `ReadChunk::commit`, over initialized items of
        // the chunk that nothing reads after their slots are released.
        unsafe { core::ptr::drop_in_place(self.0) };
    }
}

/// Why a chunk could not be reserved.
///
/// # Example
///
/// ```
/// use ply_core::queue::spsc::{ChunkError, Ring};
///
/// let mut ring = Ring::<u8, 2>::new();
/// let (mut tx, mut rx) = ring.split();
/// assert_eq!(
///     rx.read_chunk(1).err(),
///     Some(ChunkError::TooFewItems { requested: 1, available: 0 })
/// );
/// assert!(tx.write_chunk_uninit(3).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// [`Producer::write_chunk_uninit`] asked for more slots than are free.
    TooFewSlots {
        /// Slots asked for.
        requested: usize,
        /// Slots free when asked.
        available: usize,
    },
    /// [`Consumer::read_chunk`] asked for more items than are in the ring.
    TooFewItems {
        /// Items asked for.
        requested: usize,
        /// Items present when asked.
        available: usize,
    },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::TooFewSlots {
                requested,
                available,
            } => write!(
                f,
                "asked for {requested} free slots but only {available} are free; \
                 ask for fewer or wait for the consumer"
            ),
            ChunkError::TooFewItems {
                requested,
                available,
            } => write!(
                f,
                "asked for {requested} items but only {available} are in the ring; \
                 ask for fewer or wait for the producer"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ChunkError {}

/// Slot index of position `pos` (`pos < 2 * capacity`).
#[inline(always)]
const fn index(pos: usize, capacity: usize) -> usize {
    if pos >= capacity { pos - capacity } else { pos }
}

/// Position `pos` advanced by `by ≤ capacity`, modulo `2 * capacity`. Cannot
/// overflow because the capacity is at most `usize::MAX / 4`. Only the chunk
/// API steps by more than one, and it is not built under loom.
#[cfg(not(loom))]
#[inline(always)]
const fn advance(pos: usize, by: usize, capacity: usize) -> usize {
    let next = pos + by;
    if next >= 2 * capacity {
        next - 2 * capacity
    } else {
        next
    }
}

/// Position `pos` advanced by one, modulo `2 * capacity`: the step of every
/// one-item push and pop.
///
/// A loop of pushes (or pops) waits on this step once per item, since each
/// item's position is the previous one's plus one. Comparing `pos` itself with
/// the last position (rather than `pos + 1` with `2 * capacity`, as
/// [`advance`] does) lets the compare and the add run side by side, and the
/// wrap to `0` needs no subtraction: an add and a select, two cycles per item
/// instead of three.
#[inline(always)]
const fn advance_one(pos: usize, capacity: usize) -> usize {
    if pos < 2 * capacity - 1 { pos + 1 } else { 0 }
}

/// The `tail` at which a ring whose consumer is at `head` is full: `head + N`,
/// modulo `2N` (`head < 2 * capacity`).
#[inline(always)]
const fn full_at(head: usize, capacity: usize) -> usize {
    if head >= capacity {
        head - capacity
    } else {
        head + capacity
    }
}

/// Items between `head` and `tail`, both in `0..2 * capacity`.
#[inline(always)]
const fn distance(head: usize, tail: usize, capacity: usize) -> usize {
    if tail >= head {
        tail - head
    } else {
        tail + 2 * capacity - head
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
