//! Work partitioning for C: ply-core's schedules (even, fixed, guided,
//! weighted), `shard`, and the chunk dispenser.
//!
//! A `ply_schedule_t` is a pure description of how `0..len` splits into chunks:
//! every thread or process can build its own copy and get the same chunks. The
//! `ply_dispenser_t` hands chunk indices of any schedule to whichever worker
//! asks next, with one `fetch_add`, and records who holds what so a supervisor
//! can re-issue a dead worker's chunk.

use core::ops::Range;

use ply_core::partition::{ChunkDispenser, Even, Fixed, Guided, Schedule, Weighted, shard};

use crate::{PLY_DONE, PLY_EMPTY, PLY_ERR_RANGE, PLY_ERR_SCHEDULE, PLY_OK, check_ptrs, ply_status};

/// The number of workers a `ply_dispenser_t` tracks (ids `0 ..
/// PLY_DISPENSER_WORKERS - 1`).
pub const PLY_DISPENSER_WORKERS: usize = 64;

/// A split of `0..len` into chunks (ply-core's `Even`, `Fixed`, `Guided` or
/// `Weighted`), made by one of the `ply_schedule_*` constructors.
pub struct ply_schedule_t(Kind);

/// The dispenser of chunk indices (ply-core's `ChunkDispenser`), for up to
/// `PLY_DISPENSER_WORKERS` workers.
pub struct ply_dispenser_t(ChunkDispenser<PLY_DISPENSER_WORKERS>);

/// Which schedule, with its parameters.
#[derive(Clone, Copy)]
enum Kind {
    Even(Even),
    Fixed(Fixed),
    Guided(Guided),
    /// The costs stay C's: a pointer and a length, read on every call.
    Weighted {
        costs: *const u64,
        len: usize,
        parts: usize,
    },
}

impl Kind {
    /// The weighted schedule over C's costs.
    fn weighted(costs: *const u64, len: usize, parts: usize) -> Option<Weighted<&'static [u64]>> {
        // SAFETY: `ply_schedule_weighted`'s caller keeps `costs[..len]` alive
        // and unchanged while the schedule is used.
        let costs: &[u64] = unsafe { core::slice::from_raw_parts(costs, len) };
        Weighted::new(costs, parts).ok()
    }
}

impl Schedule for Kind {
    fn chunks(&self) -> usize {
        match *self {
            Kind::Even(s) => s.chunks(),
            Kind::Fixed(s) => s.chunks(),
            Kind::Guided(s) => s.chunks(),
            Kind::Weighted { costs, len, parts } => {
                Kind::weighted(costs, len, parts).map_or(0, |w| w.chunks())
            }
        }
    }

    fn chunk(&self, i: usize) -> Range<usize> {
        match *self {
            Kind::Even(s) => s.chunk(i),
            Kind::Fixed(s) => s.chunk(i),
            Kind::Guided(s) => s.chunk(i),
            Kind::Weighted { costs, len, parts } => {
                Kind::weighted(costs, len, parts).map_or(0..0, |w| w.chunk(i))
            }
        }
    }
}

/// Whether `worker` is an id the dispenser tracks (ply-core panics on any
/// other, and no panic may reach C).
fn worker_in_range(worker: usize) -> bool {
    worker < PLY_DISPENSER_WORKERS
}

/// Writes `kind` to `*schedule`, or returns `PLY_ERR_SCHEDULE` for `None`.
///
/// # Safety
///
/// `schedule` must be non-null, aligned and writable.
unsafe fn store(schedule: *mut ply_schedule_t, kind: Option<Kind>) -> ply_status {
    match kind {
        Some(kind) => {
            // SAFETY: the caller's promise.
            unsafe { schedule.write(ply_schedule_t(kind)) };
            PLY_OK
        }
        None => PLY_ERR_SCHEDULE,
    }
}

/// Writes `range` to `*start` and `*end`.
///
/// # Safety
///
/// Both pointers non-null, aligned and writable.
unsafe fn write_range(range: Range<usize>, start: *mut usize, end: *mut usize) {
    // SAFETY: the caller's promise.
    unsafe {
        start.write(range.start);
        end.write(range.end);
    }
}

/// Makes `*schedule` split `0..len` into `parts` nearly equal ranges (sizes
/// differ by at most 1; fewer parts if `len < parts`): a static split.
///
/// Returns `PLY_OK`, `PLY_ERR_SCHEDULE` if `parts` is 0, or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN`. Thread safety: touches only `*schedule`.
///
/// # Safety
///
/// `schedule` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_schedule_even(
    schedule: *mut ply_schedule_t,
    len: usize,
    parts: usize,
) -> ply_status {
    check_ptrs!(schedule);
    // SAFETY: checked above; writable (caller).
    unsafe { store(schedule, Even::new(len, parts).ok().map(Kind::Even)) }
}

