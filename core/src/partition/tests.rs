//! Partition tests: every strategy covers every index exactly once, in order,
//! for random sizes (proptest), plus the strategies' own promises.

use super::*;
use std::vec::Vec;

/// Checks the core promise of a schedule: chunks are contiguous, in order, and
/// together cover `0..len` exactly once.
fn assert_covers_exactly_once<S: Schedule>(s: &S, len: usize) {
    let mut next = 0;
    for (i, range) in s.iter().enumerate() {
        assert_eq!(range, s.chunk(i), "iter and chunk(i) agree");
        assert_eq!(range.start, next, "chunk {i} starts where the last ended");
        assert!(range.end >= range.start);
        next = range.end;
    }
    assert_eq!(next, len, "chunks cover all of 0..len");
    assert_eq!(
        s.chunk(s.chunks()),
        s.chunk(s.chunks()).start..s.chunk(s.chunks()).start,
        "past the end: empty"
    );
}

#[test]
fn even_sizes_differ_by_at_most_one() {
    for len in 0..40 {
        for parts in 1..12 {
            let s = Even::new(len, parts).unwrap();
            assert_covers_exactly_once(&s, len);
            let sizes: Vec<usize> = s.iter().map(|r| r.len()).collect();
            assert_eq!(s.chunks(), parts.min(len));
            if let (Some(max), Some(min)) = (sizes.iter().max(), sizes.iter().min()) {
                assert!(max - min <= 1);
                assert!(*min >= 1, "no empty chunks");
            }
        }
    }
}

#[test]
fn errors_instead_of_panics() {
    assert_eq!(Even::new(5, 0), Err(PartitionError::ZeroParts));
    assert_eq!(Fixed::new(5, 0), Err(PartitionError::ZeroChunkSize));
    assert_eq!(Guided::new(5, 0, 1, 1), Err(PartitionError::ZeroParts));
    assert_eq!(Guided::new(5, 1, 0, 1), Err(PartitionError::ZeroFactor));
    assert_eq!(Guided::new(5, 1, 1, 0), Err(PartitionError::ZeroChunkSize));
    let w: &[u64] = &[1];
    assert_eq!(Weighted::new(w, 0).unwrap_err(), PartitionError::ZeroParts);
    assert_eq!(shard(0, 0, 5), Err(PartitionError::ZeroParts));
    assert_eq!(
        shard(4, 4, 5),
        Err(PartitionError::ShardOutOfRange { k: 4, n: 4 })
    );
    let msg = std::format!("{}", PartitionError::ShardOutOfRange { k: 4, n: 4 });
    assert_eq!(
        msg,
        "shard 4 of 4 does not exist: shards are numbered 0 to 3"
    );
}

/// A worker id past the dispenser's capacity panics in every method, as an
/// index past a slice's end does, and leaves the dispenser untouched.
#[test]
fn dispenser_panics_on_a_worker_id_out_of_range() {
    panics_on_a_worker_id_out_of_range(&ChunkDispenser::<2>::new());
    let mut slots = [const { WorkerSlot::new() }; 2];
    panics_on_a_worker_id_out_of_range(&SliceDispenser::over(&mut slots));
}

fn panics_on_a_worker_id_out_of_range<S: WorkerSlots>(d: &DispenserBase<S>) {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let s = Fixed::new(4, 1).unwrap();
    let message = |f: &dyn Fn()| -> std::string::String {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("should panic");
        payload
            .downcast_ref::<std::string::String>()
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        message(&|| {
            let _ = d.claim(2, &s);
        }),
        "worker 2 is out of range: this dispenser tracks workers 0 to 1"
    );
    assert!(message(&|| d.complete(9)).starts_with("worker 9 is out of range"));
    assert!(
        message(&|| {
            d.held_by(2);
        })
        .starts_with("worker 2 ")
    );
    assert!(
        message(&|| {
            d.reclaim(usize::MAX);
        })
        .contains("out of range")
    );
    assert_eq!(d.issued(), 0, "nothing was claimed");
    assert_eq!(d.claim(1, &s).map(|c| c.index), Some(0));
}

