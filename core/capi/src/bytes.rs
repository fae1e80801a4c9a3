//! The storage C gets: slots of a run-time byte size, index-ring words and
//! dispenser worker slots, in a buffer the C program owns. They plug into
//! ply-core's storage traits, so the queues and the dispenser run ply-core's
//! algorithms unchanged.
//!
//! The control block never holds the buffer's address: each storage finds it
//! through a [`Place`] (see [`crate::place`]), so a queue works in every
//! process that maps it, wherever each maps it.

use core::sync::atomic::AtomicUsize;

use ply_core::partition::WorkerSlots;
use ply_core::queue::mpmc::{Entries, StampedSlots};
use ply_core::queue::storage::Slots;

use crate::place::{Place, Tag};

/// `capacity` slots of `size` bytes each, back to back from `base`.
///
/// A slot's "item" is its first byte; the C functions move whole slots with
/// [`copy_item`].
pub(crate) struct ByteSlots {
    place: Place,
    tag: Tag,
    capacity: usize,
    size: usize,
}

impl ByteSlots {
    /// Slots over `base[.. capacity * size]`.
    ///
    /// # Safety
    ///
    /// `base` must be valid for reads and writes of `capacity * size` bytes (which
    /// must not overflow) for as long as the queue using these slots is used.
    pub(crate) unsafe fn new(base: *mut u8, capacity: usize, size: usize) -> Self {
        ByteSlots {
            place: Place::absolute(base),
            tag: Tag::new(),
            capacity,
            size,
        }
    }

    /// The size of one slot in bytes.
    #[inline(always)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Where the slots are.
    pub(crate) fn place(&self) -> &Place {
        &self.place
    }

    /// What the control block that holds these slots is.
    pub(crate) fn tag(&self) -> &Tag {
        &self.tag
    }
}

// SAFETY: `capacity` is fixed, and slot `i < capacity` is the `size` bytes at
// `i * size` into the buffer the constructor's caller vouched for, which
// `place` finds (before and after anchoring alike); slots do not overlap each
// other, and `ply_*_init` checks that the buffer is not the control block.
unsafe impl Slots for ByteSlots {
    type Item = u8;

    #[inline(always)]
    fn capacity(&self) -> usize {
        self.capacity
    }

    #[inline(always)]
    fn with_slot<R>(&self, i: usize, f: impl FnOnce(*const u8) -> R) -> R {
        // A safe method: the bound is checked, not assumed (the queues only
        // pass indices below the capacity, so the branch is always taken
        // the same way and predicted).
        assert!(i < self.capacity, "slot index out of bounds");
        // SAFETY: `i < capacity` (checked above), so the offset stays inside
        // the buffer.
        f(unsafe { self.place.get().add(i * self.size) })
    }

    #[inline(always)]
    fn with_slot_mut<R>(&self, i: usize, f: impl FnOnce(*mut u8) -> R) -> R {
        assert!(i < self.capacity, "slot index out of bounds");
        // SAFETY: `i < capacity` (checked above), as in `with_slot`.
        f(unsafe { self.place.get().add(i * self.size) })
    }

    unsafe fn drop_slot(&self, _: usize) {
        // Plain bytes: nothing to drop.
    }
}

/// Copies one item of `size` bytes from `src` into a slot at `dst`. The common
/// sizes are one move each; others go through `memcpy`.
///
/// # Safety
///
/// `src` readable and `dst` writable for `size` bytes, not overlapping.
#[inline(always)]
pub(crate) unsafe fn copy_item(dst: *mut u8, src: *const u8, size: usize) {
    // SAFETY: the caller's promise; unaligned accesses because neither the
    // slot nor the C item is known to be aligned for the wider types.
    unsafe {
        match size {
            8 => dst
                .cast::<u64>()
                .write_unaligned(src.cast::<u64>().read_unaligned()),
            4 => dst
                .cast::<u32>()
                .write_unaligned(src.cast::<u32>().read_unaligned()),
            16 => dst
                .cast::<u128>()
                .write_unaligned(src.cast::<u128>().read_unaligned()),
            _ => core::ptr::copy_nonoverlapping(src, dst, size),
        }
    }
}

/// `len` index-ring entries, as words at `base`.
pub(crate) struct WordEntries {
    place: Place,
    len: usize,
}

impl WordEntries {
    /// Entries over `base[..len]`.
    ///
    /// # Safety
    ///
    /// `base` must be aligned for `usize` and valid for atomic reads and writes
    /// of `len` words for as long as the queue using them is used, and no other
    /// entries may overlap them.
    pub(crate) unsafe fn new(base: *mut usize, len: usize) -> Self {
        WordEntries {
            place: Place::absolute(base.cast()),
            len,
        }
    }

    /// Where the entries are.
    pub(crate) fn place(&self) -> &Place {
        &self.place
    }
}

// SAFETY: `len` is fixed; entry `j` is word `j` of the buffer the constructor's
// caller vouched for, which `place` finds. (The queue checks that `len` is twice its power-of-two
// capacity before it uses the entries.)
unsafe impl Entries for WordEntries {
    #[inline(always)]
    fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    unsafe fn get(&self, j: usize) -> &AtomicUsize {
        debug_assert!(j < self.len);
        // SAFETY: `j < len` (the caller's promise): inside the buffer,
        // aligned, and only ever accessed atomically.
        unsafe { &*self.place.get().cast::<AtomicUsize>().add(j) }
    }
}

