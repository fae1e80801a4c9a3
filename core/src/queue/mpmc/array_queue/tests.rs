use super::*;
use crate::queue::test_items::{PanicsOnDrop, drop_counts, expect_panic};
use crate::sync::{Deadline, Spins};
use core::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering::SeqCst};
use std::vec;
use std::vec::Vec;

struct Counted<'a>(&'a StdAtomicUsize);
impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Fills, drains and refills a queue of capacity `N` for several laps, checking
/// FIFO order, full/empty reports and `len` at every step.
fn exercise<const N: usize>() {
    let q = ArrayQueue::<usize, N>::new();
    let mut next_in = 0;
    let mut next_out = 0;
    let rounds = if cfg!(miri) { 2 * N + 6 } else { 4 * N + 6 };
    for round in 0..rounds {
        let burst = round % (N + 2);
        for _ in 0..burst {
            match q.push(next_in) {
                Ok(()) => next_in += 1,
                Err(v) => {
                    assert_eq!(v, next_in);
                    assert_eq!(q.len(), N);
                    assert!(q.is_full());
                }
            }
            assert_eq!(q.len(), next_in - next_out);
        }
        for _ in 0..(round % 3 + 1) {
            match q.pop() {
                Some(v) => {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
                None => assert!(q.is_empty()),
            }
            assert_eq!(q.len(), next_in - next_out);
        }
    }
    while let Some(v) = q.pop() {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_in, next_out);
    assert!(next_in > N, "must wrap at least once");
}

#[test]
fn every_capacity_from_1_to_17_and_some_odd_ones() {
    exercise::<1>();
    exercise::<2>();
    exercise::<3>();
    exercise::<4>();
    exercise::<5>();
    exercise::<6>();
    exercise::<7>();
    exercise::<8>();
    exercise::<9>();
    exercise::<10>();
    exercise::<11>();
    exercise::<12>();
    exercise::<13>();
    exercise::<14>();
    exercise::<15>();
    exercise::<16>();
    exercise::<17>();
    if cfg!(miri) {
        return; // the larger sizes add no new code paths, only interpreter time
    }
    exercise::<31>();
    exercise::<33>();
    exercise::<100>();
    exercise::<127>();
}

#[test]
fn capacity_one_alternates() {
    let q = ArrayQueue::<u32, 1>::new();
    for i in 0..20 {
        assert_eq!(q.push(i), Ok(()));
        assert_eq!(q.push(99), Err(99));
        assert!(q.is_full());
        assert_eq!(q.pop(), Some(i));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }
}

#[test]
fn positions_wrap_around_usize() {
    // Start both positions a few laps before the end of the usize range, as a
    // long-running queue would reach eventually, and check nothing breaks.
    let q = ArrayQueue::<u32, 3>::new();
    let one_lap = q.one_lap();
    let start = 0usize.wrapping_sub(2 * one_lap);
    q.head.store(start, SeqCst);
    q.tail.store(start, SeqCst);
    for i in 0..q.capacity() {
        // SAFETY: the test stages a state the algorithm can reach.
        unsafe { q.slots.stamp(i) }.store(start + i, SeqCst);
    }
    let mut expected = 0;
    for i in 0..40u32 {
        assert_eq!(q.push(i), Ok(()));
        if i % 2 == 1 {
            assert_eq!(q.pop(), Some(expected));
            expected += 1;
        }
        if q.is_full() {
            assert_eq!(q.pop(), Some(expected));
            expected += 1;
        }
    }
    while let Some(v) = q.pop() {
        assert_eq!(v, expected);
        expected += 1;
    }
    assert_eq!(expected, 40);
    assert!(
        q.tail.load(SeqCst) < start,
        "tail must have wrapped past zero"
    );
}

#[test]
fn force_push_evicts_oldest_in_order() {
    let q = ArrayQueue::<u32, 3>::new();
    for i in 0..3 {
        assert_eq!(q.force_push(i), None);
    }
    for i in 3..20 {
        assert_eq!(q.force_push(i), Some(i - 3));
        assert_eq!(q.len(), 3);
    }
    assert_eq!(q.pop(), Some(17));
    assert_eq!(q.force_push(20), None);
    assert_eq!(q.pop(), Some(18));
    assert_eq!(q.pop(), Some(19));
    assert_eq!(q.pop(), Some(20));
    assert_eq!(q.pop(), None);
}

#[test]
fn force_push_capacity_one() {
    let q = ArrayQueue::<u32, 1>::new();
    assert_eq!(q.force_push(1), None);
    assert_eq!(q.force_push(2), Some(1));
    assert_eq!(q.force_push(3), Some(2));
    assert_eq!(q.pop(), Some(3));
    assert_eq!(q.pop(), None);
}

#[test]
fn items_left_in_queue_dropped_exactly_once() {
    let drops = StdAtomicUsize::new(0);
    {
        let q = ArrayQueue::<Counted<'_>, 5>::new();
        for _ in 0..4 {
            assert!(q.push(Counted(&drops)).is_ok());
            drop(q.pop());
        }
        assert_eq!(drops.load(SeqCst), 4);
        for _ in 0..5 {
            assert!(q.push(Counted(&drops)).is_ok());
        }
        drop(q.push(Counted(&drops)));
        assert_eq!(drops.load(SeqCst), 5);
        drop(q.force_push(Counted(&drops))); // evicted item dropped here
        assert_eq!(drops.load(SeqCst), 6);
        drop(q.pop());
        assert_eq!(drops.load(SeqCst), 7);
    }
    assert_eq!(drops.load(SeqCst), 11);
}

#[test]
fn zero_sized_items() {
    let q = ArrayQueue::<(), 2>::new();
    assert_eq!(q.push(()), Ok(()));
    assert_eq!(q.push(()), Ok(()));
    assert_eq!(q.push(()), Err(()));
    assert_eq!(q.len(), 2);
    assert_eq!(q.force_push(()), Some(()));
    assert_eq!(q.pop(), Some(()));
    assert_eq!(q.pop(), Some(()));
    assert_eq!(q.pop(), None);
}

#[test]
fn debug_names_capacity_and_len() {
    let q = ArrayQueue::<u8, 4>::new();
    q.push(1).unwrap();
    assert_eq!(std::format!("{q:?}"), "ArrayQueue { capacity: 4, len: 1 }");
}

#[test]
fn a_push_in_flight_at_the_head_is_busy_not_empty() {
    // Play a producer that claimed position 0 and has not published it yet:
    // tail moved, the stamp did not.
    let q = ArrayQueue::<u32, 4>::new();
    q.tail.store(1, SeqCst);
    assert_eq!(
        q.try_pop(),
        Err(TryPopError::Busy),
        "not empty: an item is on its way"
    );
    let mut checks = 0;
    let gave_up = q.pop_with(Deadline(|| {
        checks += 1;
        checks > 3
    }));
    assert_eq!(gave_up, Err(TryPopError::Busy));
    assert_eq!(checks, 4, "asked its patience once per wait");
    // A later producer's item queues behind the one in flight.
    assert_eq!(q.push(7), Ok(()));
    assert_eq!(q.try_pop(), Err(TryPopError::Busy));
    // The producer finishes: writes and publishes position 0.
    q.slots.with_value_mut(0, |p| {
        // SAFETY: the test plays the producer that owns the claim of position 0.
        unsafe { p.write(MaybeUninit::new(6)) }
    });
    // SAFETY: the test stages a state the algorithm can reach.
    unsafe { q.slots.stamp(0) }.store(1, SeqCst);
    assert_eq!(q.try_pop(), Ok(6));
    assert_eq!(q.pop(), Some(7));
    assert_eq!(q.try_pop(), Err(TryPopError::Empty));
    assert_eq!(q.pop_with(Spins(0)), Err(TryPopError::Empty));
}

#[test]
fn pop_waits_for_a_push_in_flight_instead_of_reporting_empty() {
    let q = ArrayQueue::<u32, 2>::new();
    q.tail.store(1, SeqCst); // position 0 claimed, not yet published
    std::thread::scope(|s| {
        let consumer = s.spawn(|| q.pop());
        // Whether the consumer is already waiting or not, it must get the item.
        q.slots.with_value_mut(0, |p| {
            // SAFETY: the test plays the producer that owns the claim.
            unsafe { p.write(MaybeUninit::new(5)) }
        });
        // SAFETY: the test stages a state the algorithm can reach.
        unsafe { q.slots.stamp(0) }.store(1, SeqCst);
        assert_eq!(consumer.join().unwrap(), Some(5));
    });
}

#[test]
fn a_pop_in_flight_at_the_next_slot_is_busy_not_full() {
    // A full queue of 2 whose oldest item a consumer has claimed (head moved)
    // but not read yet (stamp unchanged): there is room, once it finishes.
    let q = ArrayQueue::<u32, 2>::new();
    q.push(1).unwrap();
    q.push(2).unwrap();
    assert_eq!(q.try_push(3), Err(TryPushError::Full(3)));
    q.head.store(1, SeqCst);
    assert_eq!(q.try_push(3), Err(TryPushError::Busy(3)));
    assert_eq!(q.push_with(3, Spins(5)), Err(TryPushError::Busy(3)));
    std::thread::scope(|s| {
        let producer = s.spawn(|| q.push(3));
        // The consumer finishes: reads the item, releases the slot.
        // SAFETY: the test plays the consumer that owns the claim of position 0.
        let value = q.slots.with_value(0, |p| unsafe { p.read().assume_init() });
        assert_eq!(value, 1);
        // SAFETY: the test stages a state the algorithm can reach.
        unsafe { q.slots.stamp(0) }.store(q.one_lap(), SeqCst);
        assert_eq!(
            producer.join().unwrap(),
            Ok(()),
            "push must wait, not say full"
        );
    });
    assert_eq!(q.pop(), Some(2));
    assert_eq!(q.pop(), Some(3));
    assert_eq!(q.try_pop(), Err(TryPopError::Empty));
}

use crate::queue::mpmc::stress::{PER_PRODUCER, stress};

#[test]
fn stress_two_producers_two_consumers() {
    stress(&ArrayQueue::<(usize, usize), 64>::new(), 2, 2);
}

#[test]
fn stress_three_producers_one_consumer_odd_capacity() {
    stress(&ArrayQueue::<(usize, usize), 7>::new(), 3, 1);
}

#[test]
fn stress_one_producer_three_consumers_capacity_one() {
    stress(&ArrayQueue::<(usize, usize), 1>::new(), 1, 3);
}

#[test]
fn stress_force_push_never_duplicates_or_invents() {
    // Two producers force-push, two consumers pop. Items may be evicted (returned
    // to the force-pusher) but each must end up in exactly one place.
    let q = ArrayQueue::<usize, 4>::new();
    let per = PER_PRODUCER / 4;
    let done = StdAtomicUsize::new(0);
    let (evicted, popped): (Vec<Vec<usize>>, Vec<Vec<usize>>) = std::thread::scope(|s| {
        let prods: Vec<_> = (0..2)
            .map(|p| {
                let (q, done) = (&q, &done);
                s.spawn(move || {
                    let mut ev = Vec::new();
                    for i in 0..per {
                        if let Some(old) = q.force_push(p * per + i) {
                            ev.push(old);
                        }
                    }
                    done.fetch_add(1, SeqCst);
                    ev
                })
            })
            .collect();
        let cons: Vec<_> = (0..2)
            .map(|_| {
                let (q, done) = (&q, &done);
                s.spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        let finished = done.load(SeqCst) == 2;
                        match q.pop() {
                            Some(v) => got.push(v),
                            None if finished => break,
                            None => std::thread::yield_now(),
                        }
                    }
                    got
                })
            })
            .collect();
        (
            prods.into_iter().map(|h| h.join().unwrap()).collect(),
            cons.into_iter().map(|h| h.join().unwrap()).collect(),
        )
    });
    let mut count = vec![0u8; 2 * per];
    for v in evicted.into_iter().chain(popped).flatten() {
        count[v] += 1;
    }
    assert!(count.iter().all(|&c| c == 1), "every item exactly once");
}

