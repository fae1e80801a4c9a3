//! The chunk dispenser for C: ply-core's `DispenserBase` over worker slots in a
//! caller's buffer, with the number of workers chosen at run time.

use core::ffi::c_void;

use ply_core::partition::DispenserBase;

use super::{ply_schedule_t, schedule_at, write_range};
use crate::bytes::WordWorkers;
use crate::place::{self, Kind, Tag, apart, published};
use crate::{PLY_DONE, PLY_EMPTY, PLY_ERR_CAPACITY, PLY_ERR_NULL, PLY_ERR_RANGE, PLY_ERR_SIZE};
use crate::{PLY_OK, check_ptrs, or_return, ply_status};

/// The dispenser of chunk indices (ply-core's `ChunkDispenser`), for as many
/// workers as its buffer has slots.
pub struct ply_dispenser_t(DispenserBase<WordWorkers>);

impl ply_dispenser_t {
    fn tag(&self) -> &Tag {
        self.0.slots().tag()
    }
}

/// Bytes of buffer a `ply_dispenser_t` for `workers` workers needs (as the
/// macro `PLY_DISPENSER_BUFFER_SIZE`): `PLY_CACHE_LINE` bytes per worker, so
/// that workers recording their claims do not share a cache line. The buffer
/// must be aligned like `size_t`; aligned to `PLY_CACHE_LINE`, no two workers'
/// slots share a line.
///
/// Thread safety: a pure function.
///
/// Returns the size, or 0 if it overflows.
#[unsafe(no_mangle)]
pub extern "C" fn ply_dispenser_buffer_size(workers: usize) -> usize {
    buffer_bytes(workers).unwrap_or(0)
}

fn buffer_bytes(workers: usize) -> Option<usize> {
    workers
        .checked_mul(WordWorkers::STRIDE)
        .filter(|&bytes| bytes <= isize::MAX as usize)
}

/// Initializes `dispenser` at chunk 0 for workers `0 .. workers - 1`, their
/// slots in `buffer` (`ply_dispenser_buffer_size(workers)` bytes, aligned like
/// `size_t`), no worker holding a chunk. One dispenser serves one run of one
/// schedule; initialize it again for the next run.
///
/// The dispenser records where `buffer` is relative to itself: in every process
/// that uses it, the buffer must be at the same distance from `dispenser` (map
/// both from one object), and an initialized dispenser must not be copied (see
/// "Shared memory" above). Other processes check that with
/// `ply_dispenser_attach`.
///
/// Thread and process safety: not while anything else uses `dispenser`.
///
/// Returns `PLY_OK`; `PLY_ERR_CAPACITY` if `workers` is 0; `PLY_ERR_SIZE` if
/// the buffer size overflows; `PLY_ERR_OVERLAP` if the buffer overlaps
/// `dispenser`; `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad `dispenser` or
/// `buffer`.
///
/// # Safety
///
/// `dispenser` must point to writable memory for a `ply_dispenser_t`; `buffer`
/// to writable memory of the size above that outlives every use of it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_init(
    dispenser: *mut ply_dispenser_t,
    buffer: *mut c_void,
    workers: usize,
) -> ply_status {
    check_ptrs!(dispenser, buffer.cast::<usize>());
    if workers == 0 {
        return PLY_ERR_CAPACITY;
    }
    let Some(bytes) = buffer_bytes(workers) else {
        return PLY_ERR_SIZE;
    };
    or_return!(apart(dispenser, buffer.cast(), bytes));
    // SAFETY: aligned (checked) and of the size above (the caller's promise).
    let slots = unsafe { WordWorkers::new(buffer.cast(), workers) };
    let inner = DispenserBase::with_slots(slots);
    // SAFETY: `dispenser` is valid for writes (caller; checked above).
    unsafe { dispenser.write(ply_dispenser_t(inner)) };
    // SAFETY: just written; the dispenser is in its final place.
    let slots = unsafe { (*dispenser).0.slots() };
    place::publish(&[slots.place()], slots.tag(), Kind::Dispenser);
    PLY_OK
}

/// Checks, in a process that did not call `ply_dispenser_init`, that
/// `dispenser` is initialized and that `buffer` (the buffer as this process
/// maps it) is where the dispenser will look for it. Call it once per process
/// before other calls; it changes nothing.
///
/// Thread and process safety: any thread or process, at any time after the
/// dispenser's `ply_dispenser_init` returned.
///
/// Returns `PLY_OK`; `PLY_ERR_UNINIT` if `dispenser` is not an initialized
/// dispenser; `PLY_ERR_MAPPING` if it would find its buffer elsewhere;
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `dispenser` must point to readable memory of a `ply_dispenser_t`'s size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_attach(
    dispenser: *const ply_dispenser_t,
    buffer: *mut c_void,
) -> ply_status {
    check_ptrs!(dispenser);
    if buffer.is_null() {
        return PLY_ERR_NULL;
    }
    // SAFETY: non-null, aligned, readable (caller); any bytes are a value.
    let slots = unsafe { (*dispenser).0.slots() };
    place::attached(
        slots.tag(),
        Kind::Dispenser,
        &[(slots.place(), buffer.cast())],
    )
}

/// The dispenser behind `dispenser` if it is an initialized one, and `worker`
/// is one of its workers: else the status to return.
///
/// # Safety
///
/// As for `published`.
unsafe fn worker_of<'a>(
    dispenser: *const ply_dispenser_t,
    worker: usize,
) -> Result<&'a DispenserBase<WordWorkers>, ply_status> {
    // SAFETY: the caller's promise.
    let dispenser = &unsafe { published(dispenser, Kind::Dispenser, ply_dispenser_t::tag) }?.0;
    // ply-core panics on a worker out of range, and no panic may reach C.
    if worker < dispenser.workers() {
        Ok(dispenser)
    } else {
        Err(PLY_ERR_RANGE)
    }
}

