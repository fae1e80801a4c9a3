//! The queues for C: ply-core's SPSC ring, array queue and SCQ queue over C
//! buffers, with the element size and capacity chosen at run time.
//!
//! Each is ply-core's generic queue ([`RingBase`], [`ArrayQueueBase`],
//! [`ScqBase`]) instantiated with
//! the byte storage of [`crate::bytes`]; the functions here check C's arguments,
//! then call the same `push_in_place`/`pop_in_place` the Rust types use.

use core::ffi::c_void;

use ply_core::queue::mpmc::{ArrayQueueBase, ScqBase, TryPopError, TryPushError};
use ply_core::queue::spsc::{Consumer, Producer, RingBase};

use crate::bytes::{ByteCells, ByteSlots, WordEntries, copy_item};
use crate::{
    GiveUp, PLY_BUSY, PLY_EMPTY, PLY_ERR_CAPACITY, PLY_ERR_NULL, PLY_ERR_SIZE, PLY_FULL, PLY_OK,
    check_ptrs, ply_give_up_fn, ply_status,
};

/// A single-producer/single-consumer ring (ply-core's `spsc::Ring`): wait-free,
/// FIFO, items of `elem_size` bytes in a caller's buffer.
pub struct ply_spsc_t(RingBase<ByteSlots>);

/// The producer's handle on a `ply_spsc_t`: its position and a cached copy of
/// the consumer's. Process-local: keep it where only the producer uses it.
pub struct ply_spsc_producer_t(Producer<'static, ByteSlots>);

/// The consumer's handle on a `ply_spsc_t`. Process-local, like the producer's.
pub struct ply_spsc_consumer_t(Consumer<'static, ByteSlots>);

/// A multi-producer/multi-consumer queue that stays live when a participant
/// stalls or dies (ply-core's `mpmc::ScqQueue`, Nikolaev's SCQ).
pub struct ply_scq_t(ScqBase<ByteSlots, WordEntries>);

/// A multi-producer/multi-consumer queue (ply-core's `mpmc::ArrayQueue`,
/// Vyukov's per-slot stamps): any capacity, the fastest MPMC queue between
/// threads, but a participant that dies mid-operation wedges it (use
/// `ply_scq_t` where one may).
pub struct ply_array_queue_t(ArrayQueueBase<ByteCells>);

/// `capacity * elem_size`, or `None` if it overflows what a buffer can be.
fn bytes_for(capacity: usize, elem_size: usize) -> Option<usize> {
    capacity
        .checked_mul(elem_size)
        .filter(|&bytes| bytes <= isize::MAX as usize)
}

/// Bytes of buffer a `ply_spsc_t` of `capacity` items of `elem_size` bytes
/// needs: `capacity * elem_size` (as the macro `PLY_SPSC_BUFFER_SIZE`), or 0 if
/// that overflows. The buffer needs no particular alignment.
///
/// Thread safety: a pure function.
#[unsafe(no_mangle)]
pub extern "C" fn ply_spsc_buffer_size(capacity: usize, elem_size: usize) -> usize {
    bytes_for(capacity, elem_size).unwrap_or(0)
}

/// Initializes `ring` as an empty ring of `capacity` items of `elem_size` bytes
/// each, stored in `buffer` (at least `ply_spsc_buffer_size(capacity,
/// elem_size)` bytes, any alignment). Any `capacity` from 1 works, not only
/// powers of two.
///
/// The ring records `buffer`'s address: `ring` and `buffer` must stay where they
/// are, and be at the same address in every process using them (a `MAP_SHARED`
/// mapping made before `fork()`). Call it once, before any handle is made; it
/// must not race with any other use of `ring`.
///
/// Returns `PLY_OK`; `PLY_ERR_NULL` or `PLY_ERR_ALIGN` for a bad `ring` or a
/// NULL `buffer`; `PLY_ERR_SIZE` if `elem_size` is 0 or the buffer size
/// overflows; `PLY_ERR_CAPACITY` if `capacity` is 0 or above `SIZE_MAX / 4`.
///
/// # Safety
///
/// `ring` must point to writable memory for a `ply_spsc_t`, and `buffer` to
/// writable memory of the size above that outlives every use of the ring.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_init(
    ring: *mut ply_spsc_t,
    buffer: *mut c_void,
    capacity: usize,
    elem_size: usize,
) -> ply_status {
    check_ptrs!(ring);
    if buffer.is_null() {
        return PLY_ERR_NULL;
    }
    if elem_size == 0 || bytes_for(capacity, elem_size).is_none() {
        return PLY_ERR_SIZE;
    }
    // SAFETY: the caller vouches for `buffer`, and its size was checked above.
    let slots = unsafe { ByteSlots::new(buffer.cast(), capacity, elem_size) };
    match RingBase::with_slots(slots) {
        Ok(inner) => {
            // SAFETY: `ring` is non-null, aligned and writable (caller); any old
            // contents are plain bytes, so overwriting without a drop is fine.
            unsafe { ring.write(ply_spsc_t(inner)) };
            PLY_OK
        }
        Err(_) => PLY_ERR_CAPACITY,
    }
}

/// Makes the producer handle of `ring` in `*out`.
///
/// At most one producer handle may be in use for a ring at a time, across all
/// threads and processes (after `fork()`, the side that does not produce simply
/// never uses its copy). A new handle continues from where the last one stopped.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `ring` must be initialized and outlive the handle; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_producer(
    ring: *const ply_spsc_t,
    out: *mut ply_spsc_producer_t,
) -> ply_status {
    check_ptrs!(ring, out);
    // SAFETY: `ring` is initialized and outlives the handle (caller), which
    // stands in for the `'static`; the caller keeps to one producer.
    let (producer, _) = unsafe { (*ring).0.split_unchecked() };
    // SAFETY: `out` is valid for writes (checked non-null and aligned above).
    unsafe { out.write(ply_spsc_producer_t(producer)) };
    PLY_OK
}