use crate::queue::mpmc::stress::{
    LINEARIZABLE_ROUNDS, pop_then_push_always_finds_room, push_then_pop_always_finds_an_item,
};

#[test]
fn linearizable_pop_after_own_push_finds_an_item() {
    push_then_pop_always_finds_an_item(&ArrayQueue::<usize, 4>::new(), 2);
    push_then_pop_always_finds_an_item(&ArrayQueue::<usize, 4>::new(), 4);
}

#[test]
fn linearizable_push_after_own_pop_finds_room() {
    pop_then_push_always_finds_room(&ArrayQueue::<usize, 4>::new(), 4, 2);
    pop_then_push_always_finds_room(&ArrayQueue::<usize, 3>::new(), 3, 3);
}

#[test]
fn linearizable_with_force_push_as_in_crossbeam() {
    // crossbeam-queue's `linearizable` test as it is: half the threads push
    // then pop, half force-push then pop unless they evicted. Each thread adds
    // one item before it pops, and the capacity equals the thread count, so
    // the pop must find an item (and a force-push never needs to evict).
    const THREADS: usize = 4;
    let q = ArrayQueue::<usize, THREADS>::new();
    std::thread::scope(|s| {
        for _ in 0..THREADS / 2 {
            s.spawn(|| {
                for _ in 0..LINEARIZABLE_ROUNDS {
                    while q.push(0).is_err() {}
                    q.pop().expect("a false \"empty\" after push");
                }
            });
            s.spawn(|| {
                for _ in 0..LINEARIZABLE_ROUNDS {
                    if q.force_push(0).is_none() {
                        q.pop().expect("a false \"empty\" after force_push");
                    }
                }
            });
        }
    });
    assert!(q.is_empty());
}

