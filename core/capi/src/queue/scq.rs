//! The SCQ queue for C.

use core::ffi::c_void;

use ply_core::queue::mpmc::ScqBase;
use ply_core::queue::storage::Slots;

use super::bytes_for;
use crate::bytes::{ByteSlots, WordEntries, copy_item};
use crate::or_return;
use crate::place::{self, Kind, Tag};
use crate::place::{apart, published};
use crate::{PLY_EMPTY, PLY_ERR_CAPACITY, PLY_ERR_NULL, PLY_ERR_SIZE, PLY_FULL, PLY_OK};
use crate::{check_ptrs, ply_status};

/// A multi-producer/multi-consumer queue that stays live when a participant
/// stalls or dies (ply-core's `mpmc::ScqQueue`, Nikolaev's SCQ).
pub struct ply_scq_t(ScqBase<ByteSlots, WordEntries>);

impl ply_scq_t {
    fn tag(&self) -> &Tag {
        self.0.slots().tag()
    }
}

/// Bytes of buffer a `ply_scq_t` of `capacity` items of `elem_size` bytes needs
/// (as the macro `PLY_SCQ_BUFFER_SIZE`): `4 * capacity` words for the two index
/// rings, then `capacity * elem_size` bytes of slots. The buffer must be aligned
/// like `size_t`.
///
/// Thread safety: a pure function.
///
/// Returns the size, or 0 if it overflows.
#[unsafe(no_mangle)]
pub extern "C" fn ply_scq_buffer_size(capacity: usize, elem_size: usize) -> usize {
    Layout::of(capacity, elem_size).map_or(0, |l| l.total())
}

/// Where the parts of an SCQ buffer are: the free ring's entries, the ready
/// ring's entries (`2 * capacity` words each), then the slots.
struct Layout {
    ring_words: usize,
    slot_bytes: usize,
}

impl Layout {
    fn of(capacity: usize, elem_size: usize) -> Option<Layout> {
        let ring_words = capacity.checked_mul(2)?;
        let entry_bytes = ring_words.checked_mul(2 * size_of::<usize>())?;
        let slot_bytes = bytes_for(capacity, elem_size)?;
        entry_bytes
            .checked_add(slot_bytes)
            .filter(|&total| total <= isize::MAX as usize)?;
        Some(Layout {
            ring_words,
            slot_bytes,
        })
    }

    /// Bytes of both rings' entries: where the slots start.
    fn entry_bytes(&self) -> usize {
        2 * self.ring_words * size_of::<usize>()
    }

    fn total(&self) -> usize {
        self.entry_bytes() + self.slot_bytes
    }

    /// The addresses of the free ring's entries, the ready ring's, and the
    /// slots, in a buffer at `buffer`.
    fn parts(&self, buffer: *mut c_void) -> [*mut u8; 3] {
        let words = buffer.cast::<usize>();
        [
            words.cast(),
            words.wrapping_add(self.ring_words).cast(),
            buffer.cast::<u8>().wrapping_add(self.entry_bytes()),
        ]
    }
}

/// Initializes `queue` as an empty SCQ queue of `capacity` items (a power of
/// two) of `elem_size` bytes each, in `buffer` (`ply_scq_buffer_size(capacity,
/// elem_size)` bytes, aligned like `size_t`).
///
/// Any number of producers and consumers, in any threads and processes, may
/// then push and pop. A participant stopped or killed inside `ply_scq_push` or
/// `ply_scq_pop` costs the others at most that one item and one slot of
/// capacity; nothing else waits for it.
///
/// The queue records where `buffer` is relative to itself: in every process
/// that uses it, the buffer must be at the same distance from `queue` (map both
/// from one object), and an initialized queue must not be copied (see "Shared
/// memory" above). Other processes check that with `ply_scq_attach`.
///
/// Thread and process safety: call it once, before any other use of `queue`,
/// and not while anything else uses it.
///
/// Returns `PLY_OK`; `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad `queue` or
/// `buffer`; `PLY_ERR_SIZE` for `elem_size` 0 or a size overflow;
/// `PLY_ERR_CAPACITY` if `capacity` is 0, not a power of two, or too large;
/// `PLY_ERR_OVERLAP` if the buffer overlaps `queue`.
///
/// # Safety
///
/// `queue` must point to writable memory for a `ply_scq_t`; `buffer` to
/// writable memory of the size above that outlives every use of the queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_scq_init(
    queue: *mut ply_scq_t,
    buffer: *mut c_void,
    capacity: usize,
    elem_size: usize,
) -> ply_status {
    check_ptrs!(queue, buffer.cast::<usize>());
    let Some(layout) = Layout::of(capacity, elem_size).filter(|_| elem_size != 0) else {
        return PLY_ERR_SIZE;
    };
    or_return!(apart(queue, buffer.cast(), layout.total()));
    let [free, ready, slots] = layout.parts(buffer);
    // SAFETY: the buffer holds `4 * capacity` aligned words, then the slots
    // (its size is the caller's promise; the layout was checked above).
    let (free, ready, slots) = unsafe {
        (
            WordEntries::new(free.cast(), layout.ring_words),
            WordEntries::new(ready.cast(), layout.ring_words),
            ByteSlots::new(slots, capacity, elem_size),
        )
    };
    match ScqBase::with_storage(slots, free, ready) {
        Ok(inner) => {
            // SAFETY: `queue` is valid for writes (caller; checked above).
            unsafe { queue.write(ply_scq_t(inner)) };
            // SAFETY: just written; the queue is in its final place.
            let inner = unsafe { &(*queue).0 };
            let (free, ready) = inner.entries();
            let slots = inner.slots();
            let places = [free.place(), ready.place(), slots.place()];
            place::publish(&places, slots.tag(), Kind::Scq);
            PLY_OK
        }
        Err(_) => PLY_ERR_CAPACITY,
    }
}