/// Makes the consumer handle of `ring` in `*out`. At most one consumer handle
/// may be in use at a time (see `ply_spsc_producer`).
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `ring` must be initialized and outlive the handle; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_consumer(
    ring: *const ply_spsc_t,
    out: *mut ply_spsc_consumer_t,
) -> ply_status {
    check_ptrs!(ring, out);
    // SAFETY: as in `ply_spsc_producer`, for the one consumer.
    let (_, consumer) = unsafe { (*ring).0.split_unchecked() };
    // SAFETY: `out` is valid for writes (checked above).
    unsafe { out.write(ply_spsc_consumer_t(consumer)) };
    PLY_OK
}

/// Copies `elem_size` bytes from `item` into the ring, at the back.
/// Wait-free: never waits for the consumer.
///
/// Only the thread holding `producer` may call it (one producer per ring); it
/// runs concurrently with the consumer's calls, in this or another process.
///
/// Returns `PLY_OK`, `PLY_FULL` if the ring has no free slot (nothing copied),
/// or `PLY_ERR_NULL` for a NULL pointer.
///
/// # Safety
///
/// `producer` must be a handle from `ply_spsc_producer`; `item` readable for
/// `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_push(
    producer: *mut ply_spsc_producer_t,
    item: *const c_void,
) -> ply_status {
    if producer.is_null() || item.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: a valid handle, used by its one thread (caller).
    let producer = unsafe { &mut (*producer).0 };
    let size = producer.ring().slots().size();
    // SAFETY: `push_in_place` hands us a free slot of `size` bytes, which the copy
    // fills completely; `item` is readable for `size` bytes (caller).
    if unsafe { producer.push_in_place(|slot| copy_item(slot, item.cast(), size)) } {
        PLY_OK
    } else {
        PLY_FULL
    }
}

/// Copies the item at the front of the ring into `out` (`elem_size` bytes) and
/// removes it. Wait-free.
///
/// Only the thread holding `consumer` may call it (one consumer per ring).
///
/// Returns `PLY_OK`, `PLY_EMPTY` if there is no item (nothing written), or
/// `PLY_ERR_NULL` for a NULL pointer.
///
/// # Safety
///
/// `consumer` must be a handle from `ply_spsc_consumer`; `out` writable for
/// `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_pop(
    consumer: *mut ply_spsc_consumer_t,
    out: *mut c_void,
) -> ply_status {
    if consumer.is_null() || out.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: a valid handle, used by its one thread (caller).
    let consumer = unsafe { &mut (*consumer).0 };
    let size = consumer.ring().slots().size();
    // SAFETY: `pop_in_place` hands us the published slot at the front, `size`
    // bytes; `out` is writable for `size` bytes (caller).
    match consumer.pop_in_place(|slot| unsafe { copy_item(out.cast(), slot, size) }) {
        Some(()) => PLY_OK,
        None => PLY_EMPTY,
    }
}

