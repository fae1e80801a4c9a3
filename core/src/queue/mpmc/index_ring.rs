//! The SCQ index ring: a lock-free FIFO of small integers.
//!
//! # Algorithm
//!
//! R. Nikolaev, "A Scalable, Portable, and Memory-Efficient Lock-Free FIFO Queue",
//! DISC 2019 (the "SCQ" ring, in its single-word compare-and-swap form), written
//! fresh from the paper.
//!
//! The ring carries indices `0..N` (`N` a power of two) in `RING = 2N` entries.
//! Producers and consumers take *positions* with one `fetch_add` on `tail` or
//! `head` — never a retry loop on a shared counter — and then settle the matter
//! with the one entry their position maps to. Each entry is a word:
//!
//! | bits | field | meaning |
//! |---|---|---|
//! | `0 .. log2(RING)` | index | the value, or all ones (`BOTTOM`) for "no value" |
//! | `log2(RING)` | `SAFE` | clear = a dequeuer skipped this entry while it held an older value: an enqueuer may only reuse it if `head` has not passed its position |
//! | the rest | cycle | how many times the ring has wrapped (`position / RING`), kept in place so that comparing two cycles is a wrapping subtraction |
//!
//! - **Enqueue** takes position `t`; the entry is usable if its cycle is older than
//!   `t`'s, it holds no value, and it is safe (or `head ≤ t`). Then one CAS writes
//!   `cycle(t) | SAFE | index`. If unusable, take the next position.
//! - **Dequeue** takes position `h`. If the entry's cycle is `h`'s, the value is ours:
//!   `fetch_or(BOTTOM)` marks it consumed. If the entry is older and empty, a CAS
//!   moves it to `h`'s cycle, so a late enqueuer of `h` cannot fill it after we
//!   left; if older and full (its dequeuer is late), a CAS clears `SAFE`.
//! - A dequeuer that found nothing checks whether `tail` is behind it (empty:
//!   pull `tail` forward, return `None`) and decrements `threshold`. `threshold`
//!   is reset to `3N - 1` by every enqueue; below zero, dequeuers return `None`
//!   at once. The paper proves `3N - 1` failed positions in a row mean the ring
//!   was empty at some point, which bounds every dequeue (no livelock).
//!
//! No step waits for another participant: a participant stopped anywhere costs
//! the others at most the one entry it was working on.
//!
//! # Memory ordering: `SeqCst` throughout
//!
//! The paper proves the algorithm for sequentially consistent memory, and the
//! proof leans on it: for example, an enqueue re-arms `threshold` only if it
//! *reads* it as lowered, and with acquire/release alone that read may return a
//! value from before a dequeuer's decrements. The dequeuer then sees "empty"
//! forever while the item sits in the ring. (loom found exactly this execution
//! when the operations were `AcqRel`/`Acquire`, as in the author's C reference.)
//! So every operation on `head`, `tail`, `threshold` and the entries is `SeqCst`.
//! On x86 this costs nothing: the read-modify-writes are locked instructions
//! either way and `SeqCst` loads are plain loads. Under loom, which does not model
//! `SeqCst` operations, [`seq_cst_point`] after each one adds the equivalent
//! fence. The entry CAS that publishes an index also orders the caller's write of
//! the data slot before it (it is at least a release), and a dequeue's read of
//! the entry orders the caller's read of the slot after it (at least an acquire).
//!
//! # Words and wrap-around
//!
//! Positions are `usize` and wrap; every comparison of positions or cycles is a
//! wrapping subtraction read as signed, which is correct while the participants'
//! views differ by less than half the counter range (2^63 operations on 64-bit
//! targets; 2^31 on 32-bit ones, where a participant would have to stall for over
//! two billion operations of the others to be misled).

use crossbeam_utils::CachePadded;

use crate::primitive::{AtomicIsize, AtomicUsize, Ordering, seq_cst_point};

/// The `2N` entries of one index ring: inline, or in a caller's buffer.
///
/// # Safety
///
/// [`len`](Entries::len) must return the same power of two `2N ≥ 2` every time,
/// and [`get`](Entries::get) must return, for each `j < len()`, the same atomic
/// word every time, distinct from the words of every other `j` (and of the
/// other ring of the same queue).
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{Entries, InlineEntries};
///
/// let entries = InlineEntries::<4>::new(); // the entries of a capacity-4 ring
/// assert_eq!(entries.len(), 8);
/// ```
pub unsafe trait Entries {
    /// The number of entries, `2N` for a queue of capacity `N`.
    fn len(&self) -> usize;

