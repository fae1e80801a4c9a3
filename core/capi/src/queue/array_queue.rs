//! The array queue for C.

use core::ffi::c_void;

use ply_core::queue::mpmc::{ArrayQueueBase, TryPopError, TryPushError};

use super::bytes_for;
use crate::bytes::{ByteCells, copy_item};
use crate::or_return;
use crate::place::{self, Kind, Tag};
use crate::place::{apart, published};
use crate::{GiveUp, PLY_BUSY, PLY_EMPTY, PLY_ERR_CAPACITY, PLY_ERR_NULL, PLY_ERR_SIZE, PLY_FULL};
use crate::{PLY_OK, check_ptrs, ply_give_up_fn, ply_status};

/// A multi-producer/multi-consumer queue (ply-core's `mpmc::ArrayQueue`,
/// Vyukov's per-slot stamps): any capacity, the fastest MPMC queue between
/// threads, but a participant that dies mid-operation wedges it (use
/// `ply_scq_t` where one may).
pub struct ply_array_queue_t(ArrayQueueBase<ByteCells>);

impl ply_array_queue_t {
    fn tag(&self) -> &Tag {
        self.0.slots().tag()
    }
}

/// Bytes of buffer a `ply_array_queue_t` of `capacity` items of `elem_size`
/// bytes needs (as the macro `PLY_ARRAY_QUEUE_BUFFER_SIZE`): per item, a stamp
/// word and the item, rounded up to a whole word. The buffer must be aligned
/// like `size_t`.
///
/// Thread safety: a pure function.
///
/// Returns the size, or 0 if it overflows.
#[unsafe(no_mangle)]
pub extern "C" fn ply_array_queue_buffer_size(capacity: usize, elem_size: usize) -> usize {
    ByteCells::stride(elem_size)
        .and_then(|stride| bytes_for(capacity, stride))
        .unwrap_or(0)
}

/// Initializes `queue` as an empty array queue of `capacity` items (any number
/// from 1) of `elem_size` bytes each, in `buffer`
/// (`ply_array_queue_buffer_size(capacity, elem_size)` bytes, aligned like
/// `size_t`).
///
/// Any number of producers and consumers, in any threads and processes, may
/// then push and pop.
///
/// The queue records where `buffer` is relative to itself: in every process
/// that uses it, the buffer must be at the same distance from `queue` (map both
/// from one object), and an initialized queue must not be copied (see "Shared
/// memory" above). Other processes check that with `ply_array_queue_attach`.
///
/// Thread and process safety: call it once, before any other use of `queue`,
/// and not while anything else uses it.
///
/// Returns `PLY_OK`; `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad `queue` or
/// `buffer`; `PLY_ERR_SIZE` for `elem_size` 0 or a size overflow;
/// `PLY_ERR_CAPACITY` for `capacity` 0 or above `SIZE_MAX / 4`;
/// `PLY_ERR_OVERLAP` if the buffer overlaps `queue`.
///
/// # Safety
///
/// `queue` must point to writable memory for a `ply_array_queue_t`; `buffer`
/// to writable memory of the size above that outlives every use of the queue.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_init(
    queue: *mut ply_array_queue_t,
    buffer: *mut c_void,
    capacity: usize,
    elem_size: usize,
) -> ply_status {
    check_ptrs!(queue, buffer.cast::<usize>());
    let bytes = ply_array_queue_buffer_size(capacity, elem_size);
    if elem_size == 0 || bytes == 0 && capacity != 0 {
        return PLY_ERR_SIZE;
    }
    or_return!(apart(queue, buffer.cast(), bytes));
    // SAFETY: aligned (checked) and of the size above (the caller's promise).
    let cells = unsafe { ByteCells::new(buffer.cast(), capacity, elem_size) };
    match ArrayQueueBase::with_slots(cells) {
        Ok(inner) => {
            // SAFETY: `queue` is valid for writes (caller; checked above).
            unsafe { queue.write(ply_array_queue_t(inner)) };
            // SAFETY: just written; the queue is in its final place.
            let cells = unsafe { (*queue).0.slots() };
            place::publish(&[cells.place()], cells.tag(), Kind::ArrayQueue);
            PLY_OK
        }
        Err(_) => PLY_ERR_CAPACITY,
    }
}