// ---- `SliceArrayQueue`: the same algorithm over the caller's cells ----

fn cells<T>(n: usize) -> Vec<ArraySlot<T>> {
    (0..n).map(|_| ArraySlot::new()).collect()
}

#[test]
fn slice_queue_full_empty_and_wrap_for_capacity_one_and_odd_capacities() {
    for capacity in [1, 2, 3, 5, 7, 13] {
        let mut storage = cells::<usize>(capacity);
        let q = SliceArrayQueue::new(&mut storage).unwrap();
        assert_eq!(q.capacity(), capacity);
        let (mut next_in, mut next_out) = (0, 0);
        for round in 0..(6 * capacity + 5) {
            while q.push(next_in).is_ok() {
                next_in += 1;
            }
            assert!(q.is_full());
            assert_eq!(q.len(), capacity);
            for _ in 0..=round % capacity {
                assert_eq!(q.pop(), Some(next_out));
                next_out += 1;
            }
        }
        while let Some(v) = q.pop() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!((next_in, q.len()), (next_out, 0));
        assert!(next_in > 4 * capacity, "wrapped several laps");
        assert_eq!(q.force_push(1), None);
    }
}

#[test]
fn slice_queue_rejects_no_cells_and_restamps_dirty_ones() {
    assert_eq!(
        SliceArrayQueue::<u8>::new(&mut []).err(),
        Some(crate::queue::CapacityError::Zero)
    );
    let mut storage = cells::<u32>(3);
    {
        let q = SliceArrayQueue::new(&mut storage).unwrap();
        q.push(1).unwrap();
        q.push(2).unwrap();
        // Dropped with items in it: the cells' stamps are left mid-lap.
    }
    let q = SliceArrayQueue::new(&mut storage).unwrap();
    assert_eq!(q.pop(), None, "a new queue starts empty");
    for i in 0..3 {
        q.push(i).unwrap();
    }
    assert_eq!(q.push(9), Err(9));
}

