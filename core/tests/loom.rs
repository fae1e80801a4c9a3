//! loom model checks of ply-core's lock-free algorithms.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p ply-core --release --lib --test loom
//! ```
//!
//! (`--lib` adds the models kept next to the code they check, which need
//! private access: a waiter that dies holding a ticket, a writer that dies
//! announced.)
//!
//! Under `--cfg loom` the crate's atomics and cells are loom's (see the private
//! `primitive` module), so these models explore every interleaving (and every
//! permitted weak-memory outcome) of the shipped code, with small capacities and
//! 2–3 threads to keep the state space small. loom's `UnsafeCell` tracking turns
//! any unsynchronized slot access into a failure.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use ply_core::queue::mpmc::ArrayQueue;
use ply_core::queue::spsc::Ring;

/// Bounds the preemptions loom explores: enough to cover every pairing of one
/// thread's steps with another's in these small models, and finishing in seconds.
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_with_branches(1_000, f);
}

/// As [`model`], allowing longer executions (loom's default cap is 1,000
/// scheduling branches per execution; retry loops on both sides can exceed it).
fn model_with_branches(max_branches: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.max_branches = max_branches;
    builder.check(f);
}

#[test]
fn spsc_transfers_in_order_across_wrap() {
    model(|| {
        let ring: &'static mut Ring<usize, 2> = Box::leak(Box::new(Ring::new()));
        let (mut tx, mut rx) = ring.split();
        let producer = thread::spawn(move || {
            for i in 0..3 {
                let mut item = i;
                while let Err(back) = tx.push(item) {
                    item = back;
                    thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < 3 {
            match rx.pop() {
                Some(v) => {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.pop(), None);
    });
}

#[test]
fn spsc_capacity_one_full_and_empty() {
    model(|| {
        let ring: &'static mut Ring<usize, 1> = Box::leak(Box::new(Ring::new()));
        let (mut tx, mut rx) = ring.split();
        let producer = thread::spawn(move || {
            let mut pushed = 0;
            for i in 0..2 {
                if tx.push(i).is_ok() {
                    pushed += 1;
                }
            }
            pushed
        });
        let first = rx.pop();
        let pushed = producer.join().unwrap();
        let rest = rx.pop();
        let got: Vec<usize> = first.into_iter().chain(rest).collect();
        // With capacity 1 the second push succeeds only if the pop came first.
        assert_eq!(got.len(), pushed);
        assert!(pushed >= 1);
        assert_eq!(got[0], 0);
    });
}

#[test]
fn spsc_drops_leftovers_exactly_once() {
    model(|| {
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        struct Counted(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let raw = Box::into_raw(Box::new(Ring::<Counted, 2>::new()));
        {
            // SAFETY: `raw` is a live, leaked box; these are its only handles.
            let (mut tx, mut rx) = unsafe { (*raw).split_unchecked() };
            let d = drops.clone();
            let producer = thread::spawn(move || {
                let _ = tx.push(Counted(d.clone()));
                let _ = tx.push(Counted(d));
            });
            drop(rx.pop());
            producer.join().unwrap();
        }
        // SAFETY: both handles are gone; reclaim the box so the ring drops its
        // leftovers.
        drop(unsafe { Box::from_raw(raw) });
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 2);
    });
}

#[test]
fn mpmc_two_producers_one_consumer_no_loss() {
    model(|| {
        let q = Arc::new(ArrayQueue::<usize, 2>::new());
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut item = p;
                    while let Err(back) = q.push(item) {
                        item = back;
                        thread::yield_now();
                    }
                })
            })
            .collect();
        let mut seen = [false; 2];
        let mut got = 0;
        while got < 2 {
            match q.pop() {
                Some(v) => {
                    assert!(!seen[v], "duplicate");
                    seen[v] = true;
                    got += 1;
                }
                None => thread::yield_now(),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(q.pop(), None);
    });
}

#[test]
fn mpmc_one_producer_two_consumers_fifo_and_no_duplicate() {
    // The never-waiting forms: a consumer that could wait for the push in
    // flight (and the push for a pop in flight) multiplies the interleavings
    // past what loom explores in minutes; the waits have their own models above.
    model(|| {
        let q = Arc::new(ArrayQueue::<usize, 1>::new());
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || q.try_pop().ok())
            })
            .collect();
        let pushed: Vec<usize> = (0..2).filter(|&i| q.try_push(i).is_ok()).collect();
        let mut got: Vec<usize> = consumers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        got.extend(q.pop());
        got.sort();
        // Everything pushed is popped exactly once, nothing else appears.
        assert_eq!(got, pushed);
    });
}

#[test]
fn mpmc_force_push_against_pop() {
    model(|| {
        let q = Arc::new(ArrayQueue::<usize, 1>::new());
        q.push(0).unwrap();
        let q2 = q.clone();
        let consumer = thread::spawn(move || q2.pop());
        let evicted = q.force_push(1);
        let popped = consumer.join().unwrap();
        let last = q.pop();
        let mut all: Vec<usize> = evicted.into_iter().chain(popped).chain(last).collect();
        all.sort();
        // Item 0 went to exactly one of the evictor and the consumer; item 1 is
        // either popped by the consumer or still there.
        assert_eq!(all, vec![0, 1]);
    });
}

/// Two threads each push, then pop: each thread's own item is in the queue
/// from its push until a pop takes it, so no pop may report "empty" — even
/// when the head slot belongs to the other thread's push still in flight (pop
/// waits for it). Fails if the wait is replaced by an early `None`, or if the
/// `SeqCst` fence before the empty verdict is dropped.
#[test]
fn mpmc_pop_after_own_push_never_reports_empty() {
    model(|| {
        let q = Arc::new(ArrayQueue::<usize, 2>::new());
        let q2 = q.clone();
        let other = thread::spawn(move || {
            q2.push(1).unwrap();
            q2.pop().is_some()
        });
        q.push(0).unwrap();
        assert!(q.pop().is_some(), "a false \"empty\"");
        assert!(other.join().unwrap(), "a false \"empty\"");
        assert_eq!(q.pop(), None);
    });
}

/// The mirror image: a full queue of 2; two threads each pop, then push back.
/// No pop may report "empty", no push "full" — even when the slot to push into
/// is still being read by the other thread's pop (push waits for it).
#[test]
fn mpmc_push_after_own_pop_never_reports_full() {
    model(|| {
        let q = Arc::new(ArrayQueue::<usize, 2>::new());
        q.push(0).unwrap();
        q.push(1).unwrap();
        let q2 = q.clone();
        let other = thread::spawn(move || {
            let item = q2.pop().expect("a false \"empty\"");
            q2.push(item).is_ok()
        });
        let item = q.pop().expect("a false \"empty\"");
        assert!(q.push(item).is_ok(), "a false \"full\"");
        assert!(other.join().unwrap(), "a false \"full\"");
        let mut left = vec![q.pop().unwrap(), q.pop().unwrap()];
        left.sort();
        assert_eq!(left, vec![0, 1]);
    });
}

/// `try_pop` never waits: with a push in flight it may answer `Busy`, but
/// never `Empty` while the pusher's item is due, and never loses the item.
#[test]
fn mpmc_try_pop_is_busy_or_gets_the_item_never_a_false_empty() {
    use ply_core::queue::mpmc::TryPopError;
    model(|| {
        let q = Arc::new(ArrayQueue::<usize, 2>::new());
        let q2 = q.clone();
        let pusher = thread::spawn(move || q2.push(7).unwrap());
        let first = q.try_pop();
        pusher.join().unwrap();
        match first {
            Ok(v) => assert_eq!(v, 7),
            // Either verdict is honest here: the push may not have started
            // (empty) or may be in flight (busy). The item is then still there.
            Err(TryPopError::Empty) | Err(TryPopError::Busy) => assert_eq!(q.try_pop(), Ok(7)),
            Err(e) => panic!("unexpected {e:?}"),
        }
    });
}

use ply_core::queue::mpmc::ScqQueue;

#[test]
fn scq_two_producers_one_consumer_no_loss() {
    model(|| {
        let q = Arc::new(ScqQueue::<usize, 2>::new());
        let producers: Vec<_> = (0..2)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut item = p;
                    while let Err(back) = q.push(item) {
                        item = back;
                        thread::yield_now();
                    }
                })
            })
            .collect();
        let mut seen = [false; 2];
        let mut got = 0;
        while got < 2 {
            match q.pop() {
                Some(v) => {
                    assert!(!seen[v], "duplicate");
                    seen[v] = true;
                    got += 1;
                }
                None => thread::yield_now(),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(q.pop(), None);
    });
}