/// Checks, in a process that did not call `ply_array_queue_init`, that `queue`
/// is initialized and that `buffer` (the buffer as this process maps it) is
/// where the queue will look for it. Call it once per process before other
/// calls; it changes nothing.
///
/// Thread and process safety: any thread or process, at any time after the
/// queue's `ply_array_queue_init` returned.
///
/// Returns `PLY_OK`; `PLY_ERR_UNINIT` if `queue` is not an initialized array
/// queue; `PLY_ERR_MAPPING` if the queue would find its buffer elsewhere;
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `queue` must point to readable memory of a `ply_array_queue_t`'s size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_attach(
    queue: *const ply_array_queue_t,
    buffer: *mut c_void,
) -> ply_status {
    check_ptrs!(queue);
    if buffer.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: non-null, aligned, readable (caller); any bytes are a value.
    let cells = unsafe { (*queue).0.slots() };
    place::attached(
        cells.tag(),
        Kind::ArrayQueue,
        &[(cells.place(), buffer.cast())],
    )
}

/// The queue behind `queue`, if it is an initialized one.
///
/// # Safety
///
/// As for `published`.
#[inline(always)]
unsafe fn array_queue<'a>(
    queue: *const ply_array_queue_t,
) -> Result<&'a ply_array_queue_t, ply_status> {
    // SAFETY: the caller's promise.
    unsafe { published(queue, Kind::ArrayQueue, ply_array_queue_t::tag) }
}

/// The push of the three `ply_array_queue_push*` functions.
///
/// # Safety
///
/// As for `ply_array_queue_push`.
unsafe fn array_push(
    queue: *const ply_array_queue_t,
    item: *const c_void,
    patience: impl ply_core::sync::Patience,
) -> ply_status {
    // SAFETY: the caller's promise.
    let queue = &or_return!(unsafe { array_queue(queue) }).0;
    if item.is_null() {
        return PLY_ERR_NULL;
    }
    let size = queue.slots().size();
    let write = |slot: *mut u8, src: *const u8| {
        // SAFETY: the claimed slot holds `size` bytes; `src` is readable for
        // `size` bytes (caller).
        unsafe { copy_item(slot, src, size) }
    };
    // SAFETY: `write` fills the whole slot and cannot panic.
    match unsafe { queue.push_in_place(item.cast::<u8>(), write, patience) } {
        Ok(()) => PLY_OK,
        Err(TryPushError::Full(_)) => PLY_FULL,
        Err(_) => PLY_BUSY,
    }
}

/// The pop of the three `ply_array_queue_pop*` functions.
///
/// # Safety
///
/// As for `ply_array_queue_pop`.
unsafe fn array_pop(
    queue: *const ply_array_queue_t,
    out: *mut c_void,
    patience: impl ply_core::sync::Patience,
) -> ply_status {
    // SAFETY: the caller's promise.
    let queue = &or_return!(unsafe { array_queue(queue) }).0;
    if out.is_null() {
        return PLY_ERR_NULL;
    }
    let size = queue.slots().size();
    // SAFETY: `read` runs on the claimed, published slot of `size` bytes; `out`
    // is writable for `size` bytes (caller).
    let read = |slot: *const u8| unsafe { copy_item(out.cast(), slot, size) };
    match queue.pop_in_place(read, patience) {
        Ok(()) => PLY_OK,
        Err(TryPopError::Empty) => PLY_EMPTY,
        Err(_) => PLY_BUSY,
    }
}

/// Copies `elem_size` bytes from `item` into the queue, at the back.
///
/// Linearizable: `PLY_FULL` means the queue was full at an instant during the
/// call. If the slot to push into still holds an item whose pop is in flight,
/// it waits for that pop to finish.
///
/// Thread and process safety: any thread or process, all at once; but a
/// consumer that dies in the middle of a pop makes a push that reaches its slot
/// wait forever (use `ply_array_queue_trypush` or `_push_until` across
/// processes).
///
/// Returns `PLY_OK`, `PLY_FULL` (nothing copied), `PLY_ERR_UNINIT` if `queue`
/// is not an initialized array queue, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `queue` points to a `ply_array_queue_t`'s worth of readable memory; `item`
/// readable for `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_push(
    queue: *const ply_array_queue_t,
    item: *const c_void,
) -> ply_status {
    // SAFETY: the caller's promises, passed on.
    unsafe { array_push(queue, item, GiveUp::new(None, core::ptr::null_mut())) }
}

