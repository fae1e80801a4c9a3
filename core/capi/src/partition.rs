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

use crate::{PLY_ERR_ALIGN, PLY_ERR_NULL, PLY_ERR_RANGE, PLY_ERR_SCHEDULE, PLY_ERR_UNINIT, PLY_OK};
use crate::{check_ptrs, or_return, ply_status};

mod dispenser;

pub use dispenser::*;

/// A split of `0..len` into chunks (ply-core's `Even`, `Fixed`, `Guided` or
/// `Weighted`), made by one of the `ply_schedule_*` constructors.
///
/// Plain words, not the Rust enum: a tag naming the kind (a value unlikely to
/// be there by chance) and its three parameters. Every call decodes them
/// through the kind's constructor, so a schedule that was never made (stray
/// or zero bytes) is `PLY_ERR_UNINIT` and one with impossible parameters
/// `PLY_ERR_SCHEDULE`, never an invalid enum or a division by zero.
pub struct ply_schedule_t {
    tag: usize,
    words: [usize; 3],
}

/// The tags of a `ply_schedule_t`'s kinds.
const EVEN: usize = 0x706c_7953;
const FIXED: usize = 0x706c_7954;
const GUIDED: usize = 0x706c_7955;
const WEIGHTED: usize = 0x706c_7956;

impl ply_schedule_t {
    /// The schedule these words describe: `PLY_ERR_UNINIT` for an unknown
    /// tag, `PLY_ERR_SCHEDULE` for parameters no constructor accepts.
    fn decode(&self) -> Result<Kind, ply_status> {
        let [a, b, c] = self.words;
        let kind = match self.tag {
            EVEN => Even::new(a, b).ok().map(Kind::Even),
            FIXED => Fixed::new(a, b).ok().map(Kind::Fixed),
            GUIDED => Guided::new(a, b, 1, c).ok().map(Kind::Guided),
            WEIGHTED => (c != 0 && (a != 0 || b == 0)).then_some(Kind::Weighted {
                costs: core::ptr::with_exposed_provenance(a),
                len: b,
                parts: c,
            }),
            _ => return Err(PLY_ERR_UNINIT),
        };
        kind.ok_or(PLY_ERR_SCHEDULE)
    }
}

/// The schedule at `schedule`, decoded (see `ply_schedule_t`).
///
/// # Safety
///
/// `schedule` must be NULL or point to a `ply_schedule_t`'s worth of readable
/// memory (any bytes are a value of its plain words).
pub(crate) unsafe fn schedule_at(schedule: *const ply_schedule_t) -> Result<Kind, ply_status> {
    if schedule.is_null() {
        return Err(PLY_ERR_NULL);
    }
    if !schedule.is_aligned() {
        return Err(PLY_ERR_ALIGN);
    }
    // SAFETY: non-null, aligned, readable (the caller's promise).
    unsafe { &*schedule }.decode()
}

/// Which schedule, with its parameters.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
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

/// Writes the schedule `tag` with `words` to `*schedule` if they decode (the
/// check every later call makes), or returns `PLY_ERR_SCHEDULE`, writing
/// nothing.
///
/// # Safety
///
/// `schedule` must be non-null, aligned and writable.
unsafe fn store(schedule: *mut ply_schedule_t, tag: usize, words: [usize; 3]) -> ply_status {
    let made = ply_schedule_t { tag, words };
    match made.decode() {
        Ok(_) => {
            // SAFETY: the caller's promise.
            unsafe { schedule.write(made) };
            PLY_OK
        }
        Err(status) => status,
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
    unsafe { store(schedule, EVEN, [len, parts, 0]) }
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
    unsafe { store(schedule, FIXED, [len, size, 0]) }
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
    // `Guided` keeps only `k · workers` (saturating), as one divisor: stored
    // so, it decodes to the same schedule (with `k = 1`), and a zero `k` or
    // `workers` makes it 0, which the decoding refuses.
    let divisor = k.saturating_mul(workers);
    // SAFETY: checked above; writable (caller).
    unsafe { store(schedule, GUIDED, [len, divisor, min]) }
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
    // The address is exposed: `decode` turns it back into a pointer.
    let words = [costs.expose_provenance(), len, parts];
    // SAFETY: checked above; writable (caller).
    unsafe { store(schedule, WEIGHTED, words) }
}

/// The number of chunks in `schedule`.
///
/// Thread and process safety: reads only; any thread or process, all at once.
///
/// Returns the count; 0 for a NULL or misaligned `schedule`, or one no
/// `ply_schedule_*` function made.
///
/// # Safety
///
/// `schedule` must be NULL or point to a `ply_schedule_t`'s worth of readable
/// memory (made by a `ply_schedule_*` function to be of use).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_schedule_chunks(schedule: *const ply_schedule_t) -> usize {
    // SAFETY: the caller's promise.
    unsafe { schedule_at(schedule) }.map_or(0, |s| s.chunks())
}

/// Writes chunk `i` of `schedule` as the half-open range `[*start, *end)`.
///
/// Thread and process safety: reads only; any thread or process, all at once.
///
/// Returns `PLY_OK`, `PLY_ERR_RANGE` if `i >= ply_schedule_chunks(schedule)`,
/// `PLY_ERR_UNINIT` if no `ply_schedule_*` function made `schedule` (nothing
/// written), or `PLY_ERR_NULL`/`PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `schedule` points to a `ply_schedule_t`'s worth of readable memory (made by
/// a `ply_schedule_*` function to be of use); `start`, `end` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_schedule_chunk(
    schedule: *const ply_schedule_t,
    i: usize,
    start: *mut usize,
    end: *mut usize,
) -> ply_status {
    check_ptrs!(start, end);
    // SAFETY: the caller's promise.
    let schedule = or_return!(unsafe { schedule_at(schedule) });
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
