use super::*;
use crate::queue::test_items::{PanicsOnDrop, drop_counts, expect_panic};
use core::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering::SeqCst};
use std::vec::Vec;

/// Counts drops so tests can check every item is dropped exactly once.
struct Counted<'a>(&'a StdAtomicUsize);
impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn fifo_full_and_empty() {
    let ring = Ring::<u32, 4>::new();
    let mut tx = ring.producer().unwrap();
    assert_eq!(ring.pop(), None);
    assert_eq!(ring.take_batch(4, |_| panic!("empty")), Take::Empty);
    for i in 0..4 {
        tx.push(i).unwrap();
    }
    assert_eq!(tx.push(9), Err(9));
    assert_eq!(ring.len(), 4);
    assert_eq!(ring.pop(), Some(0));
    tx.push(4).unwrap();
    let mut got = Vec::new();
    while let Some(x) = ring.pop() {
        got.push(x);
    }
    assert_eq!(got, [1, 2, 3, 4]);
    assert!(ring.is_empty());
}

#[test]
fn batches_take_half_rounded_up_and_respect_max() {
    let ring = Ring::<usize, 64>::new();
    let mut tx = ring.producer().unwrap();
    for i in 0..20 {
        tx.push(i).unwrap();
    }
    let mut got = Vec::new();
    assert_eq!(ring.take_batch(64, |x| got.push(x)), Take::Items(10));
    assert_eq!(ring.take_batch(2, |x| got.push(x)), Take::Items(2));
    assert_eq!(ring.take_batch(64, |x| got.push(x)), Take::Items(4)); // 8 left
    assert_eq!(ring.take_batch(0, |x| got.push(x)), Take::Items(1)); // 0 counts as 1
    assert_eq!(got, (0..17).collect::<Vec<_>>());
    assert_eq!(ring.len(), 3);
}

#[test]
fn wraps_many_laps_with_mixed_batches() {
    let ring = Ring::<usize, 8>::new();
    let mut tx = ring.producer().unwrap();
    let (mut next_in, mut next_out) = (0, 0);
    for round in 0..500 {
        for _ in 0..(round % 9) {
            if tx.push(next_in).is_ok() {
                next_in += 1;
            }
        }
        let _ = ring.take_batch(round % 5, |x| {
            assert_eq!(x, next_out);
            next_out += 1;
        });
    }
    while let Some(x) = ring.pop() {
        assert_eq!(x, next_out);
        next_out += 1;
    }
    assert_eq!(next_in, next_out);
    assert!(next_in > 1000);
}

#[test]
fn push_within_counts_claimed_items() {
    let ring = Ring::<u8, 8>::new();
    let mut tx = ring.producer().unwrap();
    tx.push_within(1, 2).unwrap();
    tx.push_within(2, 2).unwrap();
    assert_eq!(tx.push_within(3, 2), Err(3));
    assert_eq!(tx.push_within(3, 100), Ok(())); // clamped to N, room left
    assert_eq!(ring.pop(), Some(1));
    assert_eq!(tx.push_within(4, 3), Ok(()));
}

#[test]
fn one_producer_at_a_time_and_handover_keeps_items() {
    let ring = Ring::<u8, 4>::new();
    let mut a = ring.producer().unwrap();
    assert!(ring.producer().is_none());
    a.push(1).unwrap();
    drop(a);
    let mut b = ring.producer().unwrap();
    b.push(2).unwrap();
    assert_eq!(ring.pop(), Some(1));
    assert_eq!(ring.pop(), Some(2));
}

#[test]
fn panicking_sink_drops_the_rest_and_unlocks() {
    let drops = StdAtomicUsize::new(0);
    let ring = Ring::<Counted<'_>, 8>::new();
    let mut tx = ring.producer().unwrap();
    for _ in 0..8 {
        assert!(tx.push(Counted(&drops)).is_ok());
    }
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut n = 0;
        ring.take_batch(8, |item| {
            n += 1;
            if n == 2 {
                panic!("sink failed");
            }
            drop(item);
        })
    }));
    assert!(caught.is_err());
    // 4 claimed: one dropped by the sink, one by the unwinding sink, two by the guard.
    assert_eq!(drops.load(SeqCst), 4);
    assert_eq!(ring.len(), 4);
    assert!(tx.push(Counted(&drops)).is_ok()); // space came back
    drop(tx);
    drop(ring);
    assert_eq!(drops.load(SeqCst), 9);
}

#[test]
fn drop_drops_remaining_items_once() {
    let drops = StdAtomicUsize::new(0);
    {
        let ring = Ring::<Counted<'_>, 4>::new();
        let mut tx = ring.producer().unwrap();
        for _ in 0..3 {
            assert!(tx.push(Counted(&drops)).is_ok());
        }
        drop(ring.pop());
        assert_eq!(drops.load(SeqCst), 1);
    }
    assert_eq!(drops.load(SeqCst), 3);
}

#[test]
fn thieves_and_owner_take_every_item_exactly_once() {
    let items: usize = if cfg!(miri) { 300 } else { 200_000 };
    let ring = Ring::<usize, 16>::new();
    let taken: Vec<StdAtomicUsize> = (0..items).map(|_| StdAtomicUsize::new(0)).collect();
    let done = core::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut last = None;
                loop {
                    let finished = done.load(SeqCst);
                    let mut batch = Vec::new();
                    if let Take::Items(_) = ring.take_batch(8, |x| batch.push(x)) {
                        // A batch is in order, and each thief sees increasing items.
                        assert!(batch.windows(2).all(|w| w[0] < w[1]));
                        assert!(last < batch.first().copied());
                        last = batch.last().copied();
                        for x in batch {
                            taken[x].fetch_add(1, SeqCst);
                        }
                    } else if finished {
                        break;
                    } else {
                        std::thread::yield_now();
                    }
                }
            });
        }
        let mut tx = ring.producer().unwrap();
        for i in 0..items {
            let mut item = i;
            while let Err(back) = tx.push(item) {
                item = back;
                // The owner helps when full, as a scheduler's worker would.
                if let Some(x) = ring.pop() {
                    taken[x].fetch_add(1, SeqCst);
                }
            }
        }
        done.store(true, SeqCst);
    });
    while let Some(x) = ring.pop() {
        taken[x].fetch_add(1, SeqCst);
    }
    assert!(taken.iter().all(|t| t.load(SeqCst) == 1));
}

#[test]
fn a_ring_whose_item_panics_in_drop_still_drops_the_others_once() {
    for panicking in 0..4 {
        let drops: [StdAtomicUsize; 4] = Default::default();
        let ring = Ring::<PanicsOnDrop<'_>, 4>::new();
        {
            let mut tx = ring.producer().unwrap();
            for _ in 0..3 {
                assert!(tx.push(PanicsOnDrop::new(0, &drops, usize::MAX)).is_ok());
                drop(ring.pop());
            }
            drops[0].store(0, SeqCst);
            for id in 0..4 {
                assert!(tx.push(PanicsOnDrop::new(id, &drops, panicking)).is_ok());
            }
        }
        expect_panic(move || drop(ring));
        assert_eq!(drop_counts(&drops), [1; 4], "panicking item {panicking}");
    }
}