/// Claims the next chunk of `schedule` for `worker`: a chunk re-issued by
/// `ply_dispenser_reclaim` first, else the next new one. Writes its index and
/// range. The chunk is recorded as `worker`'s until `ply_dispenser_complete` or
/// its next claim. Lock-free.
///
/// Thread and process safety: any thread or process, all at once; every caller
/// must pass the same schedule, and each worker id must be used by one thread
/// at a time. A worker that dies holding a chunk leaves it recorded as its own
/// until `ply_dispenser_reclaim`.
///
/// Returns `PLY_OK`, `PLY_DONE` when every chunk has been handed out (nothing
/// written), `PLY_ERR_RANGE` if `worker` is not below the dispenser's worker
/// count, `PLY_ERR_UNINIT` if `dispenser` is not an initialized dispenser, or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `dispenser` points to a `ply_dispenser_t`'s worth of readable memory;
/// `schedule` made by a `ply_schedule_*` function; `index`, `start`, `end`
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_claim(
    dispenser: *const ply_dispenser_t,
    worker: usize,
    schedule: *const ply_schedule_t,
    index: *mut usize,
    start: *mut usize,
    end: *mut usize,
) -> ply_status {
    check_ptrs!(index, start, end);
    // SAFETY: the caller's promise.
    let dispenser = or_return!(unsafe { worker_of(dispenser, worker) });
    // SAFETY: the caller's promise.
    let schedule = or_return!(unsafe { schedule_at(schedule) });
    match dispenser.claim(worker, &schedule) {
        Some(claim) => {
            // SAFETY: checked above; writable (caller).
            unsafe {
                index.write(claim.index);
                write_range(claim.range, start, end);
            }
            PLY_OK
        }
        None => PLY_DONE,
    }
}

/// Marks `worker`'s current chunk done (it will not be reclaimed).
///
/// Thread and process safety: the thread using the id `worker`.
///
/// Returns `PLY_OK`, or an error as for `ply_dispenser_claim`.
///
/// # Safety
///
/// `dispenser` points to a `ply_dispenser_t`'s worth of readable memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_complete(
    dispenser: *const ply_dispenser_t,
    worker: usize,
) -> ply_status {
    // SAFETY: the caller's promise.
    or_return!(unsafe { worker_of(dispenser, worker) }).complete(worker);
    PLY_OK
}

/// Writes the chunk `worker` holds now to `*index`.
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns `PLY_OK` (it holds one), `PLY_EMPTY` (it holds none; nothing
/// written), or an error as for `ply_dispenser_claim`.
///
/// # Safety
///
/// `dispenser` points to a `ply_dispenser_t`'s worth of readable memory;
/// `index` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_held_by(
    dispenser: *const ply_dispenser_t,
    worker: usize,
    index: *mut usize,
) -> ply_status {
    check_ptrs!(index);
    // SAFETY: the caller's promise.
    match or_return!(unsafe { worker_of(dispenser, worker) }).held_by(worker) {
        Some(held) => {
            // SAFETY: checked above; writable (caller).
            unsafe { index.write(held) };
            PLY_OK
        }
        None => PLY_EMPTY,
    }
}

/// For a supervisor, after `worker` died: takes the chunk it held and queues it
/// so the next `ply_dispenser_claim` by anyone gets it. Writes the chunk's index.
///
/// Thread and process safety: any thread or process, alongside the other
/// workers' claims; call it only for a worker that will never complete its
/// chunk (dead), or that chunk is done twice.
///
/// Returns `PLY_OK` (re-queued), `PLY_EMPTY` (it held nothing), or an error as
/// for `ply_dispenser_claim`.
///
/// # Safety
///
/// `dispenser` points to a `ply_dispenser_t`'s worth of readable memory;
/// `index` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_reclaim(
    dispenser: *const ply_dispenser_t,
    worker: usize,
    index: *mut usize,
) -> ply_status {
    check_ptrs!(index);
    // SAFETY: the caller's promise.
    match or_return!(unsafe { worker_of(dispenser, worker) }).reclaim(worker) {
        Some(chunk) => {
            // SAFETY: checked above; writable (caller).
            unsafe { index.write(chunk) };
            PLY_OK
        }
        None => PLY_EMPTY,
    }
}

/// The number of workers `dispenser` tracks (ids `0 .. n - 1`).
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns the count; 0 for a NULL, misaligned or uninitialized `dispenser`.
///
/// # Safety
///
/// `dispenser` must be NULL or point to a `ply_dispenser_t`'s worth of
/// readable memory.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_workers(dispenser: *const ply_dispenser_t) -> usize {
    // SAFETY: the caller's promise.
    unsafe { published(dispenser, Kind::Dispenser, ply_dispenser_t::tag) }
        .map_or(0, |d| d.0.workers())
}

/// Chunk indices issued so far (for progress reports).
///
/// Thread and process safety: any thread or process, all at once.
///
/// Returns the count; 0 for a NULL, misaligned or uninitialized `dispenser`.
///
/// # Safety
///
/// As for `ply_dispenser_workers`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_issued(dispenser: *const ply_dispenser_t) -> usize {
    // SAFETY: the caller's promise.
    unsafe { published(dispenser, Kind::Dispenser, ply_dispenser_t::tag) }
        .map_or(0, |d| d.0.issued())
}
