//! The multi-threaded stress test shared by both MPMC queues.

use core::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::vec;
use std::vec::Vec;

use core::mem::MaybeUninit;

use super::{ArrayQueueBase, Entries, ScqBase, StampedSlots};
use crate::queue::storage::Slots;

/// Items per producer: millions in total in release builds (CI runs the tests
/// in release too), fewer in debug builds, a few hundred under Miri.
pub(crate) const PER_PRODUCER: usize = if cfg!(miri) {
    200
} else if cfg!(debug_assertions) {
    100_000
} else {
    1_000_000
};

/// The two queues' common surface, so one stress test checks both.
pub(crate) trait TestQueue<T>: Sync {
    fn push(&self, value: T) -> Result<(), T>;
    fn pop(&self) -> Option<T>;
    fn is_empty_now(&self) -> bool;
}

impl<T, S: StampedSlots<Item = MaybeUninit<T>> + Sync> TestQueue<T> for ArrayQueueBase<S> {
    fn push(&self, value: T) -> Result<(), T> {
        ArrayQueueBase::push(self, value)
    }
    fn pop(&self) -> Option<T> {
        ArrayQueueBase::pop(self)
    }
    fn is_empty_now(&self) -> bool {
        self.is_empty()
    }
}

impl<T, S, E> TestQueue<T> for ScqBase<S, E>
where
    S: Slots<Item = MaybeUninit<T>> + Sync,
    E: Entries + Sync,
{
    fn push(&self, value: T) -> Result<(), T> {
        ScqBase::push(self, value)
    }
    fn pop(&self) -> Option<T> {
        ScqBase::pop(self)
    }
    fn is_empty_now(&self) -> bool {
        self.pop().is_none()
    }
}

/// `producers` threads push `(producer, seq)` pairs, `consumers` threads pop
/// them; every item must arrive exactly once, and each consumer must see each
/// producer's items in increasing order (per-producer FIFO).
pub(crate) fn stress(q: &impl TestQueue<(usize, usize)>, producers: usize, consumers: usize) {
    let total = producers * PER_PRODUCER;
    let popped = AtomicUsize::new(0);
    let seen: Vec<Vec<(usize, usize)>> = std::thread::scope(|s| {
        for p in 0..producers {
            s.spawn(move || {
                for i in 0..PER_PRODUCER {
                    let mut item = (p, i);
                    while let Err(back) = q.push(item) {
                        item = back;
                        std::thread::yield_now();
                    }
                }
            });
        }
        let handles: Vec<_> = (0..consumers)
            .map(|_| {
                let popped = &popped;
                s.spawn(move || {
                    let mut got = Vec::new();
                    let mut last = vec![None::<usize>; producers];
                    while popped.load(SeqCst) < total {
                        match q.pop() {
                            Some((p, i)) => {
                                assert!(last[p].is_none_or(|l| l < i), "per-producer order");
                                last[p] = Some(i);
                                got.push((p, i));
                                popped.fetch_add(1, SeqCst);
                            }
                            None => std::thread::yield_now(),
                        }
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut count = vec![0u8; total];
    for (p, i) in seen.into_iter().flatten() {
        count[p * PER_PRODUCER + i] += 1;
    }
    assert!(count.iter().all(|&c| c == 1), "every item exactly once");
    assert!(q.is_empty_now());
}

/// Rounds per thread of the linearizability tests.
pub(crate) const LINEARIZABLE_ROUNDS: usize = if cfg!(miri) {
    20
} else if cfg!(debug_assertions) {
    100_000
} else {
    1_000_000
};

/// Ported from crossbeam-queue's and concurrent-queue's `linearizable` tests:
/// `threads` threads (at most the capacity) each push an item, then pop one.
/// Each thread's own item is in the queue from its push until some pop takes
/// it, so when a thread pops, the queue holds at least one item at every
/// instant of the call: a `None` is a false "empty".
pub(crate) fn push_then_pop_always_finds_an_item(q: &impl TestQueue<usize>, threads: usize) {
    let pops = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let pops = &pops;
            s.spawn(move || {
                for i in 0..LINEARIZABLE_ROUNDS {
                    assert!(q.push(t).is_ok(), "push {i}: a false \"full\"");
                    assert!(q.pop().is_some(), "pop {i}: a false \"empty\"");
                    pops.fetch_add(1, SeqCst);
                }
            });
        }
    });
    assert_eq!(pops.load(SeqCst), threads * LINEARIZABLE_ROUNDS);
    assert!(q.is_empty_now());
}

/// The mirror image for `push`: the queue starts full (`capacity` items, and
/// `threads <= capacity`), and each thread pops an item, then pushes one.
/// While a thread holds no item the queue holds at least one (the others hold
/// at most `threads - 1`), and while it holds one the queue has a free slot:
/// so every pop must find an item and every push must find room.
pub(crate) fn pop_then_push_always_finds_room(
    q: &impl TestQueue<usize>,
    capacity: usize,
    threads: usize,
) {
    for i in 0..capacity {
        assert!(q.push(i).is_ok());
    }
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(move || {
                for i in 0..LINEARIZABLE_ROUNDS {
                    let Some(item) = q.pop() else {
                        panic!("pop {i}: a false \"empty\"");
                    };
                    assert!(q.push(item).is_ok(), "push {i}: a false \"full\"");
                }
            });
        }
    });
    let mut left: Vec<usize> = core::iter::from_fn(|| q.pop()).collect();
    left.sort_unstable();
    assert_eq!(left, (0..capacity).collect::<Vec<_>>(), "every item once");
}