#[test]
fn scq_one_producer_two_consumers_no_duplicate() {
    model(|| {
        let q = Arc::new(ScqQueue::<usize, 1>::new());
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || q.pop())
            })
            .collect();
        let pushed: Vec<usize> = (0..2).filter(|&i| q.push(i).is_ok()).collect();
        let mut got: Vec<usize> = consumers
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect();
        got.extend(q.pop());
        got.sort();
        assert_eq!(got, pushed);
    });
}

/// With the index rings' operations only acquire/release (as in the paper's C
/// reference), loom finds an execution of this model where an enqueue skips
/// re-arming `threshold` on a stale read and the consumer then reports "empty"
/// forever with the item in the queue; see `index_ring`'s "Memory ordering".
#[test]
fn scq_fifo_between_one_producer_and_one_consumer_across_wrap() {
    model(|| {
        let q = Arc::new(ScqQueue::<usize, 1>::new());
        let q2 = q.clone();
        let producer = thread::spawn(move || {
            for i in 0..3 {
                let mut item = i;
                while let Err(back) = q2.push(item) {
                    item = back;
                    thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < 3 {
            match q.pop() {
                Some(v) => {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
    });
}

// ---- sync: locks and signals written in ply-core (not the ones from spin) ----

use loom::cell::UnsafeCell;
use ply_core::partition::{ChunkDispenser, Fixed};
use ply_core::sync::{Barrier, Event, RawRwLock, RawSpinMutex, RawTicketMutex, Semaphore};

// The models below touch plain data in loom-tracked cells, guarded only by the
// primitive under test. The accesses are sound exactly when that primitive
// orders them — which is what loom checks: it fails the model on any access not
// ordered by happens-before. These helpers hold the one `unsafe` each.

/// Reads `cell`.
fn get(cell: &UnsafeCell<u32>) -> u32 {
    cell.with(|p| {
        // SAFETY: loom verifies this read is ordered after every write (above).
        unsafe { *p }
    })
}

/// Writes `value` into `cell`.
fn set(cell: &UnsafeCell<u32>, value: u32) {
    cell.with_mut(|p| {
        // SAFETY: loom verifies this write is exclusive (above).
        unsafe { *p = value }
    })
}

/// Adds one to `cell`.
fn bump(cell: &UnsafeCell<u32>) {
    set(cell, get(cell) + 1);
}

/// Two threads each run a critical section on a loom-tracked cell under
/// `lock`/`unlock`; loom fails on any unsynchronized overlap.
fn exclusion_model<L: Send + Sync + 'static>(new: fn() -> L, lock: fn(&L), unlock: fn(&L)) {
    model(move || {
        let shared = Arc::new((new(), UnsafeCell::new(0u32)));
        let other = shared.clone();
        let t = thread::spawn(move || {
            lock(&other.0);
            bump(&other.1);
            unlock(&other.0);
        });
        lock(&shared.0);
        bump(&shared.1);
        unlock(&shared.0);
        t.join().unwrap();
        assert_eq!(get(&shared.1), 2);
    });
}

#[test]
fn spin_mutex_excludes() {
    exclusion_model(
        RawSpinMutex::new,
        |l| l.lock(),
        |l| {
            // SAFETY: each model thread unlocks only after its own lock.
            unsafe { l.unlock() }
        },
    );
}

#[test]
fn ticket_mutex_excludes() {
    exclusion_model(
        RawTicketMutex::new,
        |l| l.lock(),
        |l| {
            // SAFETY: each model thread unlocks only after its own lock.
            unsafe { l.unlock() }
        },
    );
}

#[test]
fn rwlock_writers_exclude() {
    exclusion_model(
        RawRwLock::new,
        |l| l.write(),
        |l| {
            // SAFETY: each model thread unlocks only after its own write lock.
            unsafe { l.unlock_write() }
        },
    );
}

#[test]
fn rwlock_reader_and_writer_exclude() {
    model(|| {
        let shared = Arc::new((RawRwLock::new(), UnsafeCell::new(0u32)));
        let other = shared.clone();
        let writer = thread::spawn(move || {
            other.0.write();
            set(&other.1, 7);
            // SAFETY: the write lock is held.
            unsafe { other.0.unlock_write() };
        });
        shared.0.read();
        let seen = get(&shared.1);
        // SAFETY: the read lock is held.
        unsafe { shared.0.unlock_read() };
        assert!(seen == 0 || seen == 7);
        writer.join().unwrap();
    });
}

#[test]
fn semaphore_of_one_excludes() {
    model(|| {
        let shared = Arc::new((Semaphore::new(1), UnsafeCell::new(0u32)));
        let other = shared.clone();
        let t = thread::spawn(move || {
            let _p = other.0.acquire();
            bump(&other.1);
        });
        {
            let _p = shared.0.acquire();
            bump(&shared.1);
        }
        t.join().unwrap();
        assert_eq!(get(&shared.1), 2);
        assert_eq!(shared.0.available(), 1);
    });
}

/// A waiter for the only permit and its release: the waiter always wakes (a
/// lost wake-up would leave it waiting forever). The release's notify skips
/// the event count's fence and relies on its `SeqCst` add and
/// `seq_cst_point` instead. (Dropping that `seq_cst_point` does not make this
/// model fail: loom does not reach the interleaving; the argument is in
/// `EventCount::notify_one_after_seq_cst_write`.)
#[test]
fn semaphore_release_never_loses_a_waiter() {
    model(|| {
        let shared = Arc::new(Semaphore::new(0));
        let other = shared.clone();
        let releaser = thread::spawn(move || other.release(1));
        shared.acquire().forget();
        releaser.join().unwrap();
        assert_eq!(shared.available(), 0);
    });
}

#[test]
fn event_publishes_what_was_written_before_set() {
    model(|| {
        let shared = Arc::new((Event::new(), UnsafeCell::new(0u32)));
        let other = shared.clone();
        let setter = thread::spawn(move || {
            set(&other.1, 42);
            other.0.set();
        });
        shared.0.wait();
        assert_eq!(get(&shared.1), 42);
        setter.join().unwrap();
    });
}

#[test]
fn barrier_publishes_each_partys_writes() {
    model(|| {
        let shared = Arc::new((
            Barrier::new(2),
            UnsafeCell::new(0u32),
            UnsafeCell::new(0u32),
        ));
        let other = shared.clone();
        let t = thread::spawn(move || {
            set(&other.2, 2);
            let leader = other.0.wait().is_leader();
            assert_eq!(get(&other.1), 1);
            leader
        });
        set(&shared.1, 1);
        let leader = shared.0.wait().is_leader();
        assert_eq!(get(&shared.2), 2);
        assert!(leader ^ t.join().unwrap(), "exactly one leader");
    });
}

#[test]
fn dispenser_hands_each_chunk_to_one_worker() {
    model(|| {
        let schedule = Fixed::new(3, 1).unwrap();
        let d = Arc::new(ChunkDispenser::<2>::new());
        let d2 = d.clone();
        let t = thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(c) = d2.claim(1, &schedule) {
                got.push(c.index);
            }
            got
        });
        let mut got = Vec::new();
        while let Some(c) = d.claim(0, &schedule) {
            got.push(c.index);
        }
        got.extend(t.join().unwrap());
        got.sort();
        assert_eq!(got, vec![0, 1, 2]);
    });
}

#[test]
fn dispenser_reclaimed_chunk_is_reissued_once() {
    model(|| {
        let schedule = Fixed::new(2, 1).unwrap();
        let d = Arc::new(ChunkDispenser::<3>::new());
        assert_eq!(d.claim(0, &schedule).unwrap().index, 0);
        let d2 = d.clone();
        // The supervisor reclaims dead worker 0's chunk while worker 1 claims.
        let supervisor = thread::spawn(move || d2.reclaim(0));
        let mut got = Vec::new();
        while let Some(c) = d.claim(1, &schedule) {
            got.push(c.index);
        }
        assert_eq!(supervisor.join().unwrap(), Some(0));
        // Whatever worker 1 missed, a later claim picks up.
        while let Some(c) = d.claim(2, &schedule) {
            got.push(c.index);
        }
        got.sort();
        assert_eq!(got, vec![0, 1]);
    });
}

/// Takes from an SPMC ring, retrying while another consumer copies its batch.
fn spmc_take(
    ring: &ply_core::queue::spmc::Ring<usize, 2>,
    max: usize,
    got: &mut Vec<usize>,
) -> bool {
    use ply_core::queue::spmc::Take;
    loop {
        match ring.take_batch(max, |x| got.push(x)) {
            Take::Items(_) => return true,
            Take::Empty => return false,
            Take::Busy => thread::yield_now(),
        }
    }
}

#[test]
fn spmc_owner_and_thief_take_each_item_once_across_wrap() {
    model(|| {
        let ring = Arc::new(ply_core::queue::spmc::Ring::<usize, 2>::new());
        let thief_ring = ring.clone();
        let thief = thread::spawn(move || {
            let mut got = Vec::new();
            spmc_take(&thief_ring, 2, &mut got);
            spmc_take(&thief_ring, 2, &mut got);
            got
        });
        let mut mine = Vec::new();
        {
            let mut tx = ring.producer().unwrap();
            for i in 0..3 {
                let mut item = i;
                while let Err(back) = tx.push(item) {
                    item = back;
                    spmc_take(&ring, 1, &mut mine);
                }
            }
        }
        let stolen = thief.join().unwrap();
        assert!(
            stolen.windows(2).all(|w| w[0] < w[1]),
            "a thief sees FIFO order"
        );
        while spmc_take(&ring, 1, &mut mine) {}
        let mut all = mine;
        all.extend(stolen);
        all.sort();
        assert_eq!(all, vec![0, 1, 2]);
    });
}

#[test]
fn spmc_two_thieves_split_a_batch_exactly() {
    model(|| {
        let ring = Arc::new(ply_core::queue::spmc::Ring::<usize, 2>::new());
        {
            let mut tx = ring.producer().unwrap();
            tx.push(0).unwrap();
            tx.push(1).unwrap();
        }
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    spmc_take(&ring, 2, &mut got);
                    got
                })
            })
            .collect();
        // The producer refills while the thieves take.
        let refilled = ring.producer().unwrap().push(2).is_ok();
        let mut all: Vec<usize> = thieves
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let mut rest = Vec::new();
        while spmc_take(&ring, 2, &mut rest) {}
        all.extend(rest);
        all.sort();
        let expected: Vec<usize> = if refilled { vec![0, 1, 2] } else { vec![0, 1] };
        assert_eq!(all, expected);
    });
}

