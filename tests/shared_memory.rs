//! ply-core's queues placed in `MAP_SHARED` memory and used across `fork()`.
//!
//! This is the key invariant of ply: the queues hold no pointers, so the very
//! same object works between processes. Every test moves at least 1,000,000 items
//! and accounts for each one (exactly once, in order where promised). A watchdog
//! deadline fails (and kills the children of) any test that stops making
//! progress, so none can hang CI.
//!
//! Children run only queue operations and `_exit` (see `ply_os::fork` on forking
//! a multi-threaded test harness): no allocation, no panics on the success path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ply::core::queue::{mpmc::ArrayQueue, spsc::Ring};
use ply::os::fork::{ScopedChild, scope};
use ply::os::shm::SharedBox;

const ITEMS: u64 = 1_000_000;
/// Generous: the transfers take well under a second in release and a few
/// seconds in debug; only a real hang gets near this.
const WATCHDOG: Duration = Duration::from_secs(120);

/// Polls `f` until it returns `Some`, failing the test at the watchdog deadline.
fn wait_for<T>(deadline: Instant, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let mut spins = 0u32;
    loop {
        if let Some(v) = f() {
            return v;
        }
        spins += 1;
        if spins % 1024 == 0 {
            assert!(
                Instant::now() < deadline,
                "watchdog: no progress while {what}"
            );
            std::thread::yield_now();
        }
    }
}

fn assert_child_ok(child: ScopedChild<'_>) {
    let exit = child.wait().expect("waitpid");
    assert!(exit.success(), "child {exit}");
}

#[test]
fn spsc_child_to_parent_one_million_in_order() {
    let ring = SharedBox::new(Ring::<u64, 1024>::new()).unwrap();
    // SAFETY: after the fork the child uses only `tx` and the parent only `rx`.
    let (mut tx, mut rx) = unsafe { ring.split_unchecked() };
    scope(|s| {
        let child = s
            .fork_child(move || {
                for i in 0..ITEMS {
                    let mut item = i;
                    while let Err(back) = tx.push(item) {
                        item = back;
                        std::hint::spin_loop();
                    }
                }
                0
            })
            .unwrap();
        let deadline = Instant::now() + WATCHDOG;
        for expected in 0..ITEMS {
            let v = wait_for(deadline, "popping from the child", || rx.pop());
            assert_eq!(v, expected, "item out of order, lost or duplicated");
        }
        assert_child_ok(child);
        assert_eq!(rx.pop(), None, "no extra items");
    });
}

#[test]
fn spsc_child_to_parent_in_batches() {
    let ring = SharedBox::new(Ring::<u64, 1000>::new()).unwrap();
    // SAFETY: as above, one side per process.
    let (mut tx, mut rx) = unsafe { ring.split_unchecked() };
    scope(|s| {
        let child = s
            .fork_child(move || {
                let mut batch = [0u64; 97];
                let mut next = 0;
                while next < ITEMS {
                    let n = (ITEMS - next).min(batch.len() as u64) as usize;
                    for (k, slot) in batch[..n].iter_mut().enumerate() {
                        *slot = next + k as u64;
                    }
                    let mut sent = 0;
                    while sent < n {
                        sent += tx.push_slice(&batch[sent..n]);
                    }
                    next += n as u64;
                }
                0
            })
            .unwrap();
        let deadline = Instant::now() + WATCHDOG;
        let mut buf = [0u64; 64];
        let mut expected = 0;
        while expected < ITEMS {
            let n = wait_for(deadline, "popping batches", || {
                match rx.pop_slice(&mut buf) {
                    0 => None,
                    n => Some(n),
                }
            });
            for &v in &buf[..n] {
                assert_eq!(v, expected);
                expected += 1;
            }
        }
        assert_child_ok(child);
    });
}

#[test]
fn mpmc_two_children_to_parent_each_once_in_producer_order() {
    let queue = SharedBox::new(ArrayQueue::<u64, 1024>::new()).unwrap();
    scope(|s| {
        let children: Vec<ScopedChild<'_>> = (0..2u64)
            .map(|id| {
                let queue = &queue;
                s.fork_child(move || {
                    for i in 0..ITEMS {
                        let mut item = (id << 32) | i;
                        while let Err(back) = queue.push(item) {
                            item = back;
                            std::hint::spin_loop();
                        }
                    }
                    0
                })
                .unwrap()
            })
            .collect();
        let deadline = Instant::now() + WATCHDOG;
        let mut next = [0u64; 2];
        for _ in 0..2 * ITEMS {
            let v = wait_for(deadline, "popping from two children", || queue.pop());
            let (id, seq) = ((v >> 32) as usize, v & 0xffff_ffff);
            assert!(id < 2, "invented item {v:#x}");
            // Per-producer FIFO: with one consumer, each producer's items arrive in
            // exactly the order pushed, which also rules out loss and duplicates.
            assert_eq!(
                seq, next[id],
                "producer {id}: lost, duplicated or reordered"
            );
            next[id] += 1;
        }
        for child in children {
            assert_child_ok(child);
        }
        assert_eq!(next, [ITEMS, ITEMS]);
    });
    assert_eq!(queue.pop(), None);
}

ply::core::shm_safe! {
    /// What each consumer child reports back through shared memory.
    struct Tally {
        count: AtomicU64,
        sum: AtomicU64,
    }
}

#[test]
fn mpmc_parent_to_two_children_counted_and_summed() {
    let queue = SharedBox::new(ArrayQueue::<u64, 512>::new()).unwrap();
    let tallies = SharedBox::new(
        [const {
            Tally {
                count: AtomicU64::new(0),
                sum: AtomicU64::new(0),
            }
        }; 2],
    )
    .unwrap();
    // Consumers stop when they have seen the end marker and the count is reached.
    let consumed = SharedBox::new(AtomicU64::new(0)).unwrap();
    scope(|s| {
        let children: Vec<ScopedChild<'_>> = (0..2usize)
            .map(|id| {
                let (queue, tallies, consumed) = (&queue, &tallies, &consumed);
                s.fork_child(move || {
                    let mut last: Option<u64> = None;
                    while consumed.load(Ordering::SeqCst) < ITEMS {
                        if let Some(v) = queue.pop() {
                            // One producer: each consumer sees increasing values.
                            if last.is_some_and(|l| l >= v) {
                                return 3;
                            }
                            last = Some(v);
                            tallies[id].count.fetch_add(1, Ordering::Relaxed);
                            tallies[id].sum.fetch_add(v, Ordering::Relaxed);
                            consumed.fetch_add(1, Ordering::SeqCst);
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                    0
                })
                .unwrap()
            })
            .collect();
        let deadline = Instant::now() + WATCHDOG;
        for i in 0..ITEMS {
            let mut item = Some(i);
            wait_for(deadline, "pushing to two children", || {
                match queue.push(item.take().unwrap()) {
                    Ok(()) => Some(()),
                    Err(back) => {
                        item = Some(back);
                        None
                    }
                }
            });
        }
        for child in children {
            assert_child_ok(child);
        }
    });
    let count: u64 = tallies.iter().map(|t| t.count.load(Ordering::SeqCst)).sum();
    let sum: u64 = tallies.iter().map(|t| t.sum.load(Ordering::SeqCst)).sum();
    assert_eq!(count, ITEMS, "every item consumed exactly once (count)");
    assert_eq!(
        sum,
        ITEMS * (ITEMS - 1) / 2,
        "every item consumed exactly once (sum)"
    );
    assert_eq!(queue.pop(), None);
}
