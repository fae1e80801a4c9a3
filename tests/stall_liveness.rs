//! Liveness when a participant stalls or dies mid-operation, across processes.
//!
//! A forked child shares a queue in `MAP_SHARED` memory with the parent and is
//! frozen (`SIGSTOP`) or killed (`SIGKILL`) *inside* a push or pop:
//!
//! - at exact points, via ply-core's `fault-injection` hooks (the child raises
//!   `SIGSTOP` on itself between claiming and publishing);
//! - at random instructions, by the parent stopping a busy child hundreds of
//!   times.
//!
//! `ScqQueue` must let the parent go on pushing and popping — every item counted,
//! in order — with at most the child's one slot out of use. `ArrayQueue` is
//! shown wedging in the same situation (its `try_pop` answers `Busy`, its `pop`
//! waits for the frozen push and gets the item once it resumes), which is why
//! `ScqQueue` exists.
//!
//! `ProcessQueue` (SCQ with sleeping getters) is shown not to strand a sleeping
//! getter when another is stopped right after its wake-up.
//!
//! Every wait has a watchdog, so no test can hang CI.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use ply::core::queue::mpmc::{ArrayQueue, ScqQueue, TryPopError};
use ply::core::sync::{Deadline, Spins};
use ply::os::fork::{Signal, fork_child};
use ply::os::shm::SharedBox;
use ply_core::fault::Point;

mod support;
use support::{WATCHDOG, finish, kill, stop_at, wait_until_stopped};

const N: usize = 8;
/// Rounds of parent traffic while the child is frozen or dead.
const ROUNDS: u64 = 1000;

/// Shared memory that outlives the test's children (`fork_child` takes only
/// `'static` closures; the mapping is the test process's until it exits).
fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// With the child holding one slot, the parent has `N - 1` and uses them
/// fully, round after round, in FIFO order.
fn parent_traffic_with_one_slot_held(q: &ScqQueue<u64, N>) {
    let mut next = 0u64;
    for _ in 0..ROUNDS {
        for k in 0..(N as u64 - 1) {
            assert_eq!(q.push(next + k), Ok(()), "push below capacity N - 1 failed");
        }
        assert_eq!(q.push(u64::MAX), Err(u64::MAX), "only N - 1 slots are free");
        for k in 0..(N as u64 - 1) {
            assert_eq!(q.pop(), Some(next + k), "FIFO, nothing lost");
        }
        assert_eq!(q.pop(), None);
        next += N as u64;
    }
}

#[test]
fn scq_producer_frozen_mid_push_blocks_nobody() {
    let q = leak(SharedBox::new(ScqQueue::<u64, N>::new()).unwrap());
    let child = fork_child(move || {
        stop_at(Point::ScqPushSlotTaken);
        if q.push(999).is_ok() { 0 } else { 1 }
    })
    .unwrap();
    wait_until_stopped(&child);
    parent_traffic_with_one_slot_held(q);
    assert!(finish(child).success());
    assert_eq!(q.pop(), Some(999), "the frozen push completes when resumed");
    assert_eq!(q.pop(), None);
}

#[test]
fn scq_consumer_frozen_mid_pop_blocks_nobody() {
    let q = leak(SharedBox::new(ScqQueue::<u64, N>::new()).unwrap());
    let taken = leak(SharedBox::new(AtomicU64::new(0)).unwrap());
    q.push(1).unwrap();
    q.push(2).unwrap();
    let child = fork_child(move || {
        stop_at(Point::ScqPopIndexTaken);
        match q.pop() {
            Some(v) => {
                taken.store(v, SeqCst);
                0
            }
            None => 1,
        }
    })
    .unwrap();
    wait_until_stopped(&child);
    assert_eq!(
        q.pop(),
        Some(2),
        "the next item is not stuck behind the frozen pop"
    );
    parent_traffic_with_one_slot_held(q);
    assert!(finish(child).success());
    assert_eq!(
        taken.load(SeqCst),
        1,
        "the frozen pop gets its item when resumed"
    );
    assert_eq!(q.pop(), None);
}

#[test]
fn scq_producer_killed_mid_push_costs_one_slot() {
    let q = leak(SharedBox::new(ScqQueue::<u64, N>::new()).unwrap());
    let child = fork_child(move || {
        stop_at(Point::ScqPushSlotTaken);
        q.push(999).map_or(1, |()| 0)
    })
    .unwrap();
    wait_until_stopped(&child);
    kill(child);
    // The dead producer's slot is gone for good; everything else works.
    parent_traffic_with_one_slot_held(q);
}

