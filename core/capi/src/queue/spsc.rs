//! The SPSC ring for C.

use core::ffi::c_void;
use core::mem::MaybeUninit;

use ply_core::queue::spsc::{Consumer, Producer, RingBase};

use super::bytes_for;
use crate::bytes::{ByteSlots, copy_item};
use crate::or_return;
use crate::place::{self, Kind, Tag};
use crate::place::{apart, published};
use crate::{PLY_EMPTY, PLY_ERR_ALIGN, PLY_ERR_CAPACITY, PLY_ERR_NULL, PLY_ERR_SIZE};
use crate::{PLY_ERR_UNINIT, PLY_FULL, PLY_OK};
use crate::{check_ptrs, ply_status};

/// A single-producer/single-consumer ring (ply-core's `spsc::Ring`): wait-free,
/// FIFO, items of `elem_size` bytes in a caller's buffer.
pub struct ply_spsc_t(RingBase<ByteSlots>);

/// The producer's handle on a `ply_spsc_t`: where the ring is in this process,
/// its position and a cached copy of the consumer's. Process-local: keep it
/// where only the producer uses it (not in shared memory), and do not copy it.
pub struct ply_spsc_producer_t(Handle<Producer<'static, ByteSlots>>);

/// The consumer's handle on a `ply_spsc_t`. Process-local, like the producer's.
pub struct ply_spsc_consumer_t(Handle<Consumer<'static, ByteSlots>>);

/// A handle that knows whether it was made where it is: `check` holds its own
/// address mixed with [`HANDLE_CHECK`], written when the handle is made. A
/// handle is process-local, so its address is a fair identity: a handle never
/// made (zero-filled, stray bytes) or copied elsewhere fails the check and is
/// `PLY_ERR_UNINIT`, instead of a dereference of whatever its ring pointer
/// holds. (A `fork()`ed child sees the handle at the same address: valid.)
struct Handle<H> {
    check: usize,
    handle: MaybeUninit<H>,
}

/// Mixed into a handle's check word. Odd, so that a word-aligned handle's
/// check is never 0: a zero-filled handle always fails.
const HANDLE_CHECK: usize = 0x706c_7968_u32 as usize | 1;

impl<H> Handle<H> {
    /// Writes a handle holding `handle` to `*out`, its check made for `out`.
    ///
    /// # Safety
    ///
    /// `out` must be non-null, aligned and writable.
    unsafe fn write(out: *mut Self, handle: H) {
        let check = out.addr() ^ HANDLE_CHECK;
        // SAFETY: the caller's promise.
        unsafe {
            out.write(Handle {
                check,
                handle: MaybeUninit::new(handle),
            })
        };
    }

    /// The handle at `at`, if one was made there: `PLY_ERR_NULL`,
    /// `PLY_ERR_ALIGN` or `PLY_ERR_UNINIT` otherwise.
    ///
    /// # Safety
    ///
    /// `at` must be NULL or point to a `Handle`'s worth of writable memory
    /// that only the calling thread uses.
    unsafe fn at<'a>(at: *mut Self) -> Result<&'a mut H, ply_status> {
        if at.is_null() {
            return Err(PLY_ERR_NULL);
        }
        if !at.is_aligned() {
            return Err(PLY_ERR_ALIGN);
        }
        // SAFETY: non-null, aligned, readable (the caller's promise); any
        // bytes are a `usize`.
        if unsafe { (*at).check } != at.addr() ^ HANDLE_CHECK {
            return Err(PLY_ERR_UNINIT);
        }
        // SAFETY: the check holds, so `Handle::write` initialized it here;
        // only this thread uses it (the caller's promise).
        Ok(unsafe { (*at).handle.assume_init_mut() })
    }
}

impl ply_spsc_t {
    fn tag(&self) -> &Tag {
        self.0.slots().tag()
    }
}

/// Bytes of buffer a `ply_spsc_t` of `capacity` items of `elem_size` bytes
/// needs: `capacity * elem_size` (as the macro `PLY_SPSC_BUFFER_SIZE`). The
/// buffer needs no particular alignment.
///
/// Thread safety: a pure function.
///
/// Returns the size, or 0 if it overflows.
#[unsafe(no_mangle)]
pub extern "C" fn ply_spsc_buffer_size(capacity: usize, elem_size: usize) -> usize {
    bytes_for(capacity, elem_size).unwrap_or(0)
}

/// Initializes `ring` as an empty ring of `capacity` items of `elem_size` bytes
/// each, stored in `buffer` (at least `ply_spsc_buffer_size(capacity,
/// elem_size)` bytes, any alignment). Any `capacity` from 1 works, not only
/// powers of two.
///
/// The ring records where `buffer` is relative to itself: in every process
/// that uses it, the buffer must be at the same distance from `ring` (map both
/// from one object), and an initialized ring must not be copied (see "Shared
/// memory" at the top of this header). Other processes check that with
/// `ply_spsc_attach`.
///
/// Thread and process safety: call it once, before any other use of `ring`,
/// and not while anything else uses it; other processes may start once it has
/// returned.
///
/// Returns `PLY_OK`; `PLY_ERR_NULL` or `PLY_ERR_ALIGN` for a bad `ring` or a
/// NULL `buffer`; `PLY_ERR_SIZE` if `elem_size` is 0 or the buffer size
/// overflows; `PLY_ERR_CAPACITY` if `capacity` is 0 or above `SIZE_MAX / 4`;
/// `PLY_ERR_OVERLAP` if the buffer overlaps `ring`.
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
    let Some(bytes) = bytes_for(capacity, elem_size).filter(|_| elem_size != 0) else {
        return PLY_ERR_SIZE;
    };
    // SAFETY: the caller vouches for `buffer`, and its size was checked above.
    let slots = unsafe { ByteSlots::new(buffer.cast(), capacity, elem_size) };
    match RingBase::with_slots(slots) {
        Ok(inner) => {
            // (Building the ring touched no slot, so this check may come after
            // the capacity's.)
            or_return!(apart(ring, buffer.cast(), bytes));
            // SAFETY: `ring` is non-null, aligned and writable (caller); any old
            // contents are plain bytes, so overwriting without a drop is fine.
            unsafe { ring.write(ply_spsc_t(inner)) };
            // SAFETY: just written; the ring is in its final place.
            let slots = unsafe { (*ring).0.slots() };
            place::publish(&[slots.place()], slots.tag(), Kind::Spsc);
            PLY_OK
        }
        Err(_) => PLY_ERR_CAPACITY,
    }
}

/// Checks, in a process that did not call `ply_spsc_init`, that `ring` is
/// initialized and that `buffer` (the buffer as this process maps it) is where
/// the ring will look for it. Call it once per process before making a handle;
/// it changes nothing.
///
/// Thread and process safety: any thread or process, at any time after the
/// ring's `ply_spsc_init` returned.
///
/// Returns `PLY_OK`; `PLY_ERR_UNINIT` if `ring` is not an initialized ring (a
/// fresh zero-filled mapping, say); `PLY_ERR_MAPPING` if the ring would find
/// its buffer elsewhere (the memory breaks the rule of "Shared memory" above);
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad `ring` or a NULL `buffer`.
///
/// # Safety
///
/// `ring` must point to readable memory of a `ply_spsc_t`'s size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_attach(
    ring: *const ply_spsc_t,
    buffer: *mut c_void,
) -> ply_status {
    check_ptrs!(ring);
    if buffer.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: non-null, aligned, readable (caller); any bytes are a value.
    let slots = unsafe { (*ring).0.slots() };
    place::attached(slots.tag(), Kind::Spsc, &[(slots.place(), buffer.cast())])
}