/// Makes `*schedule` split `0..len` into ranges of `size` items (the last may
/// be shorter): many small chunks for a dispenser.
///
/// Returns `PLY_OK`, `PLY_ERR_SCHEDULE` if `size` is 0, or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN`. Thread safety: touches only `*schedule`.
///
/// # Safety
///
/// `schedule` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_schedule_fixed(
    schedule: *mut ply_schedule_t,
    len: usize,
    size: usize,
) -> ply_status {
    check_ptrs!(schedule);
    // SAFETY: checked above; writable (caller).
    unsafe { store(schedule, Fixed::new(len, size).ok().map(Kind::Fixed)) }
}

/// Makes `*schedule` split `0..len` into shrinking chunks: each takes
/// `max(min, remaining / (k * workers))` items (OpenMP's `guided`), so big
/// chunks come first and small ones even out the end.
///
/// Returns `PLY_OK`, `PLY_ERR_SCHEDULE` if `workers`, `k` or `min` is 0, or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN`. Thread safety: touches only `*schedule`.
///
/// # Safety
///
/// `schedule` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_schedule_guided(
    schedule: *mut ply_schedule_t,
    len: usize,
    workers: usize,
    k: usize,
    min: usize,
) -> ply_status {
    check_ptrs!(schedule);
    let kind = Guided::new(len, workers, k, min).ok().map(Kind::Guided);
    // SAFETY: checked above; writable (caller).
    unsafe { store(schedule, kind) }
}

/// Makes `*schedule` split items `0..len`, costing `costs[i]` each, into
/// `parts` contiguous ranges of nearly equal total cost (each within one item's
/// cost of the ideal). The schedule keeps reading `costs`: they must stay alive
/// and unchanged while it is used. Each chunk lookup scans the costs (O(len)).
///
/// Returns `PLY_OK`, `PLY_ERR_SCHEDULE` if `parts` is 0, or `PLY_ERR_NULL`
/// (also for NULL `costs` with `len > 0`)/`PLY_ERR_ALIGN`. Thread safety:
/// touches only `*schedule`.
///
/// # Safety
///
/// `schedule` must be writable; `costs` readable for `len` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_schedule_weighted(
    schedule: *mut ply_schedule_t,
    costs: *const u64,
    len: usize,
    parts: usize,
) -> ply_status {
    check_ptrs!(schedule);
    let costs = if len == 0 {
        core::ptr::NonNull::<u64>::dangling().as_ptr().cast_const()
    } else {
        check_ptrs!(costs);
        costs
    };
    let kind = (parts != 0).then_some(Kind::Weighted { costs, len, parts });
    // SAFETY: checked above; writable (caller).
    unsafe { store(schedule, kind) }
}

/// The number of chunks in `schedule`; 0 for a NULL `schedule`. Thread safety:
/// reads only; any thread or process.
///
/// # Safety
///
/// `schedule` must be NULL or made by a `ply_schedule_*` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_schedule_chunks(schedule: *const ply_schedule_t) -> usize {
    // SAFETY: NULL or initialized (caller).
    unsafe { schedule.as_ref() }.map_or(0, |s| s.0.chunks())
}

/// Writes chunk `i` of `schedule` as the half-open range `[*start, *end)`.
///
/// Returns `PLY_OK`, `PLY_ERR_RANGE` if `i >= ply_schedule_chunks(schedule)`,
/// or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`. Thread safety: reads only.
///
/// # Safety
///
/// `schedule` made by a `ply_schedule_*` function; `start`, `end` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_schedule_chunk(
    schedule: *const ply_schedule_t,
    i: usize,
    start: *mut usize,
    end: *mut usize,
) -> ply_status {
    check_ptrs!(schedule, start, end);
    // SAFETY: checked above; initialized (caller).
    let schedule = unsafe { &(*schedule).0 };
    if i >= schedule.chunks() {
        return PLY_ERR_RANGE;
    }
    // SAFETY: checked above; writable (caller).
    unsafe { write_range(schedule.chunk(i), start, end) };
    PLY_OK
}

