//! Walking a chunk a few pages ahead of itself.
//!
//! A map worker streams through its chunk of inputs (and, for `map_slice_plain`, of
//! result slots). Hardware prefetchers follow such a stream only within a
//! 4 KiB page: at each new page the next load misses the TLB and waits for a
//! page walk, and only then does the stream pick up again. In a forked worker
//! every page is a TLB miss (its page tables are new), and under a hypervisor
//! each walk is two-dimensional (guest and host tables), so those stalls add
//! up to most of a trivial map's time. [`for_each_prefetched`] issues one
//! software prefetch per page, [`PAGES_AHEAD`] pages ahead, which starts the
//! walk (and the first line's fetch) while the current page is still being
//! worked on. Measured on the 2-vCPU VM of `BENCHMARKS.md`: a 1,000,000-item
//! `map_slice_plain` went from a median of 3.1–3.9 ms to 2.6–3.3 ms; 2 to 8 pages
//! ahead all did about as well.
//!
//! A prefetch is only a hint: it never faults, and it is compiled only on
//! x86-64 (elsewhere the loop runs without it).

use std::ops::Range;

/// How far ahead of the current item the prefetch reaches, in pages.
pub(super) const PAGES_AHEAD: usize = 4;

const PAGE: usize = 4096;

/// Runs `body(i)` for each `i` in `range` in order, prefetching the item
/// [`PAGES_AHEAD`] pages ahead in `inputs` (and in `outputs`, a run of
/// `inputs.len()` slots of `O`, when given) once per page.
pub(super) fn for_each_prefetched<I, O>(
    range: Range<usize>,
    inputs: &[I],
    outputs: Option<*const O>,
    mut body: impl FnMut(usize),
) {
    let per_page = (PAGE / size_of::<I>().max(size_of::<O>()).max(1)).max(1);
    let ahead = PAGES_AHEAD * per_page;
    let mut i = range.start;
    while i < range.end {
        let page_end = (i + per_page).min(range.end);
        if i + ahead < inputs.len() {
            prefetch(inputs[i + ahead..].as_ptr());
            if let Some(outputs) = outputs {
                // `wrapping_add`: the hint needs only an address, and the slot
                // lies inside `outputs` (`i + ahead < inputs.len()`).
                prefetch(outputs.wrapping_add(i + ahead));
            }
        }
        for j in i..page_end {
            body(j);
        }
        i = page_end;
    }
}

/// Asks the CPU to start loading the line at `at` into cache.
#[inline(always)]
fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 has no architectural effect besides caching: it
    // never faults, whatever the address, and SSE is part of the x86-64
    // baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_every_index_once_in_order() {
        for (len, range) in [
            (0, 0..0),
            (10, 0..10),
            (5_000, 17..4_321),
            (100_000, 0..100_000),
        ] {
            let inputs = vec![0u64; len];
            let outputs = vec![0u8; len];
            let mut seen = Vec::new();
            for_each_prefetched(range.clone(), &inputs, Some(outputs.as_ptr()), |i| {
                seen.push(i)
            });
            assert_eq!(seen, range.collect::<Vec<_>>());
        }
        // Zero-sized items: one page is "everything".
        let units = [(); 3];
        let mut seen = Vec::new();
        for_each_prefetched::<(), ()>(0..3, &units, None, |i| seen.push(i));
        assert_eq!(seen, [0, 1, 2]);
    }
}
