use super::*;
use crate::queue::CapacityError;
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
fn push_pop_fifo_and_full_empty() {
    let mut ring = Ring::<u32, 3>::new();
    let (mut tx, mut rx) = ring.split();
    assert!(rx.is_empty());
    assert_eq!(rx.pop(), None);
    assert_eq!(tx.push(1), Ok(()));
    assert_eq!(tx.push(2), Ok(()));
    assert_eq!(tx.push(3), Ok(()));
    assert!(tx.is_full());
    assert!(rx.is_full());
    assert_eq!(tx.push(4), Err(4));
    assert_eq!(tx.len(), 3);
    assert_eq!(rx.len(), 3);
    assert_eq!(rx.pop(), Some(1));
    assert_eq!(tx.slots(), 1);
    assert_eq!(tx.push(4), Ok(()));
    assert_eq!(rx.pop(), Some(2));
    assert_eq!(rx.pop(), Some(3));
    assert_eq!(rx.pop(), Some(4));
    assert_eq!(rx.pop(), None);
    assert!(tx.is_empty());
}

#[test]
fn capacity_one() {
    let mut ring = Ring::<u8, 1>::new();
    let (mut tx, mut rx) = ring.split();
    for i in 0..10 {
        assert_eq!(tx.push(i), Ok(()));
        assert_eq!(tx.push(100), Err(100));
        assert_eq!(rx.peek(), Some(&i));
        assert_eq!(rx.pop(), Some(i));
        assert_eq!(rx.pop(), None);
    }
}

#[test]
fn wraps_around_many_laps_for_odd_capacities() {
    fn run<const N: usize>() {
        let mut ring = Ring::<usize, N>::new();
        let (mut tx, mut rx) = ring.split();
        let mut next_in = 0;
        let mut next_out = 0;
        // Vary the fill level so head and tail cross the 2N boundary at every offset.
        for round in 0..(5 * N + 7) {
            let burst = round % (N + 1);
            for _ in 0..burst {
                if tx.push(next_in).is_ok() {
                    next_in += 1;
                }
            }
            assert!(tx.len() <= N);
            for _ in 0..(round % 3 + 1) {
                if let Some(v) = rx.pop() {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
            }
        }
        while let Some(v) = rx.pop() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_in, next_out);
        assert!(next_in > 2 * N, "test must wrap at least once");
    }
    run::<1>();
    run::<2>();
    run::<3>();
    run::<5>();
    run::<7>();
    run::<8>();
    run::<13>();
}

#[test]
fn ring_len_snapshot() {
    let mut ring = Ring::<u8, 4>::new();
    assert!(ring.is_empty());
    {
        let (mut tx, _) = ring.split();
        tx.push_slice(&[1, 2, 3, 4]);
    }
    assert_eq!(ring.len(), 4);
    assert!(ring.is_full());
    assert_eq!(ring.capacity(), 4);
}

#[test]
fn split_again_keeps_items() {
    let mut ring = Ring::<u8, 4>::new();
    ring.split().0.push(9).unwrap();
    ring.split().0.push(10).unwrap();
    let (_, mut rx) = ring.split();
    assert_eq!(rx.pop(), Some(9));
    assert_eq!(rx.pop(), Some(10));
}

#[test]
fn items_left_in_ring_dropped_exactly_once() {
    let drops = StdAtomicUsize::new(0);
    {
        let mut ring = Ring::<Counted<'_>, 4>::new();
        let (mut tx, mut rx) = ring.split();
        // Move the indices off zero so the leftover items straddle the wrap.
        for _ in 0..3 {
            assert!(tx.push(Counted(&drops)).is_ok());
            drop(rx.pop());
        }
        assert_eq!(drops.load(SeqCst), 3);
        for _ in 0..4 {
            assert!(tx.push(Counted(&drops)).is_ok());
        }
        // Rejected value comes back to the caller and is dropped there.
        let back = tx.push(Counted(&drops));
        assert!(back.is_err());
        drop(back);
        assert_eq!(drops.load(SeqCst), 4);
        drop(rx.pop());
        assert_eq!(drops.load(SeqCst), 5);
    }
    // Three left in the ring, dropped with it.
    assert_eq!(drops.load(SeqCst), 8);
}