/// The number of items in the ring: a snapshot, exact only when neither side is
/// active. Any thread or process may call it. Returns 0 for a NULL `ring`.
///
/// # Safety
///
/// `ring` must be NULL or initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_len(ring: *const ply_spsc_t) -> usize {
    // SAFETY: NULL or initialized (caller).
    unsafe { ring.as_ref() }.map_or(0, |r| r.0.len())
}

/// The ring's capacity in items. Returns 0 for a NULL `ring`.
///
/// # Safety
///
/// `ring` must be NULL or initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_capacity(ring: *const ply_spsc_t) -> usize {
    // SAFETY: NULL or initialized (caller).
    unsafe { ring.as_ref() }.map_or(0, |r| r.0.capacity())
}

/// Bytes of buffer a `ply_scq_t` of `capacity` items of `elem_size` bytes needs
/// (as the macro `PLY_SCQ_BUFFER_SIZE`): `4 * capacity` words for the two index
/// rings, then `capacity * elem_size` bytes of slots. 0 if that overflows. The
/// buffer must be aligned like `size_t`.
///
/// Thread safety: a pure function.
#[unsafe(no_mangle)]
pub extern "C" fn ply_scq_buffer_size(capacity: usize, elem_size: usize) -> usize {
    scq_layout(capacity, elem_size).map_or(0, |(entries, slots)| entries + slots)
}

/// `(bytes of entries, bytes of slots)` of an SCQ buffer.
fn scq_layout(capacity: usize, elem_size: usize) -> Option<(usize, usize)> {
    let entries = capacity
        .checked_mul(4)?
        .checked_mul(core::mem::size_of::<usize>())?;
    let slots = bytes_for(capacity, elem_size)?;
    entries
        .checked_add(slots)
        .filter(|&total| total <= isize::MAX as usize)?;
    Some((entries, slots))
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
/// The queue records `buffer`'s address: both must stay put and be at the same
/// address in every process (a `MAP_SHARED` mapping made before `fork()`). Call
/// it once, before any other use; it must not race with any use of `queue`.
///
/// Returns `PLY_OK`; `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad `queue` or
/// `buffer`; `PLY_ERR_SIZE` for `elem_size` 0 or a size overflow;
/// `PLY_ERR_CAPACITY` if `capacity` is 0, not a power of two, or too large.
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
    if elem_size == 0 {
        return PLY_ERR_SIZE;
    }
    let Some((entry_bytes, _)) = scq_layout(capacity, elem_size) else {
        return PLY_ERR_SIZE;
    };
    let words = buffer.cast::<usize>();
    let ring_words = entry_bytes / core::mem::size_of::<usize>() / 2;
    // SAFETY: the buffer holds `4 * capacity` aligned words, then the slots
    // (its size is the caller's promise; the layout was checked above).
    let (free, ready, slots) = unsafe {
        (
            WordEntries::new(words, ring_words),
            WordEntries::new(words.add(ring_words), ring_words),
            ByteSlots::new(buffer.cast::<u8>().add(entry_bytes), capacity, elem_size),
        )
    };
    match ScqBase::with_storage(slots, free, ready) {
        Ok(inner) => {
            // SAFETY: `queue` is valid for writes (caller; checked above).
            unsafe { queue.write(ply_scq_t(inner)) };
            PLY_OK
        }
        Err(_) => PLY_ERR_CAPACITY,
    }
}

/// Copies `elem_size` bytes from `item` into the queue, at the back.
/// Lock-free; safe to call from any thread or process at once.
///
/// Returns `PLY_OK`, `PLY_FULL` (nothing copied), or `PLY_ERR_NULL`.
///
/// # Safety
///
/// `queue` initialized; `item` readable for `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_scq_push(queue: *const ply_scq_t, item: *const c_void) -> ply_status {
    if queue.is_null() || item.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: initialized (caller).
    let queue = unsafe { &(*queue).0 };
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
/// and removes it. Lock-free; safe to call from any thread or process at once.
///
/// Returns `PLY_OK`, `PLY_EMPTY` (nothing written), or `PLY_ERR_NULL`.
///
/// # Safety
///
/// `queue` initialized; `out` writable for `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_scq_pop(queue: *const ply_scq_t, out: *mut c_void) -> ply_status {
    if queue.is_null() || out.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: initialized (caller).
    let queue = unsafe { &(*queue).0 };
    let size = queue.slots().size();
    // SAFETY: `pop_in_place` hands us the slot of the item at the front, which we
    // own until it returns; `out` is writable for `size` bytes.
    match queue.pop_in_place(|slot| unsafe { copy_item(out.cast(), slot, size) }) {
        Some(()) => PLY_OK,
        None => PLY_EMPTY,
    }
}