#[test]
fn huge_lengths_do_not_overflow() {
    let f = Fixed::new(usize::MAX, usize::MAX / 2).unwrap();
    assert_eq!(f.chunks(), 3);
    assert_eq!(f.chunk(2), usize::MAX - 1..usize::MAX);
    assert_eq!(f.chunk(usize::MAX), usize::MAX..usize::MAX);
    let e = Even::new(usize::MAX, 3).unwrap();
    assert_eq!(e.chunk(2).end, usize::MAX);
    let g = Guided::new(usize::MAX, usize::MAX, usize::MAX, 1).unwrap();
    assert_eq!(g.chunk(0), 0..1);
}

#[test]
fn weighted_balances_a_skewed_workload() {
    // Costs grow linearly: an even split would give the last part ~7x the first.
    let costs: Vec<u64> = (0..1000u64).collect();
    let s = Weighted::new(costs.as_slice(), 4).unwrap();
    assert_covers_exactly_once(&s, 1000);
    let part_costs: Vec<u64> = s.iter().map(|r| costs[r].iter().sum()).collect();
    let total: u64 = costs.iter().sum();
    for c in &part_costs {
        assert!(*c <= total / 4 + 999, "{part_costs:?}");
    }
    let zero: &[u64] = &[0; 10];
    let z = Weighted::new(zero, 3).unwrap();
    assert_covers_exactly_once(&z, 10);
}

#[test]
fn shards_are_disjoint_and_cover() {
    for len in 0..30 {
        for n in 1..10 {
            let mut next = 0;
            for k in 0..n {
                let r = shard(k, n, len).unwrap();
                assert_eq!(r.start, next);
                next = r.end;
                assert_eq!(shard(k, n, len).unwrap(), r, "stable");
            }
            assert_eq!(next, len);
        }
    }
}

/// Four threads claim until done; every chunk is handed out exactly once.
fn hands_out_every_chunk_once<S: WorkerSlots + Sync>(dispenser: &DispenserBase<S>) {
    let schedule = Fixed::new(if cfg!(miri) { 200 } else { 100_000 }, 7).unwrap();
    let claimed: Vec<Vec<usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let (d, schedule) = (dispenser, &schedule);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(c) = d.claim(w, schedule) {
                        assert_eq!(d.held_by(w), Some(c.index));
                        mine.push(c.index);
                        d.complete(w);
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<usize> = claimed.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(all, (0..schedule.chunks()).collect::<Vec<_>>());
}

#[test]
fn dispenser_hands_out_every_chunk_once_across_threads() {
    hands_out_every_chunk_once(&ChunkDispenser::<4>::new());
    let mut slots: Vec<WorkerSlot> = (0..4).map(|_| WorkerSlot::new()).collect();
    hands_out_every_chunk_once(&SliceDispenser::over(&mut slots));
}

#[test]
fn dispenser_reissues_a_dead_workers_chunk_first() {
    reissues_a_dead_workers_chunk_first(&ChunkDispenser::<3>::new());
    // Slots left dirty by an earlier run: the new dispenser resets them.
    let mut slots = [const { WorkerSlot::new() }; 3];
    {
        let old = SliceDispenser::over(&mut slots);
        let s = Fixed::new(10, 2).unwrap();
        assert!(old.claim(0, &s).is_some() && old.claim(1, &s).is_some());
        assert_eq!(old.reclaim(1), Some(1));
    }
    reissues_a_dead_workers_chunk_first(&SliceDispenser::over(&mut slots));
}

/// Two workers die holding chunks; the supervisor reclaims them; the third
/// worker then does every chunk exactly once.
fn reissues_a_dead_workers_chunk_first<S: WorkerSlots>(d: &DispenserBase<S>) {
    assert_eq!(d.workers(), 3);
    let s = Fixed::new(10, 2).unwrap();
    assert_eq!(d.claim(0, &s).unwrap().index, 0);
    assert_eq!(d.claim(1, &s).unwrap().index, 1);
    // Worker 0 dies holding chunk 0; worker 1 dies holding chunk 1.
    assert_eq!(d.reclaim(0), Some(0));
    assert_eq!(d.reclaim(1), Some(1));
    assert_eq!(d.reclaim(1), None, "nothing held any more");
    let mut got: Vec<usize> = (0..5)
        .map(|_| {
            let c = d.claim(2, &s).unwrap();
            d.complete(2);
            c.index
        })
        .collect();
    assert_eq!(d.claim(2, &s), None);
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4], "each chunk done exactly once");
}