#[test]
fn zero_sized_items() {
    let mut ring = Ring::<(), 3>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push(()), Ok(()));
    assert_eq!(tx.push(()), Ok(()));
    assert_eq!(tx.push(()), Ok(()));
    assert_eq!(tx.push(()), Err(()));
    assert_eq!(rx.len(), 3);
    assert_eq!(rx.pop(), Some(()));
    assert_eq!(tx.write_chunk_uninit(1).unwrap().fill_from_iter([()]), 1);
    assert_eq!(rx.pop_slice(&mut [(); 5]), 3);
    assert_eq!(rx.pop(), None);
}

#[test]
fn zero_sized_items_with_drop_are_counted() {
    static DROPS: StdAtomicUsize = StdAtomicUsize::new(0);
    struct Zst;
    impl Drop for Zst {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
        }
    }
    {
        let mut ring = Ring::<Zst, 2>::new();
        let (mut tx, mut rx) = ring.split();
        assert!(tx.push(Zst).is_ok());
        assert!(tx.push(Zst).is_ok());
        drop(rx.pop());
        assert_eq!(DROPS.load(SeqCst), 1);
    }
    assert_eq!(DROPS.load(SeqCst), 2);
}

#[test]
fn chunks_wrap_into_two_slices() {
    let mut ring = Ring::<u32, 5>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push_slice(&[0, 0, 0]), 3);
    assert_eq!(rx.pop_slice(&mut [0; 3]), 3);
    // Positions at 3: a 4-item chunk covers slots 3, 4 then 0, 1.
    let mut chunk = tx.write_chunk_uninit(4).unwrap();
    assert_eq!(chunk.len(), 4);
    {
        let (a, b) = chunk.as_mut_slices();
        assert_eq!((a.len(), b.len()), (2, 2));
        for (i, slot) in a.iter_mut().chain(b.iter_mut()).enumerate() {
            slot.write(10 + i as u32);
        }
    }
    // SAFETY: all four slots were written above.
    unsafe { chunk.commit(4) };
    let read = rx.read_chunk(4).unwrap();
    let (a, b) = read.as_slices();
    assert_eq!(a, &[10, 11]);
    assert_eq!(b, &[12, 13]);
    read.commit(3);
    assert_eq!(rx.pop(), Some(13));
    assert_eq!(rx.pop(), None);
}

#[test]
fn chunk_errors_report_what_was_available() {
    let mut ring = Ring::<u32, 4>::new();
    let (mut tx, mut rx) = ring.split();
    tx.push(1).unwrap();
    assert_eq!(
        tx.write_chunk_uninit(4).err(),
        Some(ChunkError::TooFewSlots {
            requested: 4,
            available: 3
        })
    );
    assert_eq!(
        rx.read_chunk(2).err(),
        Some(ChunkError::TooFewItems {
            requested: 2,
            available: 1
        })
    );
    let msg = std::format!("{}", rx.read_chunk(2).err().unwrap());
    assert!(msg.contains("asked for 2 items"), "{msg}");
}

#[test]
fn uncommitted_chunks_change_nothing() {
    let drops = StdAtomicUsize::new(0);
    let mut ring = Ring::<Counted<'_>, 4>::new();
    let (mut tx, mut rx) = ring.split();
    let _ = tx.write_chunk_uninit(4).unwrap(); // reserved, then abandoned
    assert_eq!(rx.len(), 0);
    assert_eq!(
        tx.write_chunk_uninit(2)
            .unwrap()
            .fill_from_iter([Counted(&drops), Counted(&drops)]),
        2
    );
    let _ = rx.read_chunk(2).unwrap(); // borrowed, then abandoned
    assert_eq!(rx.len(), 2);
    assert_eq!(drops.load(SeqCst), 0);
    rx.read_chunk(2).unwrap().commit(1);
    assert_eq!(drops.load(SeqCst), 1);
    assert_eq!(rx.len(), 1);
    drop(ring);
    assert_eq!(drops.load(SeqCst), 2);
}