    /// Whether there are no entries (never, for a valid storage).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `j`.
    ///
    /// # Safety
    ///
    /// `j < len()`. The entries carry the queue's protocol: a store to one
    /// could make a pop read a slot nobody wrote. Only the index ring built
    /// over this storage calls this (and stores to the entry only as its
    /// algorithm says); anyone else may at most load it.
    unsafe fn get(&self, j: usize) -> &AtomicUsize;
}

/// The `2N` entries of a capacity-`N` index ring, inline (as `N` pairs: stable
/// Rust cannot write `[_; 2 * N]`).
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{Entries, InlineEntries};
/// static ENTRIES: InlineEntries<2> = InlineEntries::new();
/// assert_eq!(ENTRIES.len(), 4);
/// ```
pub struct InlineEntries<const N: usize>([[AtomicUsize; 2]; N]);

impl<const N: usize> InlineEntries<N> {
    /// `2N` entries, each "unused" (the state a new ring's entries start in).
    ///
    /// # Example
    ///
    /// ```
    /// let entries = ply_core::queue::mpmc::InlineEntries::<8>::new();
    /// # let _ = entries;
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        InlineEntries([const { [const { AtomicUsize::new(UNUSED) }; 2] }; N])
    }

    /// `2N` unused entries (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        InlineEntries(core::array::from_fn(|_| {
            [AtomicUsize::new(UNUSED), AtomicUsize::new(UNUSED)]
        }))
    }
}

impl<const N: usize> Default for InlineEntries<N> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: `2N` is fixed, and entry `j` is always element `j & 1` of pair `j >> 1`.
unsafe impl<const N: usize> Entries for InlineEntries<N> {
    #[inline(always)]
    fn len(&self) -> usize {
        2 * N
    }

    #[inline(always)]
    unsafe fn get(&self, j: usize) -> &AtomicUsize {
        &self.0[j >> 1][j & 1]
    }
}

/// The entries of an index ring in a caller's buffer of `2N` words.
///
/// # Example
///
/// ```
/// use core::sync::atomic::AtomicUsize;
/// use ply_core::queue::mpmc::{BorrowedEntries, Entries};
///
/// let mut words: [AtomicUsize; 8] = Default::default();
/// let entries = BorrowedEntries::new(&mut words);
/// assert_eq!(entries.len(), 8);
/// ```
#[cfg(not(loom))]
pub struct BorrowedEntries<'a>(&'a [AtomicUsize]);

#[cfg(not(loom))]
impl<'a> BorrowedEntries<'a> {
    /// The words of `entries` as ring entries (a queue initializes them).
    /// Borrowed exclusively: nobody else may store to them while the queue
    /// uses them.
    ///
    /// # Example
    ///
    /// ```
    /// use core::sync::atomic::AtomicUsize;
    /// let mut words: [AtomicUsize; 4] = Default::default();
    /// let entries = ply_core::queue::mpmc::BorrowedEntries::new(&mut words);
    /// # let _ = entries;
    /// ```
    pub fn new(entries: &'a mut [AtomicUsize]) -> Self {
        BorrowedEntries(entries)
    }
}

// SAFETY: the slice's length is fixed, and entry `j` is always element `j`.
// (The queue checks that the length is a power of two before using it.)
#[cfg(not(loom))]
unsafe impl Entries for BorrowedEntries<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.len()
    }

    #[inline(always)]
    unsafe fn get(&self, j: usize) -> &AtomicUsize {
        &self.0[j]
    }
}

/// An untouched entry: cycle "-1" (older than every position), safe, empty.
const UNUSED: usize = usize::MAX;

/// A lock-free FIFO of indices `0..N` in `2N` entries (`N` a power of two).
pub(crate) struct IndexRing<E: Entries> {
    /// Next position to dequeue from; only ever `fetch_add`ed.
    head: CachePadded<AtomicUsize>,
    /// Failed dequeue positions left before the ring is reported empty; see the
    /// module docs. Negative means "empty: return at once".
    threshold: CachePadded<AtomicIsize>,
    /// Next position to enqueue at; `fetch_add`ed, and pulled forward to `head`
    /// when dequeuers overtake it.
    tail: CachePadded<AtomicUsize>,
    /// `2N` entries (the ring's length `RING` below).
    entries: E,
}