/// The queue's capacity in items. Returns 0 for a NULL `queue`.
///
/// # Safety
///
/// `queue` must be NULL or initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_scq_capacity(queue: *const ply_scq_t) -> usize {
    // SAFETY: NULL or initialized (caller).
    unsafe { queue.as_ref() }.map_or(0, |q| q.0.capacity())
}

/// Bytes of buffer a `ply_array_queue_t` of `capacity` items of `elem_size`
/// bytes needs (as the macro `PLY_ARRAY_QUEUE_BUFFER_SIZE`): per item, a stamp
/// word and the item, rounded up to a whole word. 0 if that overflows. The
/// buffer must be aligned like `size_t`.
///
/// Thread safety: a pure function.
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
/// then push and pop. The queue records `buffer`'s address: both must stay put
/// and be at the same address in every process (a `MAP_SHARED` mapping made
/// before `fork()`). Call it once, before any other use.
///
/// Returns `PLY_OK`; `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad `queue` or
/// `buffer`; `PLY_ERR_SIZE` for `elem_size` 0 or a size overflow;
/// `PLY_ERR_CAPACITY` for `capacity` 0 or above `SIZE_MAX / 4`.
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
    if elem_size == 0 || ply_array_queue_buffer_size(capacity, elem_size) == 0 && capacity != 0 {
        return PLY_ERR_SIZE;
    }
    // SAFETY: aligned (checked) and of the size above (the caller's promise).
    let cells = unsafe { ByteCells::new(buffer.cast(), capacity, elem_size) };
    match ArrayQueueBase::with_slots(cells) {
        Ok(inner) => {
            // SAFETY: `queue` is valid for writes (caller; checked above).
            unsafe { queue.write(ply_array_queue_t(inner)) };
            PLY_OK
        }
        Err(_) => PLY_ERR_CAPACITY,
    }
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
    if queue.is_null() || item.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: initialized (caller).
    let queue = unsafe { &(*queue).0 };
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
    if queue.is_null() || out.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: initialized (caller).
    let queue = unsafe { &(*queue).0 };
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

/// Copies `elem_size` bytes from `item` into the queue, at the back. Any thread
/// or process.
///
/// Linearizable: `PLY_FULL` means the queue was full at an instant during the
/// call. If the slot to push into still holds an item whose pop is in flight,
/// it waits for that pop to finish: a consumer that dies there makes it wait
/// forever (use `ply_array_queue_trypush` or `_push_until` across processes).
///
/// Returns `PLY_OK`, `PLY_FULL` (nothing copied), or `PLY_ERR_NULL`.
///
/// # Safety
///
/// `queue` initialized; `item` readable for `elem_size` bytes.
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
/// Returns `PLY_OK`, `PLY_FULL`, `PLY_BUSY`, or `PLY_ERR_NULL`.
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
/// Returns `PLY_OK`, `PLY_FULL`, `PLY_BUSY`, or `PLY_ERR_NULL`.
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
/// Any thread or process.
///
/// Linearizable: `PLY_EMPTY` means the queue was empty at an instant during the
/// call. If the oldest item's push is in flight, it waits for that push: a
/// producer that dies there makes it wait forever (use `_trypop` or
/// `_pop_until` across processes, or `ply_scq_t`).
///
/// Returns `PLY_OK`, `PLY_EMPTY` (nothing written), or `PLY_ERR_NULL`.
///
/// # Safety
///
/// `queue` initialized; `out` writable for `elem_size` bytes.
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
/// Returns `PLY_OK`, `PLY_EMPTY`, `PLY_BUSY`, or `PLY_ERR_NULL`.
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
/// Returns `PLY_OK`, `PLY_EMPTY`, `PLY_BUSY`, or `PLY_ERR_NULL`.
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

/// The number of items (a consistent snapshot; stale once others act). 0 for
/// a NULL `queue`. Any thread or process.
///
/// # Safety
///
/// `queue` must be NULL or initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_len(queue: *const ply_array_queue_t) -> usize {
    // SAFETY: NULL or initialized (caller).
    unsafe { queue.as_ref() }.map_or(0, |q| q.0.len())
}

/// The queue's capacity in items. 0 for a NULL `queue`.
///
/// # Safety
///
/// `queue` must be NULL or initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_array_queue_capacity(queue: *const ply_array_queue_t) -> usize {
    // SAFETY: NULL or initialized (caller).
    unsafe { queue.as_ref() }.map_or(0, |q| q.0.capacity())
}