/// The ring behind `ring`, if it is an initialized one.
///
/// # Safety
///
/// As for `published`.
unsafe fn spsc<'a>(ring: *const ply_spsc_t) -> Result<&'a ply_spsc_t, ply_status> {
    // SAFETY: the caller's promise.
    unsafe { published(ring, Kind::Spsc, ply_spsc_t::tag) }
}

/// Makes the producer handle of `ring` in `*out`. A new handle continues from
/// where the last one stopped.
///
/// Thread and process safety: any thread or process, but at most one producer
/// handle may be in use for a ring at a time, across all threads and processes
/// (after `fork()`, the side that does not produce simply never uses its copy).
/// The handle is valid only in the process that made it (or a `fork()` of it
/// that sees `ring` at the same address).
///
/// Returns `PLY_OK`; `PLY_ERR_UNINIT` if `ring` is not an initialized ring;
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `ring` must point to a `ply_spsc_t`'s worth of readable memory and, once
/// initialized, outlive the handle; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_producer(
    ring: *const ply_spsc_t,
    out: *mut ply_spsc_producer_t,
) -> ply_status {
    check_ptrs!(out);
    // SAFETY: the caller's promise.
    let ring = or_return!(unsafe { spsc(ring) });
    // SAFETY: `ring` is initialized and outlives the handle (caller), which
    // stands in for the `'static`; the caller keeps to one producer.
    let (producer, _) = unsafe { ring.0.split_unchecked() };
    // SAFETY: `out` is valid for writes (checked non-null and aligned above).
    unsafe { Handle::write(&raw mut (*out).0, producer) };
    PLY_OK
}