// ---- the event count: ply's one sleeping protocol ----

use ply_core::sync::EventCount;

/// A waiter sleeping on an event count for a flag, and a notifier that sets
/// the flag then notifies: the waiter always wakes (a lost wake-up would leave
/// it parked forever, which loom reports), and sees what was written before
/// the flag.
#[test]
fn event_count_never_loses_a_wakeup() {
    model(|| {
        let shared = Arc::new((
            EventCount::new(),
            loom::sync::atomic::AtomicBool::new(false),
            UnsafeCell::new(0u32),
        ));
        let other = shared.clone();
        let notifier = thread::spawn(move || {
            set(&other.2, 5);
            other.1.store(true, loom::sync::atomic::Ordering::Release);
            other.0.notify_one();
        });
        shared.0.wait_until(|| {
            shared
                .1
                .load(loom::sync::atomic::Ordering::Acquire)
                .then_some(())
        });
        assert_eq!(get(&shared.2), 5);
        notifier.join().unwrap();
        assert_eq!(shared.0.waiters(), 0);
    });
}

/// By hand: register, re-check, wait. The notify may come before the
/// registration (then the re-check sees the flag), between registration and
/// wait (then the wait returns at once), or during the wait. The flag is
/// relaxed, so only the event count's fences order it against the
/// registration: dropping either side's `SeqCst` fence fails this model.
#[test]
fn event_count_prepare_recheck_wait() {
    model(|| {
        let shared = Arc::new((EventCount::new(), loom::sync::atomic::AtomicU32::new(0)));
        let other = shared.clone();
        let notifier = thread::spawn(move || {
            other.1.store(1, loom::sync::atomic::Ordering::Relaxed);
            other.0.notify_all();
        });
        loop {
            if shared.1.load(loom::sync::atomic::Ordering::Relaxed) == 1 {
                break;
            }
            let key = shared.0.prepare_wait();
            if shared.1.load(loom::sync::atomic::Ordering::Relaxed) == 1 {
                shared.0.cancel_wait(key);
                break;
            }
            shared.0.wait(key);
        }
        notifier.join().unwrap();
    });
}
