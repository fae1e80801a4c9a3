use super::*;
use crate::primitive::AtomicUsize;
use crate::queue::CapacityError;
use crate::queue::mpmc::stress::{PER_PRODUCER, stress};
use crate::queue::test_items::{PanicsOnDrop, drop_counts, expect_panic};
use core::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering::SeqCst};
use std::vec::Vec;

struct Counted<'a>(&'a StdAtomicUsize);
impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Fills, drains and refills for many laps against a `VecDeque` model.
fn exercise<const N: usize>() {
    exercise_queue(&ScqQueue::<usize, N>::new());
}

fn exercise_queue<S: Slots<Item = MaybeUninit<usize>>, E: Entries>(q: &ScqBase<S, E>) {
    let capacity = q.capacity();
    let mut model = std::collections::VecDeque::new();
    let mut x = 7u32;
    let steps = if cfg!(miri) {
        40 * capacity + 50
    } else {
        200 * capacity + 500
    };
    for step in 0..steps {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        if (x >> 16) % 2 == 0 {
            match q.push(step) {
                Ok(()) => model.push_back(step),
                Err(v) => {
                    assert_eq!(v, step);
                    assert_eq!(model.len(), capacity, "push failed below capacity");
                }
            }
        } else {
            assert_eq!(q.pop(), model.pop_front());
        }
    }
    while let Some(v) = model.pop_front() {
        assert_eq!(q.pop(), Some(v));
    }
    assert_eq!(q.pop(), None);
}

#[test]
fn matches_a_fifo_model_for_every_small_power_of_two() {
    exercise::<1>();
    exercise::<2>();
    exercise::<4>();
    exercise::<8>();
    exercise::<16>();
    exercise::<32>();
    if !cfg!(miri) {
        exercise::<64>();
        exercise::<256>();
    }
}

#[test]
fn full_at_exactly_capacity() {
    let q = ScqQueue::<u32, 4>::new();
    for round in 0..10 {
        for i in 0..4 {
            assert_eq!(q.push(round * 10 + i), Ok(()));
        }
        assert_eq!(q.push(99), Err(99));
        for i in 0..4 {
            assert_eq!(q.pop(), Some(round * 10 + i));
        }
        assert_eq!(q.pop(), None);
    }
}

#[test]
fn capacity_one() {
    let q = ScqQueue::<u32, 1>::new();
    for i in 0..20 {
        assert_eq!(q.push(i), Ok(()));
        assert_eq!(q.push(99), Err(99));
        assert_eq!(q.pop(), Some(i));
        assert_eq!(q.pop(), None);
    }
}

#[test]
fn items_left_in_queue_dropped_exactly_once() {
    let drops = StdAtomicUsize::new(0);
    {
        let q = ScqQueue::<Counted<'_>, 4>::new();
        for _ in 0..6 {
            assert!(q.push(Counted(&drops)).is_ok());
            drop(q.pop());
        }
        assert_eq!(drops.load(SeqCst), 6);
        for _ in 0..4 {
            assert!(q.push(Counted(&drops)).is_ok());
        }
        drop(q.push(Counted(&drops))); // rejected, dropped by the caller
        assert_eq!(drops.load(SeqCst), 7);
    }
    assert_eq!(drops.load(SeqCst), 11);
}

#[test]
fn zero_sized_items() {
    let q = ScqQueue::<(), 2>::new();
    assert_eq!(q.push(()), Ok(()));
    assert_eq!(q.push(()), Ok(()));
    assert_eq!(q.push(()), Err(()));
    assert_eq!(q.pop(), Some(()));
    assert_eq!(q.pop(), Some(()));
    assert_eq!(q.pop(), None);
}

#[test]
fn stalled_pusher_holding_a_slot_blocks_nobody() {
    // A pusher that took a free index and stopped before publishing it: play it
    // by hand with the rings. Everyone else keeps a working queue of N - 1.
    let q = ScqQueue::<u32, 4>::new();
    let stalled = q.free.dequeue().expect("a free slot");
    for round in 0..50 {
        for i in 0..3 {
            assert_eq!(q.push(round * 3 + i), Ok(()));
        }
        assert_eq!(q.push(99), Err(99), "capacity is N - 1 while it is stalled");
        for i in 0..3 {
            assert_eq!(q.pop(), Some(round * 3 + i));
        }
        assert_eq!(q.pop(), None);
    }
    // It resumes: writes its value and publishes it. Nothing was lost.
    q.slots.with_slot_mut(stalled, |p| {
        // SAFETY: the test owns index `stalled`, taken from `free` above.
        unsafe { p.write(MaybeUninit::new(7)) }
    });
    q.ready.enqueue(stalled);
    assert_eq!(q.pop(), Some(7));
    assert_eq!(q.pop(), None);
}

#[test]
fn stalled_popper_holding_an_item_blocks_nobody() {
    // A popper that took an index from `ready` and stopped before reading it.
    let q = ScqQueue::<u32, 4>::new();
    q.push(1).unwrap();
    q.push(2).unwrap();
    let stalled = q.ready.dequeue().expect("an item");
    assert_eq!(q.pop(), Some(2), "later items are not stuck behind it");
    for i in 10..100 {
        assert_eq!(q.push(i), Ok(()));
        assert_eq!(q.pop(), Some(i));
    }
    // It resumes and takes its item.
    let value = q.slots.with_slot(stalled, |p| {
        // SAFETY: the test owns index `stalled`, taken from `ready` above.
        unsafe { p.read().assume_init() }
    });
    q.free.enqueue(stalled);
    assert_eq!(value, 1);
}