#[test]
fn fill_from_iter_stops_at_shorter_side() {
    let mut ring = Ring::<u32, 3>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.write_chunk_uninit(3).unwrap().fill_from_iter(0..100), 3);
    assert_eq!(tx.write_chunk_uninit(0).unwrap().fill_from_iter(0..100), 0);
    let mut out = [0; 3];
    assert_eq!(rx.pop_slice(&mut out), 3);
    assert_eq!(out, [0, 1, 2]);
    assert_eq!(tx.write_chunk_uninit(3).unwrap().fill_from_iter(7..8), 1);
    assert_eq!(rx.pop(), Some(7));
    assert_eq!(rx.pop_slice(&mut out), 0);
}

#[test]
fn static_ring_split_unchecked() {
    static RING: Ring<u64, 2> = Ring::new();
    // SAFETY: this test is the only user of RING.
    let (mut tx, mut rx) = unsafe { RING.split_unchecked() };
    tx.push(5).unwrap();
    assert_eq!(RING.len(), 1);
    assert_eq!(rx.pop(), Some(5));
}

#[test]
fn debug_output_names_capacity_and_len() {
    let mut ring = Ring::<u8, 3>::new();
    ring.split().0.push(1).unwrap();
    let s = std::format!("{ring:?}");
    assert_eq!(s, "Ring { capacity: 3, len: 1 }");
}

/// Items for the stress tests, smaller under Miri.
const STRESS_ITEMS: u64 = if cfg!(miri) { 500 } else { 2_000_000 };

#[test]
fn stress_two_threads_single_items_in_order() {
    let mut ring = Ring::<u64, 64>::new();
    let (mut tx, mut rx) = ring.split();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..STRESS_ITEMS {
                let mut item = i;
                while let Err(back) = tx.push(item) {
                    item = back;
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0u64;
        let mut sum = 0u64;
        while expected < STRESS_ITEMS {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(v, expected, "out of order or duplicated");
                    sum += v;
                    expected += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        assert_eq!(sum, STRESS_ITEMS * (STRESS_ITEMS - 1) / 2);
        assert_eq!(rx.pop(), None);
    });
}

#[test]
fn stress_two_threads_batches_in_order() {
    let mut ring = Ring::<u64, 100>::new();
    let (mut tx, mut rx) = ring.split();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut next = 0u64;
            while next < STRESS_ITEMS {
                // Batches of varying size, so chunks land across the wrap.
                let want = ((next % 37) + 1).min(STRESS_ITEMS - next) as usize;
                let batch: Vec<u64> = (next..next + want as u64).collect();
                let pushed = tx.push_slice(&batch);
                next += pushed as u64;
                if pushed == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0u64;
        let mut buf = [0u64; 41];
        while expected < STRESS_ITEMS {
            let n = rx.pop_slice(&mut buf);
            for &v in &buf[..n] {
                assert_eq!(v, expected);
                expected += 1;
            }
            if n == 0 {
                std::thread::yield_now();
            }
        }
        assert_eq!(rx.pop(), None);
    });
}

// ---- `SliceRing`: the same algorithm over a caller's buffer ----