/// Checks, in a process that did not call `ply_scq_init`, that `queue` is
/// initialized and that `buffer` (the buffer as this process maps it) is where
/// the queue will look for it. Call it once per process before other calls; it
/// changes nothing.
///
/// Thread and process safety: any thread or process, at any time after the
/// queue's `ply_scq_init` returned.
///
/// Returns `PLY_OK`; `PLY_ERR_UNINIT` if `queue` is not an initialized SCQ
/// queue; `PLY_ERR_MAPPING` if the queue would find its buffer elsewhere;
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `queue` must point to readable memory of a `ply_scq_t`'s size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_scq_attach(
    queue: *const ply_scq_t,
    buffer: *mut c_void,
) -> ply_status {
    check_ptrs!(queue);
    if buffer.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: non-null, aligned, readable (caller); any bytes are a value.
    let inner = unsafe { &(*queue).0 };
    let slots = inner.slots();
    if !slots.tag().is(Kind::Scq) {
        return crate::PLY_ERR_UNINIT;
    }
    // The capacity and size are the published ones (`is` acquired them).
    let Some(layout) = Layout::of(slots.capacity(), slots.size()) else {
        return crate::PLY_ERR_UNINIT;
    };
    let [free_at, ready_at, slots_at] = layout.parts(buffer);
    let (free, ready) = inner.entries();
    let places = [
        (free.place(), free_at),
        (ready.place(), ready_at),
        (slots.place(), slots_at),
    ];
    place::attached(slots.tag(), Kind::Scq, &places)
}

/// The queue behind `queue`, if it is an initialized one.
///
/// # Safety
///
/// As for `published`.
#[inline(always)]
unsafe fn scq<'a>(queue: *const ply_scq_t) -> Result<&'a ply_scq_t, ply_status> {
    // SAFETY: the caller's promise.
    unsafe { published(queue, Kind::Scq, ply_scq_t::tag) }
}

/// Copies `elem_size` bytes from `item` into the queue, at the back.
/// Lock-free.
///
/// Thread and process safety: any thread or process, all at once; one that
/// stops or dies inside it costs the others at most that item and one slot.
///
/// Returns `PLY_OK`, `PLY_FULL` (nothing copied), `PLY_ERR_UNINIT` if `queue` is
/// not an initialized SCQ queue, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `queue` points to a `ply_scq_t`'s worth of readable memory; `item` readable
/// for `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_scq_push(queue: *const ply_scq_t, item: *const c_void) -> ply_status {
    // SAFETY: the caller's promise.
    let queue = &or_return!(unsafe { scq(queue) }).0;
    if item.is_null() {
        return PLY_ERR_NULL;
    }
    let size = queue.slots().size();
    // SAFETY: `push_in_place` hands us a slot we own, `size` bytes, which the copy
    // fills; `item` is readable for `size` bytes; the copy cannot panic.
    if unsafe { queue.push_in_place(|slot| copy_item(slot, item.cast(), size)) } {
        PLY_OK
    } else {
        PLY_FULL
    }
}

/// Copies the item at the front of the queue into `out` (`elem_size` bytes)
/// and removes it. Lock-free.
///
/// Thread and process safety: any thread or process, all at once; one that
/// stops or dies inside it costs the others at most that item and one slot.
///
/// Returns `PLY_OK`, `PLY_EMPTY` (nothing written), `PLY_ERR_UNINIT` if `queue`
/// is not an initialized SCQ queue, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `queue` points to a `ply_scq_t`'s worth of readable memory; `out` writable
/// for `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_scq_pop(queue: *const ply_scq_t, out: *mut c_void) -> ply_status {
    // SAFETY: the caller's promise.
    let queue = &or_return!(unsafe { scq(queue) }).0;
    if out.is_null() {
        return PLY_ERR_NULL;
    }
    let size = queue.slots().size();
    // SAFETY: `pop_in_place` hands us the slot of the item at the front, which we
    // own until it returns; `out` is writable for `size` bytes.
    match queue.pop_in_place(|slot| unsafe { copy_item(out.cast(), slot, size) }) {
        Some(()) => PLY_OK,
        None => PLY_EMPTY,
    }
}

/// The queue's capacity in items.
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns the capacity; 0 for a NULL, misaligned or uninitialized `queue`.
///
/// # Safety
///
/// `queue` must be NULL or point to a `ply_scq_t`'s worth of readable memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_scq_capacity(queue: *const ply_scq_t) -> usize {
    // SAFETY: the caller's promise.
    unsafe { scq(queue) }.map_or(0, |q| q.0.capacity())
}
