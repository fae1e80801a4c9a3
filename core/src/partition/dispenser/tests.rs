//! Tests that need the dispenser's counter (the public-API ones are in
//! `partition/tests.rs`, the loom models in `dispenser/loom_tests.rs`).

use super::*;
use crate::partition::Fixed;
use core::sync::atomic::AtomicUsize as StdAtomicUsize;

#[test]
fn claims_past_the_end_never_wrap_the_counter_round_to_chunk_0() {
    // A schedule of `usize::MAX` chunks (one item each), all but the last
    // already issued. Once the last is claimed, every claim finds the
    // schedule exhausted; two workers keep claiming at once. The counter is
    // at the top of its range: a claim that stepped past the end could wrap
    // it round, and the other claimer would be handed chunk 0 again.
    let schedule = Fixed::new(usize::MAX, 1).unwrap();
    assert_eq!(schedule.chunks(), usize::MAX);
    let dispenser = ChunkDispenser::<2>::new();
    dispenser.next.store(usize::MAX - 1, Ordering::Relaxed);
    let last = dispenser.claim(0, &schedule).map(|c| c.index);
    assert_eq!(last, Some(usize::MAX - 1));
    // A race, so many rounds (the loom model in `loom_tests.rs` checks every
    // interleaving of two claims).
    let rounds = if cfg!(miri) { 200 } else { 1_000_000 };
    let handed_out = StdAtomicUsize::new(0);
    let start = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for worker in 0..2 {
            let (dispenser, schedule, handed_out) = (&dispenser, &schedule, &handed_out);
            let start = &start;
            s.spawn(move || {
                start.wait();
                for _ in 0..rounds {
                    if dispenser.claim(worker, schedule).is_some() {
                        handed_out.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(
        handed_out.load(Ordering::Relaxed),
        0,
        "chunks handed out again after the schedule was exhausted"
    );
    assert_eq!(
        dispenser.issued(),
        usize::MAX,
        "the counter stays at the end"
    );
}