/// Drives a ring of any storage through many laps at every fill level, checking
/// FIFO order and that `len` never exceeds the capacity.
fn wrap_around_in_order<S: Slots<Item = MaybeUninit<usize>>>(ring: &mut RingBase<S>) {
    let capacity = ring.capacity();
    let (mut tx, mut rx) = ring.split();
    let mut next_in = 0;
    let mut next_out = 0;
    for round in 0..(5 * capacity + 7) {
        for _ in 0..round % (capacity + 1) {
            if tx.push(next_in).is_ok() {
                next_in += 1;
            }
        }
        assert!(tx.len() <= capacity);
        for _ in 0..(round % 3 + 1) {
            if let Some(v) = rx.pop() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
    }
    while let Some(v) = rx.pop() {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_in, next_out);
    assert!(next_in > 2 * capacity, "test must wrap at least once");
}

#[test]
fn slice_ring_wraps_for_capacity_one_and_odd_capacities() {
    for capacity in [1, 2, 3, 5, 7, 8, 13] {
        let mut buffer = std::vec![MaybeUninit::<usize>::uninit(); capacity];
        let mut ring = SliceRing::new(&mut buffer).unwrap();
        assert_eq!(ring.capacity(), capacity);
        wrap_around_in_order(&mut ring);
    }
}

#[test]
fn slice_ring_capacity_one_full_and_empty() {
    let mut buffer = [MaybeUninit::uninit(); 1];
    let mut ring = SliceRing::new(&mut buffer).unwrap();
    let (mut tx, mut rx) = ring.split();
    for i in 0..5u8 {
        assert_eq!(tx.push(i), Ok(()));
        assert!(tx.is_full());
        assert_eq!(tx.push(99), Err(99));
        assert_eq!(rx.peek(), Some(&i));
        assert_eq!(rx.pop(), Some(i));
        assert_eq!(rx.pop(), None);
    }
}

#[test]
fn slice_ring_rejects_empty_and_oversized_buffers() {
    let mut empty: [MaybeUninit<u64>; 0] = [];
    assert_eq!(SliceRing::new(&mut empty).err(), Some(CapacityError::Zero));
    // Zero-sized items are the only way to have this many slots.
    let huge: &mut [MaybeUninit<()>] = &mut [MaybeUninit::uninit(); usize::MAX / 4 + 1];
    assert_eq!(
        SliceRing::new(huge).err(),
        Some(CapacityError::TooLarge {
            capacity: usize::MAX / 4 + 1,
            max: usize::MAX / 4
        })
    );
    let fits: &mut [MaybeUninit<()>] = &mut [MaybeUninit::uninit(); usize::MAX / 4];
    assert!(SliceRing::new(fits).is_ok());
}

#[test]
fn slice_ring_chunks_wrap_into_two_slices() {
    let mut buffer = [MaybeUninit::uninit(); 5];
    let mut ring = SliceRing::new(&mut buffer).unwrap();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push_slice(&[0, 0, 0, 0]), 4);
    assert_eq!(rx.pop_slice(&mut [0; 4]), 4);
    // tail is at slot 4 of 5: four items wrap after one slot.
    assert_eq!(tx.push_slice(&[1, 2, 3, 4]), 4);
    let chunk = rx.read_chunk(4).unwrap();
    assert_eq!(chunk.as_slices(), (&[1][..], &[2, 3, 4][..]));
    chunk.commit(3);
    assert_eq!(rx.pop(), Some(4));
    assert_eq!(rx.pop(), None);
}

#[test]
fn slice_ring_drops_leftovers_exactly_once_and_leaves_the_buffer() {
    let drops = StdAtomicUsize::new(0);
    let mut buffer = [const { MaybeUninit::uninit() }; 3];
    {
        let mut ring = SliceRing::new(&mut buffer).unwrap();
        let (mut tx, mut rx) = ring.split();
        for _ in 0..2 {
            assert!(tx.push(Counted(&drops)).is_ok());
            drop(rx.pop());
        }
        for _ in 0..3 {
            assert!(tx.push(Counted(&drops)).is_ok());
        }
        assert_eq!(drops.load(SeqCst), 2);
    }
    // Three left in the ring (straddling the wrap), dropped with it.
    assert_eq!(drops.load(SeqCst), 5);
    // The buffer is the caller's again, and can carry a new ring.
    let mut ring = SliceRing::new(&mut buffer).unwrap();
    assert!(ring.split().0.push(Counted(&drops)).is_ok());
}