#[test]
fn slice_queue_drops_leftovers_exactly_once() {
    let drops = StdAtomicUsize::new(0);
    let mut storage = cells(4);
    {
        let q = SliceArrayQueue::new(&mut storage).unwrap();
        for _ in 0..3 {
            assert!(q.push(Counted(&drops)).is_ok());
            drop(q.pop());
        }
        for _ in 0..4 {
            assert!(q.push(Counted(&drops)).is_ok());
        }
        assert_eq!(drops.load(SeqCst), 3);
    }
    assert_eq!(drops.load(SeqCst), 7);
}

#[test]
fn slice_queue_stress_two_producers_two_consumers() {
    let mut storage = cells(5);
    let q = SliceArrayQueue::new(&mut storage).unwrap();
    crate::queue::mpmc::stress::stress(&q, 2, 2);
}

#[test]
fn a_queue_whose_item_panics_in_drop_still_drops_the_others_once() {
    for panicking in 0..4 {
        let drops: [StdAtomicUsize; 4] = Default::default();
        let q = ArrayQueue::<PanicsOnDrop<'_>, 5>::new();
        // Positions at 3: the items sit in cells 3, 4, 0, 1.
        for _ in 0..3 {
            assert!(q.push(PanicsOnDrop::new(0, &drops, usize::MAX)).is_ok());
            drop(q.pop());
        }
        drops[0].store(0, SeqCst);
        for id in 0..4 {
            assert!(q.push(PanicsOnDrop::new(id, &drops, panicking)).is_ok());
        }
        expect_panic(move || drop(q));
        assert_eq!(drop_counts(&drops), [1; 4], "panicking item {panicking}");
    }
}

#[test]
fn a_panicking_pop_in_place_releases_its_slot() {
    // `read` is the caller's code and may panic. Its slot must be released all
    // the same, or the push that comes round to that slot finds it still in
    // flight: `try_push` says `Busy` and `push` waits for good.
    let q = ArrayQueue::<u32, 3>::new();
    for round in 0..4u32 {
        q.push(round).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            q.pop_in_place(|_| panic!("read panics"), Spins(0))
        }));
        assert!(caught.is_err());
        assert!(q.is_empty(), "the item was taken (and forgotten)");
        // Fill every slot, the panicked one included, then drain in order.
        for i in 0..3 {
            assert_eq!(q.try_push(i), Ok(()), "round {round}, push {i}");
        }
        for i in 0..3 {
            assert_eq!(q.try_pop(), Ok(i), "round {round}, pop {i}");
        }
    }
}

#[test]
fn a_push_from_inside_pop_in_place_finds_the_slot_in_flight() {
    // `read` runs with its slot claimed. A push that comes round to that slot
    // finds a pop in flight there: `try_push` says `Busy` (where `push` would
    // wait for the very pop that called it).
    let q = ArrayQueue::<u32, 1>::new();
    q.push(1).unwrap();
    let got = q.pop_in_place(
        |slot| {
            assert_eq!(q.try_push(2), Err(TryPushError::Busy(2)));
            // SAFETY: `read` runs on an initialized, published slot.
            unsafe { (*slot).assume_init_read() }
        },
        Spins(0),
    );
    assert_eq!(got, Ok(1));
    assert_eq!(q.try_push(2), Ok(()), "released once read returned");
}
