//! Work partitioning for C: ply-core's schedules (even, fixed, guided,
//! weighted), `shard`, and the chunk dispenser.
//!
//! A `ply_schedule_t` is a pure description of how `0..len` splits into chunks:
//! every thread or process can build its own copy and get the same chunks. The
//! `ply_dispenser_t` hands chunk indices of any schedule to whichever worker
//! asks next, with one `fetch_add`, and records who holds what so a supervisor
//! can re-issue a dead worker's chunk.

use core::ops::Range;

use ply_core::partition::{Even, Fixed, Guided, Schedule, Weighted, shard};

use crate::{PLY_ERR_RANGE, PLY_ERR_SCHEDULE, PLY_OK, check_ptrs, ply_status};

mod dispenser;

pub use dispenser::*;

/// A split of `0..len` into chunks (ply-core's `Even`, `Fixed`, `Guided` or
/// `Weighted`), made by one of the `ply_schedule_*` constructors.
pub struct ply_schedule_t(Kind);

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
pub(crate) unsafe fn write_range(range: Range<usize>, start: *mut usize, end: *mut usize) {
    // SAFETY: the caller's promise.
    unsafe {
        start.write(range.start);
        end.write(range.end);
    }
}

/// Makes `*schedule` split `0..len` into `parts` nearly equal ranges (sizes
/// differ by at most 1; fewer parts if `len < parts`): a static split.
///
/// Thread and process safety: touches only `*schedule`; a schedule is plain
/// data, which any thread or process may read once made (or make its own).
///
/// Returns `PLY_OK`, `PLY_ERR_SCHEDULE` if `parts` is 0, or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
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
/// Thread and process safety: touches only `*schedule`; a schedule is plain
/// data, which any thread or process may read once made (or make its own).
///
/// Returns `PLY_OK`, `PLY_ERR_SCHEDULE` if `size` is 0, or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
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
/// Thread and process safety: touches only `*schedule`; a schedule is plain
/// data, which any thread or process may read once made (or make its own).
///
/// Returns `PLY_OK`, `PLY_ERR_SCHEDULE` if `workers`, `k` or `min` is 0, or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
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
/// Thread and process safety: touches only `*schedule`. The schedule holds the
/// address of `costs`, so it is valid only in the process that made it (and its
/// `fork()`s): every other process makes its own from its own costs.
///
/// Returns `PLY_OK`, `PLY_ERR_SCHEDULE` if `parts` is 0, or `PLY_ERR_NULL`
/// (also for NULL `costs` with `len > 0`)/`PLY_ERR_ALIGN`.
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

/// The number of chunks in `schedule`.
///
/// Thread and process safety: reads only; any thread or process, all at once.
///
/// Returns the count; 0 for a NULL or misaligned `schedule`.
///
/// # Safety
///
/// `schedule` must be NULL or made by a `ply_schedule_*` function.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_schedule_chunks(schedule: *const ply_schedule_t) -> usize {
    if !schedule.is_aligned() {
        return 0;
    }
    // SAFETY: NULL or initialized (caller); aligned (checked).
    unsafe { schedule.as_ref() }.map_or(0, |s| s.0.chunks())
}

/// Writes chunk `i` of `schedule` as the half-open range `[*start, *end)`.
///
/// Thread and process safety: reads only; any thread or process, all at once.
///
/// Returns `PLY_OK`, `PLY_ERR_RANGE` if `i >= ply_schedule_chunks(schedule)`,
/// or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
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
/// Thread safety: a pure function.
///
/// Returns `PLY_OK`, `PLY_ERR_RANGE` if `k >= n`, `PLY_ERR_SCHEDULE` if `n` is 0,
/// or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
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
