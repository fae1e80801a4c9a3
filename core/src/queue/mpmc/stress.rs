//! The multi-threaded stress test shared by both MPMC queues.

use core::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::vec;
use std::vec::Vec;

use core::mem::MaybeUninit;

use super::{ArrayQueue, Entries, ScqBase};
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

impl<T: Send, const N: usize> TestQueue<T> for ArrayQueue<T, N> {
    fn push(&self, value: T) -> Result<(), T> {
        ArrayQueue::push(self, value)
    }
    fn pop(&self) -> Option<T> {
        ArrayQueue::pop(self)
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