#[test]
fn slice_ring_two_threads_in_order() {
    let mut buffer = std::vec![MaybeUninit::uninit(); 7];
    let mut ring = SliceRing::new(&mut buffer).unwrap();
    let (mut tx, mut rx) = ring.split();
    let items = STRESS_ITEMS / 4;
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..items {
                let mut item = i;
                while let Err(back) = tx.push(item) {
                    item = back;
                    std::thread::yield_now();
                }
            }
        });
        let mut expected = 0u64;
        while expected < items {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(v, expected, "out of order or duplicated");
                    expected += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        assert_eq!(rx.pop(), None);
    });
}

#[test]
fn raw_push_and_pop_with_move_whole_slots() {
    let mut ring = Ring::<[u8; 4], 2>::new();
    let (mut tx, mut rx) = ring.split();
    // SAFETY: each closure initializes the slot it is given.
    unsafe {
        assert!(tx.push_in_place(|p| p.write(MaybeUninit::new(*b"abcd"))));
        assert!(tx.push_in_place(|p| p.write(MaybeUninit::new(*b"efgh"))));
        assert!(!tx.push_in_place(|_| panic!("called on a full ring")));
    }
    assert_eq!(
        // SAFETY: `pop_in_place` only calls for a published, initialized slot.
        rx.pop_in_place(|p| unsafe { (*p).assume_init() }),
        Some(*b"abcd")
    );
    assert_eq!(rx.pop(), Some(*b"efgh"));
    assert_eq!(rx.pop_in_place(|_| panic!("called on an empty ring")), None);
}

#[test]
fn read_chunk_commit_with_a_panicking_drop_drops_each_item_once() {
    // Every place the panicking item can sit: first of the chunk, in the
    // middle, last, and in the second run of a chunk that wraps.
    for panicking in 0..4 {
        let drops: [StdAtomicUsize; 4] = Default::default();
        {
            let mut ring = Ring::<PanicsOnDrop<'_>, 5>::new();
            let (mut tx, mut rx) = ring.split();
            // Positions at 3: the 4-item chunk is slots 3, 4, then 0, 1.
            for _ in 0..3 {
                assert!(tx.push(PanicsOnDrop::new(0, &drops, usize::MAX)).is_ok());
                drop(rx.pop());
            }
            drops[0].store(0, SeqCst);
            for id in 0..4 {
                let item = PanicsOnDrop::new(id, &drops, panicking);
                assert!(tx.push(item).is_ok());
            }
            let chunk = rx.read_chunk(4).unwrap();
            expect_panic(|| chunk.commit_all());
            // The committed items are gone from the ring: a pop must not hand
            // out an item that was already dropped (forgotten here, so the
            // failure reports it rather than dropping it a second time).
            let again = rx.pop().map(|item| {
                let id = item.id;
                core::mem::forget(item);
                id
            });
            assert_eq!(again, None, "panicking item {panicking}");
            assert!(rx.is_empty());
        }
        assert_eq!(drop_counts(&drops), [1; 4], "panicking item {panicking}");
    }
}

#[test]
fn a_ring_whose_item_panics_in_drop_still_drops_the_others_once() {
    for panicking in 0..4 {
        let drops: [StdAtomicUsize; 4] = Default::default();
        let mut ring = Ring::<PanicsOnDrop<'_>, 5>::new();
        {
            let (mut tx, mut rx) = ring.split();
            // Positions at 3: the items sit in slots 3, 4, 0, 1.
            for _ in 0..3 {
                assert!(tx.push(PanicsOnDrop::new(0, &drops, usize::MAX)).is_ok());
                drop(rx.pop());
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