/// Writes shard `k` of `n` of `0..len` as `[*start, *end)`: `n` contiguous,
/// stable shards (an even split), so `n` machines can split one job with no
/// coordination.
///
/// Returns `PLY_OK`, `PLY_ERR_RANGE` if `k >= n`, `PLY_ERR_SCHEDULE` if `n` is 0,
/// or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`. Thread safety: a pure function.
///
/// # Safety
///
/// `start` and `end` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_shard(
    k: usize,
    n: usize,
    len: usize,
    start: *mut usize,
    end: *mut usize,
) -> ply_status {
    check_ptrs!(start, end);
    if n == 0 {
        return PLY_ERR_SCHEDULE;
    }
    match shard(k, n, len) {
        Ok(range) => {
            // SAFETY: checked above; writable (caller).
            unsafe { write_range(range, start, end) };
            PLY_OK
        }
        Err(_) => PLY_ERR_RANGE,
    }
}

/// Initializes `dispenser` at chunk 0, with no worker holding a chunk. Not
/// concurrently with any other use. One dispenser serves one run of one
/// schedule; initialize it again for the next run.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `dispenser` must point to writable memory for a `ply_dispenser_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_init(dispenser: *mut ply_dispenser_t) -> ply_status {
    check_ptrs!(dispenser);
    // SAFETY: checked above; writable (caller).
    unsafe { dispenser.write(ply_dispenser_t(ChunkDispenser::new())) };
    PLY_OK
}

/// Claims the next chunk of `schedule` for `worker`: a chunk re-issued by
/// `ply_dispenser_reclaim` first, else the next new one. Writes its index and
/// range. The chunk is recorded as `worker`'s until `ply_dispenser_complete` or
/// its next claim. Lock-free; any thread or process; every caller must pass the
/// same schedule.
///
/// Returns `PLY_OK`, `PLY_DONE` when every chunk has been handed out (nothing
/// written), `PLY_ERR_RANGE` if `worker >= PLY_DISPENSER_WORKERS`, or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `dispenser` initialized; `schedule` made by a `ply_schedule_*` function;
/// `index`, `start`, `end` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_claim(
    dispenser: *const ply_dispenser_t,
    worker: usize,
    schedule: *const ply_schedule_t,
    index: *mut usize,
    start: *mut usize,
    end: *mut usize,
) -> ply_status {
    check_ptrs!(dispenser, schedule, index, start, end);
    // SAFETY: checked above; initialized (caller).
    let (dispenser, schedule) = unsafe { (&(*dispenser).0, &(*schedule).0) };
    if !worker_in_range(worker) {
        return PLY_ERR_RANGE;
    }
    match dispenser.claim(worker, schedule) {
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
/// Returns `PLY_OK`, `PLY_ERR_RANGE` for a worker out of range, or
/// `PLY_ERR_NULL`.
///
/// # Safety
///
/// `dispenser` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_complete(
    dispenser: *const ply_dispenser_t,
    worker: usize,
) -> ply_status {
    check_ptrs!(dispenser);
    if !worker_in_range(worker) {
        return PLY_ERR_RANGE;
    }
    // SAFETY: checked above; initialized (caller).
    unsafe { &(*dispenser).0 }.complete(worker);
    PLY_OK
}

/// Writes the chunk `worker` holds now to `*index`.
///
/// Returns `PLY_OK` (it holds one), `PLY_EMPTY` (it holds none; nothing
/// written), `PLY_ERR_RANGE`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `dispenser` initialized; `index` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_held_by(
    dispenser: *const ply_dispenser_t,
    worker: usize,
    index: *mut usize,
) -> ply_status {
    check_ptrs!(dispenser, index);
    if !worker_in_range(worker) {
        return PLY_ERR_RANGE;
    }
    // SAFETY: checked above; initialized (caller).
    match unsafe { &(*dispenser).0 }.held_by(worker) {
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
/// Call it only for a worker that will never complete its chunk.
///
/// Returns `PLY_OK` (re-queued), `PLY_EMPTY` (it held nothing), `PLY_ERR_RANGE`,
/// or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `dispenser` initialized; `index` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_reclaim(
    dispenser: *const ply_dispenser_t,
    worker: usize,
    index: *mut usize,
) -> ply_status {
    check_ptrs!(dispenser, index);
    if !worker_in_range(worker) {
        return PLY_ERR_RANGE;
    }
    // SAFETY: checked above; initialized (caller).
    match unsafe { &(*dispenser).0 }.reclaim(worker) {
        Some(chunk) => {
            // SAFETY: checked above; writable (caller).
            unsafe { index.write(chunk) };
            PLY_OK
        }
        None => PLY_EMPTY,
    }
}

/// Chunk indices issued so far (for progress reports). 0 for NULL.
///
/// # Safety
///
/// `dispenser` must be NULL or initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_dispenser_issued(dispenser: *const ply_dispenser_t) -> usize {
    // SAFETY: NULL or initialized (caller).
    unsafe { dispenser.as_ref() }.map_or(0, |d| d.0.issued())
}