/// Makes the consumer handle of `ring` in `*out`.
///
/// Thread and process safety: as `ply_spsc_producer`, for the one consumer.
///
/// Returns `PLY_OK`; `PLY_ERR_UNINIT` if `ring` is not an initialized ring;
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// As for `ply_spsc_producer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_consumer(
    ring: *const ply_spsc_t,
    out: *mut ply_spsc_consumer_t,
) -> ply_status {
    check_ptrs!(out);
    // SAFETY: the caller's promise.
    let ring = or_return!(unsafe { spsc(ring) });
    // SAFETY: as in `ply_spsc_producer`, for the one consumer.
    let (_, consumer) = unsafe { ring.0.split_unchecked() };
    // SAFETY: `out` is valid for writes (checked above).
    unsafe { Handle::write(&raw mut (*out).0, consumer) };
    PLY_OK
}

/// Copies `elem_size` bytes from `item` into the ring, at the back.
/// Wait-free: never waits for the consumer.
///
/// Thread and process safety: only the thread holding `producer` may call it
/// (one producer per ring); it runs concurrently with the consumer's calls, in
/// this or another process.
///
/// Returns `PLY_OK`, `PLY_FULL` if the ring has no free slot (nothing copied),
/// `PLY_ERR_UNINIT` if `ply_spsc_producer` did not make a handle at
/// `producer` (zero-filled or stray bytes, or a handle copied there), or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `producer` must point to a `ply_spsc_producer_t`'s worth of writable
/// memory (a handle from `ply_spsc_producer` to be of use); `item` readable
/// for `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_push(
    producer: *mut ply_spsc_producer_t,
    item: *const c_void,
) -> ply_status {
    check_ptrs!(producer);
    if item.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: writable, used by its one thread (caller).
    let producer = or_return!(unsafe { Handle::at(&raw mut (*producer).0) });
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
/// Thread and process safety: only the thread holding `consumer` may call it
/// (one consumer per ring); it runs concurrently with the producer's calls.
///
/// Returns `PLY_OK`, `PLY_EMPTY` if there is no item (nothing written),
/// `PLY_ERR_UNINIT` if `ply_spsc_consumer` did not make a handle at
/// `consumer`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `consumer` must point to a `ply_spsc_consumer_t`'s worth of writable
/// memory (a handle from `ply_spsc_consumer` to be of use); `out` writable for
/// `elem_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_pop(
    consumer: *mut ply_spsc_consumer_t,
    out: *mut c_void,
) -> ply_status {
    check_ptrs!(consumer);
    if out.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: writable, used by its one thread (caller).
    let consumer = or_return!(unsafe { Handle::at(&raw mut (*consumer).0) });
    let size = consumer.ring().slots().size();
    // SAFETY: `pop_in_place` hands us the published slot at the front, `size`
    // bytes; `out` is writable for `size` bytes (caller).
    match consumer.pop_in_place(|slot| unsafe { copy_item(out.cast(), slot, size) }) {
        Some(()) => PLY_OK,
        None => PLY_EMPTY,
    }
}

/// The number of items in the ring: a snapshot, exact only when neither side is
/// active.
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns the count; 0 for a NULL, misaligned or uninitialized `ring`.
///
/// # Safety
///
/// `ring` must be NULL or point to a `ply_spsc_t`'s worth of readable memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_len(ring: *const ply_spsc_t) -> usize {
    // SAFETY: the caller's promise.
    unsafe { spsc(ring) }.map_or(0, |r| r.0.len())
}

/// The ring's capacity in items.
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns the capacity; 0 for a NULL, misaligned or uninitialized `ring`.
///
/// # Safety
///
/// As for `ply_spsc_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spsc_capacity(ring: *const ply_spsc_t) -> usize {
    // SAFETY: the caller's promise.
    unsafe { spsc(ring) }.map_or(0, |r| r.0.capacity())
}