#[cfg(not(miri))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn even_covers(len in 0usize..5000, parts in 1usize..64) {
            assert_covers_exactly_once(&Even::new(len, parts).unwrap(), len);
        }

        #[test]
        fn fixed_covers(len in 0usize..5000, size in 1usize..700) {
            let s = Fixed::new(len, size).unwrap();
            assert_covers_exactly_once(&s, len);
            prop_assert!(s.iter().all(|r| r.len() <= size));
        }

        #[test]
        fn guided_covers_and_never_grows(
            len in 0usize..20_000, workers in 1usize..16, k in 1usize..4, min in 1usize..50,
        ) {
            let s = Guided::new(len, workers, k, min).unwrap();
            assert_covers_exactly_once(&s, len);
            let sizes: Vec<usize> = s.iter().map(|r| r.len()).collect();
            prop_assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{:?}", sizes);
            // Every chunk but the last is at least `min`.
            if sizes.len() > 1 {
                prop_assert!(sizes[..sizes.len() - 1].iter().all(|&n| n >= min));
            }
        }

        #[test]
        fn weighted_covers_within_one_item_of_ideal(
            weights in proptest::collection::vec(0u64..1000, 0..400), parts in 1usize..20,
        ) {
            let s = Weighted::new(weights.as_slice(), parts).unwrap();
            assert_covers_exactly_once(&s, weights.len());
            let total: u64 = weights.iter().sum();
            let max = weights.iter().copied().max().unwrap_or(0);
            let parts = s.chunks() as u64;
            for r in s.iter() {
                let cost: u64 = weights[r].iter().sum();
                // The stated bound: ideal (rounded up) plus the dearest item.
                prop_assert!(cost <= total.div_ceil(parts.max(1)) + max);
            }
        }

        #[test]
        fn weighted_from_a_cost_function_covers(len in 0usize..3000, parts in 1usize..16) {
            let s = Weighted::new(CostFn::new(len, |i| (i % 17) as u64), parts).unwrap();
            assert_covers_exactly_once(&s, len);
        }

        /// Every `Chunking` makes a plan that covers `0..len` once, whatever
        /// the sizes (zeros included), and its cached count is the schedule's.
        #[test]
        fn every_chunking_covers(
            len in 0usize..5000,
            workers in 0usize..40,
            size in 0usize..700,
            which in 0usize..4,
        ) {
            let chunking = [
                Chunking::Auto,
                Chunking::Even,
                Chunking::Fixed(size),
                Chunking::Guided { min: size },
            ][which];
            let plan = chunking.schedule(len, workers);
            assert_covers_exactly_once(&plan, len);
            prop_assert_eq!(plan.chunks(), plan.iter().count());
            match chunking {
                Chunking::Even => prop_assert_eq!(plan.chunks(), workers.clamp(1, len.max(1)).min(len)),
                Chunking::Fixed(size) => prop_assert!(plan.iter().all(|r| r.len() <= size.max(1))),
                _ => {}
            }
        }

        #[test]
        fn shards_partition(len in 0usize..100_000, n in 1usize..200) {
            let mut next = 0;
            for k in 0..n {
                let r = shard(k, n, len).unwrap();
                prop_assert_eq!(r.start, next);
                next = r.end;
            }
            prop_assert_eq!(next, len);
        }
    }
}