#[test]
fn stress_two_producers_two_consumers() {
    stress(&ScqQueue::<(usize, usize), 64>::new(), 2, 2);
}

#[test]
fn stress_three_producers_one_consumer_small() {
    stress(&ScqQueue::<(usize, usize), 4>::new(), 3, 1);
}

#[test]
fn stress_one_producer_three_consumers_capacity_one() {
    stress(&ScqQueue::<(usize, usize), 1>::new(), 1, 3);
}

#[test]
fn static_queue() {
    static Q: ScqQueue<usize, 8> = ScqQueue::new();
    let total: usize = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut got = Vec::new();
            while got.len() < PER_PRODUCER / 10 {
                if let Some(v) = Q.pop() {
                    got.push(v);
                }
            }
            got
        });
        for i in 0..PER_PRODUCER / 10 {
            while Q.push(i).is_err() {
                std::thread::yield_now();
            }
        }
        let got = consumer.join().unwrap();
        assert!(got.windows(2).all(|w| w[0] + 1 == w[1]), "FIFO");
        got.len()
    });
    assert_eq!(total, PER_PRODUCER / 10);
}

// ---- `SliceScqQueue`: the same algorithm over caller buffers ----

fn words(n: usize) -> Vec<AtomicUsize> {
    (0..n).map(|_| AtomicUsize::new(0)).collect()
}

#[test]
fn slice_queue_matches_a_fifo_model_for_small_powers_of_two() {
    for capacity in [1, 2, 4, 8, 16, 64] {
        let mut slots = std::vec![MaybeUninit::uninit(); capacity];
        let mut entries = words(4 * capacity);
        let q = SliceScqQueue::new(&mut slots, &mut entries).unwrap();
        assert_eq!(q.capacity(), capacity);
        exercise_queue(&q);
    }
}

#[test]
fn slice_queue_rejects_bad_sizes() {
    let mut none: [MaybeUninit<u8>; 0] = [];
    assert_eq!(
        SliceScqQueue::new(&mut none, &mut []).err(),
        Some(CapacityError::Zero)
    );
    let mut six = [MaybeUninit::<u8>::uninit(); 6];
    assert_eq!(
        SliceScqQueue::new(&mut six, &mut words(24)).err(),
        Some(CapacityError::NotPowerOfTwo { capacity: 6 })
    );
    let mut four = [MaybeUninit::<u8>::uninit(); 4];
    assert_eq!(
        SliceScqQueue::new(&mut four, &mut words(15)).err(),
        Some(CapacityError::EntryCount {
            expected: 16,
            got: 15
        })
    );
}

#[test]
fn slice_queue_reuses_dirty_entries_and_drops_leftovers_once() {
    let drops = StdAtomicUsize::new(0);
    let mut slots = [const { MaybeUninit::uninit() }; 4];
    // Entries left over from an earlier queue: `new` must overwrite them.
    let mut entries = words(16);
    for e in &entries {
        e.store(12345, SeqCst);
    }
    {
        let q = SliceScqQueue::new(&mut slots, &mut entries).unwrap();
        for _ in 0..6 {
            assert!(q.push(Counted(&drops)).is_ok());
            drop(q.pop());
        }
        for _ in 0..4 {
            assert!(q.push(Counted(&drops)).is_ok());
        }
        assert!(q.push(Counted(&drops)).is_err());
        assert_eq!(drops.load(SeqCst), 7);
    }
    assert_eq!(drops.load(SeqCst), 11);
    let q = SliceScqQueue::new(&mut slots, &mut entries).unwrap();
    assert!(q.pop().is_none(), "a new queue starts empty");
}

#[test]
fn slice_queue_stress_two_producers_two_consumers() {
    let mut slots = std::vec![MaybeUninit::uninit(); 8];
    let mut entries = words(32);
    let q = SliceScqQueue::new(&mut slots, &mut entries).unwrap();
    stress(&q, 2, 2);
}

use crate::queue::mpmc::stress::{
    pop_then_push_always_finds_room, push_then_pop_always_finds_an_item,
};

#[test]
fn linearizable_pop_after_own_push_finds_an_item() {
    push_then_pop_always_finds_an_item(&ScqQueue::<usize, 4>::new(), 2);
    push_then_pop_always_finds_an_item(&ScqQueue::<usize, 4>::new(), 4);
}

#[test]
fn linearizable_push_after_own_pop_finds_room() {
    pop_then_push_always_finds_room(&ScqQueue::<usize, 4>::new(), 4, 2);
    pop_then_push_always_finds_room(&ScqQueue::<usize, 4>::new(), 4, 4);
}

#[test]
fn a_queue_whose_item_panics_in_drop_still_drops_the_others_once() {
    for panicking in 0..4 {
        let drops: [StdAtomicUsize; 4] = Default::default();
        let q = ScqQueue::<PanicsOnDrop<'_>, 4>::new();
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
fn a_panicking_pop_in_place_gives_its_slot_back() {
    // `read` is the caller's code and may panic. Its slot must go back to the
    // free ring all the same, or every such panic costs the queue a slot for
    // good, until it takes nothing.
    let q = ScqQueue::<u32, 2>::new();
    for round in 0..4u32 {
        q.push(round).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            q.pop_in_place(|_| panic!("read panics"))
        }));
        assert!(caught.is_err());
        assert_eq!(q.pop(), None, "the item was taken (and forgotten)");
        for i in 0..2 {
            assert_eq!(q.push(i), Ok(()), "round {round}, push {i}");
        }
        for i in 0..2 {
            assert_eq!(q.pop(), Some(i), "round {round}, pop {i}");
        }
    }
}