/// `capacity` cells of an array queue in a C buffer: each a stamp word followed
/// by `size` bytes of value, `stride` bytes apart (a multiple of the word).
pub(crate) struct ByteCells {
    place: Place,
    tag: Tag,
    capacity: usize,
    size: usize,
    stride: usize,
}

impl ByteCells {
    /// Bytes per cell for values of `size` bytes, or `None` on overflow.
    pub(crate) fn stride(size: usize) -> Option<usize> {
        let word = core::mem::size_of::<usize>();
        size.checked_add(2 * word - 1).map(|n| n / word * word)
    }

    /// Cells over `base[.. capacity * stride(size)]`.
    ///
    /// # Safety
    ///
    /// `base` must be aligned for `usize` and valid for reads and writes of
    /// `capacity * stride(size)` bytes (no overflow) while the queue is used.
    pub(crate) unsafe fn new(base: *mut u8, capacity: usize, size: usize) -> Self {
        let stride = Self::stride(size).unwrap_or(0);
        ByteCells {
            place: Place::absolute(base),
            tag: Tag::new(),
            capacity,
            size,
            stride,
        }
    }

    /// The size of one value in bytes.
    #[inline(always)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Where the cells are.
    pub(crate) fn place(&self) -> &Place {
        &self.place
    }

    /// What the control block that holds these cells is.
    pub(crate) fn tag(&self) -> &Tag {
        &self.tag
    }

    #[inline(always)]
    fn cell(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.capacity);
        // SAFETY: `i < capacity`: inside the buffer.
        unsafe { self.place.get().add(i * self.stride) }
    }
}

// SAFETY: `capacity` is fixed; cell `i` is the stride at `i * stride` into the
// buffer `place` finds:
// its first word the stamp (aligned: the base and the stride are), then the
// value; cells do not overlap, and the buffer is not the control block.
unsafe impl StampedSlots for ByteCells {
    type Item = u8;

    #[inline(always)]
    fn capacity(&self) -> usize {
        self.capacity
    }

    #[inline(always)]
    unsafe fn stamp(&self, i: usize) -> &AtomicUsize {
        // SAFETY: `i < capacity` (the caller's promise): the cell's first
        // word, aligned, only ever accessed atomically.
        unsafe { &*self.cell(i).cast::<AtomicUsize>() }
    }

    #[inline(always)]
    fn with_value<R>(&self, i: usize, f: impl FnOnce(*const u8) -> R) -> R {
        // SAFETY: the value follows the stamp word inside the cell.
        f(unsafe { self.cell(i).add(core::mem::size_of::<usize>()) })
    }

    #[inline(always)]
    fn with_value_mut<R>(&self, i: usize, f: impl FnOnce(*mut u8) -> R) -> R {
        // SAFETY: as in `with_value`.
        f(unsafe { self.cell(i).add(core::mem::size_of::<usize>()) })
    }

    unsafe fn drop_value(&self, _: usize) {
        // Plain bytes: nothing to drop.
    }
}

/// The slots of `workers` dispenser workers in a C buffer: one cache line
/// (`PLY_CACHE_LINE` bytes) per worker, its `held` word first, then its
/// `returned` word, so workers writing their `held` words on every claim do
/// not share a line (if the buffer is cache-line aligned).
pub(crate) struct WordWorkers {
    place: Place,
    tag: Tag,
    workers: usize,
}

impl WordWorkers {
    /// Bytes per worker.
    pub(crate) const STRIDE: usize = crate::layout::PLY_CACHE_LINE;

    /// Slots over `base[.. workers * STRIDE]`.
    ///
    /// # Safety
    ///
    /// `base` must be aligned for `usize` and valid for atomic reads and writes
    /// of `workers * STRIDE` bytes (no overflow) while the dispenser is used.
    pub(crate) unsafe fn new(base: *mut u8, workers: usize) -> Self {
        WordWorkers {
            place: Place::absolute(base),
            tag: Tag::new(),
            workers,
        }
    }

    /// Where the slots are.
    pub(crate) fn place(&self) -> &Place {
        &self.place
    }

    /// What the control block that holds these slots is.
    pub(crate) fn tag(&self) -> &Tag {
        &self.tag
    }

    /// Word `k` (0: held, 1: returned) of worker `w`.
    #[inline(always)]
    fn word(&self, w: usize, k: usize) -> &AtomicUsize {
        debug_assert!(w < self.workers && k < 2);
        // SAFETY: `w < workers`: inside the buffer; aligned (the base and the
        // stride are); only ever accessed atomically.
        unsafe {
            &*self
                .place
                .get()
                .add(w * Self::STRIDE)
                .cast::<AtomicUsize>()
                .add(k)
        }
    }
}

// SAFETY: `workers` is fixed; worker `w`'s two words are the first two of its
// own stride of the buffer `place` finds, distinct from every other's.
unsafe impl WorkerSlots for WordWorkers {
    #[inline(always)]
    fn workers(&self) -> usize {
        self.workers
    }

    #[inline(always)]
    fn held(&self, w: usize) -> &AtomicUsize {
        self.word(w, 0)
    }

    #[inline(always)]
    fn returned(&self, w: usize) -> &AtomicUsize {
        self.word(w, 1)
    }
}