/// As `ply_array_queue_push`, but never waits for another party: a pop in
/// flight at the slot gives `PLY_BUSY` (the queue is not full; try again).
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns `PLY_OK`, `PLY_FULL`, `PLY_BUSY`, or an error as for
/// `ply_array_queue_push`.
///
/// # Safety
///
/// As for `ply_array_queue_push`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_trypush(
    queue: *const ply_array_queue_t,
    item: *const c_void,
) -> ply_status {
    // SAFETY: the caller's promises, passed on.
    unsafe { array_push(queue, item, ply_core::sync::Spins(0)) }
}

/// As `ply_array_queue_push`, waiting for a pop in flight only until
/// `give_up(ctx)` returns non-zero (then `PLY_BUSY`; NULL: never gives up).
///
/// Thread and process safety: any thread or process, all at once; `give_up`
/// runs on the calling thread.
///
/// Returns `PLY_OK`, `PLY_FULL`, `PLY_BUSY`, or an error as for
/// `ply_array_queue_push`.
///
/// # Safety
///
/// As for `ply_array_queue_push`; `give_up` callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_push_until(
    queue: *const ply_array_queue_t,
    item: *const c_void,
    give_up: ply_give_up_fn,
    ctx: *mut c_void,
) -> ply_status {
    // SAFETY: the caller's promises, passed on.
    unsafe { array_push(queue, item, GiveUp::new(give_up, ctx)) }
}

/// Copies the item at the front into `out` (`elem_size` bytes) and removes it.
///
/// Linearizable: `PLY_EMPTY` means the queue was empty at an instant during the
/// call. If the oldest item's push is in flight, it waits for that push.
///
/// Thread and process safety: any thread or process, all at once; but a
/// producer that dies in the middle of a push makes a pop that reaches its slot
/// wait forever (use `_trypop` or `_pop_until` across processes, or
/// `ply_scq_t`).
///
/// Returns `PLY_OK`, `PLY_EMPTY` (nothing written), `PLY_ERR_UNINIT` if
/// `queue` is not an initialized array queue, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `queue` points to a `ply_array_queue_t`'s worth of readable memory; `out`
/// writable for `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_pop(
    queue: *const ply_array_queue_t,
    out: *mut c_void,
) -> ply_status {
    // SAFETY: the caller's promises, passed on.
    unsafe { array_pop(queue, out, GiveUp::new(None, core::ptr::null_mut())) }
}

/// As `ply_array_queue_pop`, but never waits for another party: a push in
/// flight at the head gives `PLY_BUSY` (the queue is not empty).
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns `PLY_OK`, `PLY_EMPTY`, `PLY_BUSY`, or an error as for
/// `ply_array_queue_pop`.
///
/// # Safety
///
/// As for `ply_array_queue_pop`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_trypop(
    queue: *const ply_array_queue_t,
    out: *mut c_void,
) -> ply_status {
    // SAFETY: the caller's promises, passed on.
    unsafe { array_pop(queue, out, ply_core::sync::Spins(0)) }
}

/// As `ply_array_queue_pop`, waiting for a push in flight only until
/// `give_up(ctx)` returns non-zero (then `PLY_BUSY`; NULL: never gives up).
///
/// Thread and process safety: any thread or process, all at once; `give_up`
/// runs on the calling thread.
///
/// Returns `PLY_OK`, `PLY_EMPTY`, `PLY_BUSY`, or an error as for
/// `ply_array_queue_pop`.
///
/// # Safety
///
/// As for `ply_array_queue_pop`; `give_up` callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_pop_until(
    queue: *const ply_array_queue_t,
    out: *mut c_void,
    give_up: ply_give_up_fn,
    ctx: *mut c_void,
) -> ply_status {
    // SAFETY: the caller's promises, passed on.
    unsafe { array_pop(queue, out, GiveUp::new(give_up, ctx)) }
}

/// The number of items (a consistent snapshot; stale once others act).
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns the count; 0 for a NULL, misaligned or uninitialized `queue`.
///
/// # Safety
///
/// `queue` must be NULL or point to a `ply_array_queue_t`'s worth of readable
/// memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_len(queue: *const ply_array_queue_t) -> usize {
    // SAFETY: the caller's promise.
    unsafe { array_queue(queue) }.map_or(0, |q| q.0.len())
}

/// The queue's capacity in items.
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns the capacity; 0 for a NULL, misaligned or uninitialized `queue`.
///
/// # Safety
///
/// As for `ply_array_queue_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_capacity(queue: *const ply_array_queue_t) -> usize {
    // SAFETY: the caller's promise.
    unsafe { array_queue(queue) }.map_or(0, |q| q.0.capacity())
}
