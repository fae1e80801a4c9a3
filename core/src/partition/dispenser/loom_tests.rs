//! loom models of the dispenser's counter (run with `--cfg loom`, see
//! `core/tests/loom.rs` for the command; the public-API models are there).

use super::*;
use crate::partition::Fixed;
use loom::sync::Arc;
use loom::thread;

#[test]
fn two_claims_past_the_end_of_a_huge_schedule_hand_out_nothing() {
    // `usize::MAX` chunks, all issued: the counter is at the top of its
    // range. Every interleaving of two claims must find it exhausted; a step
    // past the end that wrapped the counter round would let the other claim
    // take chunk 0 again.
    loom::model(|| {
        let schedule = Fixed::new(usize::MAX, 1).unwrap();
        let dispenser = Arc::new(ChunkDispenser::<2>::new());
        dispenser.next.store(usize::MAX, Ordering::Relaxed);
        let other = {
            let dispenser = Arc::clone(&dispenser);
            thread::spawn(move || dispenser.claim(1, &schedule).map(|c| c.index))
        };
        let mine = dispenser.claim(0, &schedule).map(|c| c.index);
        assert_eq!(mine, None);
        assert_eq!(other.join().unwrap(), None);
        assert_eq!(dispenser.issued(), usize::MAX);
    });
}