#[test]
fn scq_consumer_killed_mid_pop_loses_one_item_and_one_slot() {
    let q = leak(SharedBox::new(ScqQueue::<u64, N>::new()).unwrap());
    q.push(1).unwrap();
    q.push(2).unwrap();
    let child = fork_child(move || {
        stop_at(Point::ScqPopIndexTaken);
        q.pop().map_or(1, |_| 0)
    })
    .unwrap();
    wait_until_stopped(&child);
    kill(child);
    assert_eq!(q.pop(), Some(2));
    parent_traffic_with_one_slot_held(q);
}

#[test]
fn array_queue_producer_frozen_mid_push_wedges_consumers() {
    // The contrast: the per-slot-stamp queue cannot get past a claimed,
    // unpublished slot. `try_pop` says so (`Busy`, never a false "empty"), and
    // a bounded `pop_with` gives up; this is the limitation ScqQueue removes.
    let q = leak(SharedBox::new(ArrayQueue::<u64, N>::new()).unwrap());
    let child = fork_child(move || {
        stop_at(Point::ArrayPushClaimed);
        q.push(999).map_or(1, |()| 0)
    })
    .unwrap();
    wait_until_stopped(&child);
    assert_eq!(q.push(1), Ok(()));
    for _ in 0..10_000 {
        assert_eq!(
            q.try_pop(),
            Err(TryPopError::Busy),
            "item 1 is queued, but stuck behind the push in flight"
        );
    }
    assert_eq!(q.pop_with(Spins(1000)), Err(TryPopError::Busy));
    assert!(finish(child).success());
    assert_eq!(q.pop(), Some(999));
    assert_eq!(q.pop(), Some(1));
    assert_eq!(q.try_pop(), Err(TryPopError::Empty));
}

#[test]
fn array_queue_pop_waits_for_a_frozen_push_and_gets_its_item() {
    // `pop` is linearizable: with the producer frozen mid-push the queue is
    // not empty, so `pop` waits instead of answering `None`, and gets the
    // item once the producer is resumed (whether the resume comes before or
    // after the pop starts waiting).
    let q = leak(SharedBox::new(ArrayQueue::<u64, N>::new()).unwrap());
    let mut child = fork_child(move || {
        stop_at(Point::ArrayPushClaimed);
        q.push(999).map_or(1, |()| 0)
    })
    .unwrap();
    wait_until_stopped(&child);
    let pid = child.pid();
    let resumer = std::thread::spawn(move || {
        // SAFETY: kill has no memory-safety preconditions; `pid` is our
        // unreaped child, so it cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGCONT) }
    });
    let deadline = Instant::now() + WATCHDOG;
    assert_eq!(
        q.pop_with(Deadline(|| Instant::now() >= deadline)),
        Ok(999),
        "pop must wait for the push in flight, not report empty"
    );
    assert_eq!(resumer.join().unwrap(), 0);
    let exit = child
        .wait_timeout(WATCHDOG)
        .unwrap()
        .expect("watchdog: child did not finish");
    assert!(exit.success());
}

ply::core::shm_safe! {
    /// Per-origin accounting in shared memory: pushes and pops, counted and summed.
    #[derive(Default)]
    struct Tally {
        pushed: AtomicU64,
        pushed_sum: AtomicU64,
        popped: AtomicU64,
        popped_sum: AtomicU64,
    }
}

const PARENT: u64 = 0;
const CHILD: u64 = 1 << 40;

fn record_pop(tallies: &[Tally; 2], v: u64) {
    let t = &tallies[(v >= CHILD) as usize];
    t.popped.fetch_add(1, SeqCst);
    t.popped_sum.fetch_add(v & (CHILD - 1), SeqCst);
}