impl<const N: usize> IndexRing<InlineEntries<N>> {
    /// Rejects capacities the ring cannot work with.
    const VALID: () = assert!(
        N.is_power_of_two() && N <= MAX_CAPACITY,
        "mpmc::ScqQueue capacity N must be a power of two"
    );

    /// An empty ring.
    #[cfg(not(loom))]
    pub(crate) const fn new_empty() -> Self {
        let () = Self::VALID;
        IndexRing {
            head: CachePadded::new(AtomicUsize::new(0)),
            threshold: CachePadded::new(AtomicIsize::new(-1)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            entries: InlineEntries::new(),
        }
    }

    /// A ring holding `0, 1, …, N - 1` in that order.
    #[cfg(not(loom))]
    pub(crate) const fn new_full() -> Self {
        let mut ring = Self::new_empty();
        let mut i = 0;
        while i < N {
            // Position i is in cycle 0: the entry is just `SAFE | i`.
            let j = slot(i, 2 * N);
            // The SAFE bit is `RING = 2N`.
            ring.entries.0[j >> 1][j & 1] = AtomicUsize::new((2 * N) | i);
            i += 1;
        }
        ring.tail = CachePadded::new(AtomicUsize::new(N));
        ring.threshold = CachePadded::new(AtomicIsize::new(threshold(2 * N)));
        ring
    }

    /// An empty ring (loom build).
    #[cfg(loom)]
    pub(crate) fn new_empty() -> Self {
        let () = Self::VALID;
        IndexRing {
            head: CachePadded::new(AtomicUsize::new(0)),
            threshold: CachePadded::new(AtomicIsize::new(-1)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            entries: InlineEntries::new(),
        }
    }

    /// A ring holding `0, 1, …, N - 1` (loom build).
    #[cfg(loom)]
    pub(crate) fn new_full() -> Self {
        let ring = Self::new_empty();
        ring.fill();
        ring
    }
}

/// The largest capacity an index ring supports: `2N` entries plus the `SAFE`
/// bit must leave cycle bits to spare.
pub(crate) const MAX_CAPACITY: usize = usize::MAX / 8;

/// `threshold` after an enqueue, for a ring of `ring` entries: `3N - 1` failed
/// positions before "empty".
#[inline(always)]
const fn threshold(ring: usize) -> isize {
    (3 * (ring / 2)) as isize - 1
}

/// The slot of a position in a ring of `ring` entries (a power of two):
/// `pos mod ring`, so consecutive positions share a cache line.
///
/// The paper (and its C reference, as an option) remaps positions so that
/// consecutive ones fall on different cache lines, against contention between
/// many threads working on neighbouring positions at once. Measured on two
/// CPUs, it costs more than it saves: a producer and a consumer streaming
/// through a ring take one cache-line transfer per entry instead of one per
/// line of eight (BENCHMARKS.md, "Target 2", has the numbers). Many threads
/// on neighbouring positions might favour the remap; that was not measured.
#[inline(always)]
const fn slot(pos: usize, ring: usize) -> usize {
    pos & (ring - 1)
}

impl<E: Entries> IndexRing<E> {
    /// A ring over `entries`, which the caller then sets with [`clear`] or
    /// [`fill`] before use. `entries.len()` must be a power of two from 2 to
    /// `2 * MAX_CAPACITY` (checked by the queue that builds the ring).
    #[cfg(not(loom))]
    pub(crate) fn over(entries: E) -> Self {
        debug_assert!(entries.len().is_power_of_two() && entries.len() >= 2);
        IndexRing {
            head: CachePadded::new(AtomicUsize::new(0)),
            threshold: CachePadded::new(AtomicIsize::new(-1)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            entries,
        }
    }

    /// The entries (for [`ScqBase::entries`](super::ScqBase::entries)).
    pub(crate) fn entries(&self) -> &E {
        &self.entries
    }

    /// Resets the ring to empty. Only with no operation in flight.
    pub(crate) fn clear(&self) {
        for j in 0..self.ring() {
            // SAFETY: `j < len()`; the ring resets its own entries.
            unsafe { self.entries.get(j) }.store(UNUSED, Ordering::Relaxed);
        }
        self.head.store(0, Ordering::Relaxed);
        self.tail.store(0, Ordering::Relaxed);
        self.threshold.store(-1, Ordering::Relaxed);
    }

    /// Resets the ring to hold `0, 1, …, N - 1` in order. Only with no
    /// operation in flight.
    pub(crate) fn fill(&self) {
        let ring = self.ring();
        self.clear();
        for i in 0..ring / 2 {
            // Position i is in cycle 0: the entry is just `SAFE | i`.
            self.entry(i).store(self.safe() | i, Ordering::SeqCst);
        }
        self.tail.store(ring / 2, Ordering::SeqCst);
        self.threshold.store(threshold(ring), Ordering::SeqCst);
    }

    /// Entries in the ring (`RING = 2N` in the module docs).
    #[inline(always)]
    fn ring(&self) -> usize {
        self.entries.len()
    }

    /// The entry's "safe" bit.
    #[inline(always)]
    fn safe(&self) -> usize {
        self.ring()
    }

    /// Index bits all ones: "no value".
    #[inline(always)]
    fn bottom(&self) -> usize {
        self.ring() - 1
    }

    /// The bits below the cycle field.
    #[inline(always)]
    fn low(&self) -> usize {
        2 * self.ring() - 1
    }

    /// Re-reads of an empty entry a dequeuer spends waiting for an in-flight
    /// enqueuer of its position (none under loom, to keep models finite).
    const PATIENCE: u32 = if cfg!(loom) { 0 } else { 256 };

    /// The entry of the ring slot of position `pos`.
    #[inline(always)]
    fn entry(&self, pos: usize) -> &AtomicUsize {
        // SAFETY: `slot` is below `len()`; the ring uses its own entries as
        // its algorithm says.
        unsafe { self.entries.get(slot(pos, self.ring())) }
    }

    /// The cycle field of an entry (cycle bits in place, low bits zero).
    #[inline(always)]
    fn cycle(&self, entry: usize) -> usize {
        entry & !self.low()
    }

    /// The cycle of a position, in the entry's cycle field layout:
    /// `p = c·RING + j` gives `c·2·RING`.
    #[inline(always)]
    fn cycle_of_position(&self, pos: usize) -> usize {
        (pos << 1) & !self.low()
    }

    /// Enqueues `index` (< N). Always succeeds: at most `N` indices are ever in a
    /// ring of `2N` entries.
    pub(crate) fn enqueue(&self, index: usize) {
        debug_assert!(index < self.ring() / 2);
        let (safe, bottom, armed) = (self.safe(), self.bottom(), threshold(self.ring()));
        loop {
            let t = sc::fetch_add(&self.tail, 1);
            let t_cycle = self.cycle_of_position(t);
            let entry = self.entry(t);
            let mut e = sc::load(entry);
            loop {
                let usable = lt(self.cycle(e), t_cycle)
                    && e & bottom == bottom
                    && (e & safe != 0 || le(sc::load(&self.head), t));
                if !usable {
                    break; // skipped: try the next position
                }
                match sc::compare_exchange(entry, e, t_cycle | safe | index) {
                    Ok(_) => {
                        // Re-arm the dequeuers' empty detection (see the module
                        // docs for why this read must be SeqCst).
                        if sc::load_isize(&self.threshold) != armed {
                            sc::store_isize(&self.threshold, armed);
                        }
                        return;
                    }
                    Err(current) => e = current,
                }
            }
        }
    }

    /// Dequeues the oldest index, or `None` if the ring is empty.
    pub(crate) fn dequeue(&self) -> Option<usize> {
        if sc::load_isize(&self.threshold) < 0 {
            return None;
        }
        // Read-only emptiness check before taking a position. This spares a
        // polling consumer the read-modify-writes below, which would spoil the
        // positions the producers are about to use.
        //
        // First the entry `head` maps to: if it holds a value of `head`'s cycle,
        // the ring is not empty and `tail` need not be read. That saves a
        // transfer of `tail`'s cache line, which the enqueuers keep writing, on
        // every dequeue that finds work; the entry's line is the one the
        // dequeue is about to use anyway. (Skipping the check is always
        // allowed: the paper's dequeue has none.)
        //
        // Otherwise `head` first, then `tail`. Since `head` only grows,
        // `tail ≤ head` then holds at the moment `tail` is read: every index
        // enqueued so far sits at a position some dequeuer already holds, so the
        // ring is empty for us.
        let (safe, bottom) = (self.safe(), self.bottom());
        let head = sc::load(&self.head);
        let e = sc::load(self.entry(head));
        let holds_value = self.cycle(e) == self.cycle_of_position(head) && e & bottom != bottom;
        if !holds_value && le(sc::load(&self.tail), head) {
            return None;
        }
        loop {
            let h = sc::fetch_add(&self.head, 1);
            let h_cycle = self.cycle_of_position(h);
            let entry = self.entry(h);
            let mut e = sc::load(entry);
            let mut waited = 0;
            loop {
                let e_cycle = self.cycle(e);
                if e_cycle == h_cycle {
                    // An enqueuer of our position left its index here. Mark the
                    // entry consumed (index := BOTTOM, cycle and SAFE kept); only
                    // we hold this position, so the value is ours.
                    sc::fetch_or(entry, bottom);
                    return Some(e & bottom);
                }
                if !lt(e_cycle, h_cycle) {
                    break; // already claimed by a later cycle
                }
                let replacement = if e & bottom != bottom {
                    // An older value whose dequeuer is late: mark the entry unsafe
                    // so no enqueuer past `head` reuses it before that dequeuer.
                    let unsafe_entry = e & !safe;
                    if unsafe_entry == e {
                        break;
                    }
                    unsafe_entry
                } else {
                    // Empty. If `tail` is past us, the enqueuer of our position
                    // has its position and is about to write the entry: give it a
                    // moment rather than spoil its position (which would send it
                    // round for another). A bounded wait, so a stalled enqueuer
                    // costs us only these re-reads.
                    if waited < Self::PATIENCE && lt(h, sc::load(&self.tail)) {
                        waited += 1;
                        core::hint::spin_loop();
                        e = sc::load(entry);
                        continue;
                    }
                    // Move it to our cycle, so the enqueuer of our position, if
                    // it is late, finds it unusable and moves on.
                    h_cycle | (e & safe) | bottom
                };
                match sc::compare_exchange(entry, e, replacement) {
                    Ok(_) => break,
                    Err(current) => e = current,
                }
            }
            // Nothing at our position. If tail is not past it, the ring is empty.
            let t = sc::load(&self.tail);
            let next = h.wrapping_add(1);
            if le(t, next) {
                self.catch_up(t, next);
                sc::fetch_sub_isize(&self.threshold, 1);
                return None;
            }
            if sc::fetch_sub_isize(&self.threshold, 1) <= 0 {
                return None;
            }
        }
    }

    /// Pulls `tail` forward to `head` after dequeuers overtook it, so enqueuers do
    /// not walk through positions the dequeuers already gave up on.
    fn catch_up(&self, mut tail: usize, mut head: usize) {
        // On failure, continue from the value the CAS saw (always the latest),
        // not from a fresh load: a load may legally return a stale `tail` again
        // and again, and the loop would never end (loom finds exactly that).
        while let Err(current) = sc::compare_exchange(&self.tail, tail, head) {
            tail = current;
            head = sc::load(&self.head);
            if !lt(tail, head) {
                break;
            }
        }
    }
}

/// The ring's atomic operations: each `SeqCst`, followed by [`seq_cst_point`]
/// so loom sees the same total order (see "Memory ordering" in the module docs).
mod sc {
    use super::seq_cst_point;
    use crate::primitive::{AtomicIsize, AtomicUsize, Ordering::SeqCst};

    #[inline(always)]
    pub(super) fn load(a: &AtomicUsize) -> usize {
        let v = a.load(SeqCst);
        seq_cst_point();
        v
    }

    #[inline(always)]
    pub(super) fn fetch_add(a: &AtomicUsize, n: usize) -> usize {
        let v = a.fetch_add(n, SeqCst);
        seq_cst_point();
        v
    }

    #[inline(always)]
    pub(super) fn fetch_or(a: &AtomicUsize, bits: usize) -> usize {
        let v = a.fetch_or(bits, SeqCst);
        seq_cst_point();
        v
    }

    #[inline(always)]
    pub(super) fn compare_exchange(
        a: &AtomicUsize,
        current: usize,
        new: usize,
    ) -> Result<usize, usize> {
        // Strong CAS: every caller loops on failure anyway, and a spurious
        // failure would cost a whole position in `enqueue`.
        let r = a.compare_exchange(current, new, SeqCst, SeqCst);
        seq_cst_point();
        r
    }

    #[inline(always)]
    pub(super) fn load_isize(a: &AtomicIsize) -> isize {
        let v = a.load(SeqCst);
        seq_cst_point();
        v
    }

    #[inline(always)]
    pub(super) fn store_isize(a: &AtomicIsize, v: isize) {
        a.store(v, SeqCst);
        seq_cst_point();
    }

    #[inline(always)]
    pub(super) fn fetch_sub_isize(a: &AtomicIsize, n: isize) -> isize {
        let v = a.fetch_sub(n, SeqCst);
        seq_cst_point();
        v
    }
}

/// `a < b` for wrapping counters.
#[inline(always)]
fn lt(a: usize, b: usize) -> bool {
    (a.wrapping_sub(b) as isize) < 0
}

/// `a ≤ b` for wrapping counters.
#[inline(always)]
fn le(a: usize, b: usize) -> bool {
    (a.wrapping_sub(b) as isize) <= 0
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn full_ring_yields_indices_in_order_then_empty() {
        let ring = IndexRing::<InlineEntries<8>>::new_full();
        let got: Vec<usize> = core::iter::from_fn(|| ring.dequeue()).collect();
        assert_eq!(got, (0..8).collect::<Vec<_>>());
        assert_eq!(ring.dequeue(), None);
    }

    #[test]
    fn fifo_over_many_cycles_against_a_model() {
        fifo_against_a_model(&IndexRing::<InlineEntries<4>>::new_empty());
        // The same ring over borrowed words, refilled and cleared in between.
        let mut words: [AtomicUsize; 8] = Default::default();
        let borrowed = IndexRing::over(BorrowedEntries::new(&mut words));
        borrowed.fill();
        let got: Vec<usize> = core::iter::from_fn(|| borrowed.dequeue()).collect();
        assert_eq!(got, [0, 1, 2, 3]);
        borrowed.clear();
        fifo_against_a_model(&borrowed);
    }

    fn fifo_against_a_model<E: Entries>(ring: &IndexRing<E>) {
        let mut model = std::collections::VecDeque::new();
        assert_eq!(ring.dequeue(), None);
        // A fixed pseudo-random walk of enqueues and dequeues, never more than N
        // in flight (as in the queue built on the ring).
        let mut x = 12345u32;
        for step in 0..5000usize {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            if model.len() < 4 && (x >> 16) % 3 != 0 {
                ring.enqueue(step % 4);
                model.push_back(step % 4);
            } else {
                assert_eq!(ring.dequeue(), model.pop_front());
            }
        }
        while let Some(v) = model.pop_front() {
            assert_eq!(ring.dequeue(), Some(v));
        }
        assert_eq!(ring.dequeue(), None);
    }

    #[test]
    fn counters_wrap_around_usize() {
        // Start near the end of the counter range, with tail == head and entries
        // in the cycle just before, as a long-lived ring would be.
        let ring = IndexRing::<InlineEntries<4>>::new_empty();
        let start = 0usize.wrapping_sub(3 * ring.ring() + 1);
        ring.head.store(start, Ordering::SeqCst);
        ring.tail.store(start, Ordering::SeqCst);
        let prev = ring.cycle_of_position(start.wrapping_sub(ring.ring()));
        for j in 0..ring.ring() {
            // SAFETY: `j < len()`; the test stages the state a long-lived
            // ring would be in.
            unsafe { ring.entries.get(j) }
                .store(prev | ring.safe() | ring.bottom(), Ordering::SeqCst);
        }
        for i in 0..200usize {
            ring.enqueue(i % 4);
            assert_eq!(ring.dequeue(), Some(i % 4));
        }
        assert!(
            ring.tail.load(Ordering::SeqCst) < 1000,
            "tail wrapped past zero"
        );
        assert_eq!(ring.dequeue(), None);
    }
}