#[test]
fn scq_random_stops_of_a_busy_child_never_stall_the_parent() {
    let stops = if cfg!(debug_assertions) { 200 } else { 500 };
    let q = leak(SharedBox::new(ScqQueue::<u64, N>::new()).unwrap());
    let tallies = leak(SharedBox::new(<[Tally; 2]>::default()).unwrap());
    let done = leak(SharedBox::new(AtomicBool::new(false)).unwrap());
    let mut child = fork_child(move || {
        // Busy in push and pop all the time, so a stop lands inside one.
        let mut seq = 0u64;
        while !done.load(SeqCst) {
            if q.push(CHILD | seq).is_ok() {
                tallies[1].pushed.fetch_add(1, SeqCst);
                tallies[1].pushed_sum.fetch_add(seq, SeqCst);
                seq += 1;
            }
            if let Some(v) = q.pop() {
                record_pop(tallies, v);
            }
        }
        0
    })
    .unwrap();
    let mut next = 0u64;
    let mut rng = 0x2545_f491_u64;
    for _ in 0..stops {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        std::thread::sleep(Duration::from_micros(rng >> 57)); // 0..127 µs
        child.kill(Signal::STOP).unwrap();
        wait_until_stopped(&child);
        // Drain what is visible, then use every slot the child cannot hold.
        for _ in 0..=4 * N {
            match q.pop() {
                Some(v) => record_pop(tallies, v),
                None => break,
            }
        }
        assert_eq!(q.pop(), None, "drained");
        for k in 0..(N as u64 - 1) {
            assert_eq!(q.push(PARENT | (next + k)), Ok(()), "parent push stalled");
        }
        for k in 0..(N as u64 - 1) {
            assert_eq!(q.pop(), Some(PARENT | (next + k)), "parent pop stalled");
        }
        let sum: u64 = (next..next + N as u64 - 1).sum();
        tallies[0].pushed.fetch_add(N as u64 - 1, SeqCst);
        tallies[0].pushed_sum.fetch_add(sum, SeqCst);
        tallies[0].popped.fetch_add(N as u64 - 1, SeqCst);
        tallies[0].popped_sum.fetch_add(sum, SeqCst);
        next += N as u64;
        child.kill(Signal::CONT).unwrap();
    }
    done.store(true, SeqCst);
    let exit = child
        .wait_timeout(WATCHDOG)
        .unwrap()
        .expect("watchdog: child exit");
    assert!(exit.success());
    while let Some(v) = q.pop() {
        record_pop(tallies, v);
    }
    for (who, t) in ["parent", "child"].iter().zip(tallies.iter()) {
        assert_eq!(t.pushed.load(SeqCst), t.popped.load(SeqCst), "{who}: count");
        assert_eq!(
            t.pushed_sum.load(SeqCst),
            t.popped_sum.load(SeqCst),
            "{who}: sum"
        );
    }
    assert!(tallies[1].pushed.load(SeqCst) > 0, "the child did work");
}

#[test]
fn process_queue_getter_stopped_or_killed_while_waiting_strands_no_other_getter() {
    // A getter is stopped either after registering on the event count (before
    // sleeping) or right after a put's wake-up (before taking the item); then
    // it is resumed or killed. Another getter, asleep with no deadline, must
    // still get the item: a stopped getter may hold the one wake-up a put
    // sends (futexes wake in arrival order), and sleepers re-check on their
    // own after at most RECHECK.
    use ply::os::ipc::ProcessQueue;
    for point in [Point::EventCountWaiting, Point::EventCountNotified] {
        for kill_it in [false, true] {
            let queue = leak(ProcessQueue::<u64, 4>::new().unwrap());
            let first = fork_child(move || {
                stop_at(point);
                (queue.get() != 2) as i32
            })
            .unwrap();
            if point == Point::EventCountWaiting {
                wait_until_stopped(&first);
            } else {
                until_asleep(&first);
            }
            // Unbounded: only a wake-up or a re-check ends its wait.
            let second = fork_child(move || (queue.get() != 1) as i32).unwrap();
            until_asleep(&second);
            queue.put(1);
            support::succeeds(second);
            if kill_it {
                kill(first);
                // Its registration stays behind; the queue works on.
                queue.put(3);
                assert_eq!(queue.get_timeout(WATCHDOG), Some(3));
            } else {
                queue.put(2);
                // Stopped at its point, or (at EventCountNotified, if the
                // second getter got the first wake-up) about to stop there on
                // this one: resume it until it has taken item 2 and exited.
                assert!(support::resume_until_exit(first).success());
            }
        }
    }
}

/// Waits until a child sleeps in the kernel (state 'S').
fn until_asleep(child: &ply::os::fork::ForkedChild) {
    let deadline = Instant::now() + WATCHDOG;
    while support::proc_state(child.pid()) != Some('S') {
        assert!(Instant::now() < deadline, "watchdog: child never slept");
        std::thread::sleep(Duration::from_millis(1));
    }
}
