//! ply-core's locks and signals when a process sharing them is stopped
//! (`SIGSTOP`) or killed (`SIGKILL`) inside an operation.
//!
//! The participant is a forked child stopped at an exact point by ply-core's
//! `fault-injection` hooks (after taking a ticket, after announcing itself as
//! a waiting writer, after taking a robust lock, inside its unlock, while
//! parked), or at random instructions by the parent; then it is resumed or
//! killed. What each lock promises:
//!
//! | lock | a waiter stopped or killed | a holder stopped | a holder killed |
//! |---|---|---|---|
//! | `TicketMutex` | others go on (its turn is revoked) | others wait | held for good (not tested: documented) |
//! | `RwLock` (writer) | readers go on (its lease expires) | others wait | held for good |
//! | `RobustMutex`, `SharedValue` | others go on | bounded waits time out | the next `lock` takes over and says so |
//! | `Semaphore`/`Event` on `FutexPark` | — | bounded waits end by their deadline | — |
//!
//! Every wait in a test has a watchdog; none relies on a sleep to win a race
//! (the sleeps only vary the timing).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use ply::core::sync::{
    Event, LockWith, RecoveryGuard, RobustError, RobustMutex, RwLock, RwLockWith, Semaphore,
    TicketMutex,
};
use ply::os::fork::{ForkedChild, Signal, fork_child};
use ply::os::ipc::SharedValue;
use ply::os::liveness::ThreadLiveness;
use ply::os::park::{FutexPark, Until};
use ply::os::shm::SharedBox;
use ply_core::fault::Point;

mod support;
use support::{Jitter, WATCHDOG, finish, finishes, kill, stop_at, succeeds, wait_until_stopped};

/// What the test does to the stopped participant.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    Resume,
    Kill,
}

/// Spins (yielding) until `ready`, under the watchdog.
fn until(mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WATCHDOG;
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "watchdog");
        std::thread::yield_now();
    }
}

fn tickets<T>(m: &TicketMutex<T>) -> usize {
    // SAFETY: only reads the raw lock's ticket counter.
    unsafe { m.raw() }.tickets_issued()
}

// ---- TicketMutex: a waiter that never takes its turn ----

#[test]
fn ticket_waiter_stopped_or_killed_inside_lock_does_not_wedge_the_lock() {
    for fate in [Fate::Kill, Fate::Resume] {
        for round in 0..3u64 {
            let m: &'static SharedBox<TicketMutex<u64>> =
                Box::leak(Box::new(SharedBox::new(TicketMutex::new(0)).unwrap()));
            let held = m.lock();
            let stuck = fork_child(|| {
                stop_at(Point::TicketWaiting);
                *m.lock() += 1;
                0
            })
            .unwrap();
            wait_until_stopped(&stuck);
            let behind = fork_child(|| {
                *m.lock() += 10;
                0
            })
            .unwrap();
            // The stuck waiter and the one behind (the holder took the free
            // lock without a ticket).
            until(|| tickets(m) >= 2);
            // Vary when the holder lets go relative to the waiters.
            Jitter::new(round).pause();
            drop(held);
            if fate == Fate::Kill {
                kill(stuck);
                succeeds(behind);
                assert_eq!(finishes(move || *m.lock()), 10);
            } else {
                // The process behind gets in while the stuck one is stopped
                // (its turn is revoked); resumed, it queues again.
                succeeds(behind);
                assert!(finish(stuck).success());
                assert_eq!(finishes(move || *m.lock()), 11);
            }
        }
    }
}

#[test]
fn ticket_lock_counts_exactly_while_children_are_stopped_at_random() {
    const CHILDREN: usize = 3;
    let per_child: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    let m: &'static SharedBox<TicketMutex<u64>> =
        Box::leak(Box::new(SharedBox::new(TicketMutex::new(0)).unwrap()));
    let done: &'static SharedBox<AtomicU32> =
        Box::leak(Box::new(SharedBox::new(AtomicU32::new(0)).unwrap()));
    let children: Vec<ForkedChild> = (0..CHILDREN)
        .map(|_| {
            fork_child(move || {
                for _ in 0..per_child {
                    *m.lock() += 1; // a non-atomic add: overlap would lose counts
                }
                done.fetch_add(1, SeqCst);
                0
            })
            .unwrap()
        })
        .collect();
    let mut jitter = Jitter::new(7);
    let mut stops = 0;
    while done.load(SeqCst) < CHILDREN as u32 && stops < 300 {
        let victim = &children[jitter.below(CHILDREN as u64) as usize];
        jitter.pause();
        victim.kill(Signal::STOP).unwrap();
        // Stopped as a holder, a waiter, or between; now and then long enough
        // for the waiters behind a stopped waiter to revoke its turn.
        if stops % 10 == 9 {
            std::thread::sleep(Duration::from_millis(30));
        } else {
            jitter.pause();
        }
        victim.kill(Signal::CONT).unwrap();
        stops += 1;
    }
    for child in children {
        succeeds(child);
    }
    assert_eq!(finishes(move || *m.lock()), CHILDREN as u64 * per_child);
}

// ---- RwLock: a writer that dies or stops while waiting ----

#[test]
fn rwlock_writer_stopped_or_killed_while_waiting_does_not_lock_readers_out() {
    for fate in [Fate::Kill, Fate::Resume] {
        let rw: &'static SharedBox<RwLock<u64>> =
            Box::leak(Box::new(SharedBox::new(RwLock::new(0)).unwrap()));
        let reading = rw.read();
        let writer = fork_child(|| {
            stop_at(Point::RwWriterWaiting);
            *rw.write() += 1;
            0
        })
        .unwrap();
        wait_until_stopped(&writer);
        // SAFETY: only reads the raw lock's state.
        assert!(unsafe { rw.raw() }.is_writer_waiting());
        // New readers, in other processes and here, get in past the stale
        // announcement (the reader lock above is still held).
        let reader = fork_child(|| {
            let g = rw.read();
            (*g != 0) as i32
        })
        .unwrap();
        succeeds(reader);
        assert_eq!(finishes(move || *rw.read()), 0);
        drop(reading);
        if fate == Fate::Kill {
            kill(writer);
            assert!(rw.write_with(Until::after(WATCHDOG)).is_some());
        } else {
            assert!(finish(writer).success());
            assert_eq!(*rw.read(), 1);
        }
    }
}

// ---- RobustMutex and SharedValue: a holder that dies ----

type Robust = RobustMutex<[u64; 2], ThreadLiveness, FutexPark>;

fn robust() -> &'static SharedBox<Robust> {
    Box::leak(Box::new(
        SharedBox::new(RobustMutex::new([0, 0], ThreadLiveness, FutexPark)).unwrap(),
    ))
}

/// A child that takes the lock and moves one unit from `[1]` to `[0]` (the
/// invariant: the sum stays 0), stopping at `point` on the way if given.
fn transfer(m: &'static SharedBox<Robust>, point: Option<Point>) -> ForkedChild {
    fork_child(move || {
        if let Some(point) = point {
            stop_at(point);
        }
        let mut g = match m.lock() {
            Ok(g) => g,
            Err(RobustError::OwnerDied(mut g)) => {
                g[1] = 0u64.wrapping_sub(g[0]);
                RecoveryGuard::mark_consistent(g)
            }
            Err(_) => return 3,
        };
        g[0] += 1;
        g[1] = g[1].wrapping_sub(1);
        0
    })
    .unwrap()
}

#[test]
fn robust_holder_stopped_then_killed_at_each_point_is_taken_over() {
    // RobustLocked: just took the lock. RobustUnlocking: done, inside unlock
    // before the release. Both times the next `lock` must take over.
    for point in [Point::RobustLocked, Point::RobustUnlocking] {
        let m = robust();
        let holder = transfer(m, Some(point));
        wait_until_stopped(&holder);
        // Alive (stopped): a bounded lock times out, however often it looks.
        assert!(finishes(move || m
            .lock_with(Until::after(Duration::from_millis(50)))
            .is_none()));
        kill(holder);
        let sum = finishes(move || {
            let Err(RobustError::OwnerDied(mut g)) = m.lock() else {
                panic!("the holder's death at {point:?} must be reported");
            };
            let sum = g[0].wrapping_add(g[1]);
            g[1] = 0u64.wrapping_sub(g[0]);
            drop(RecoveryGuard::mark_consistent(g));
            sum
        });
        if point == Point::RobustUnlocking {
            assert_eq!(sum, 0, "it had finished its update");
        }
        let g = m.lock().expect("repaired");
        assert_eq!(g[0].wrapping_add(g[1]), 0);
    }
}

#[test]
fn robust_waiter_killed_while_parked_and_holder_killed_after() {
    let m = robust();
    let holder = transfer(m, Some(Point::RobustLocked));
    wait_until_stopped(&holder);
    // A waiter parks (flagging itself on the lock word) and is killed there.
    let waiter = transfer(m, Some(Point::RobustWaiting));
    wait_until_stopped(&waiter);
    kill(waiter);
    // Another waiter sleeps in the kernel meanwhile; when the holder dies it
    // takes over (no one is left to wake it: its own recheck finds the death).
    let survivor = transfer(m, None);
    kill(holder);
    succeeds(survivor);
    let g = finishes(move || m.lock().map(|g| *g).map_err(|e| e.to_string()));
    let g = g.expect("the survivor repaired and marked the data consistent");
    assert_eq!(g[0].wrapping_add(g[1]), 0);
    assert_eq!(g[0], 1, "only the survivor's transfer completed");
}

#[test]
fn shared_value_counts_every_finished_update_while_children_are_killed_at_random() {
    // Children add 1 in a loop and count their finished updates; the parent
    // kills them at random instants (inside the lock, parked, or outside).
    // Nobody may hang, and the value is exactly the finished updates, plus at
    // most one per killed child (killed after its update, before counting it).
    const CHILDREN: usize = 4;
    let value: &'static SharedValue<u64> = Box::leak(Box::new(SharedValue::new(0).unwrap()));
    let finished: &'static SharedBox<[AtomicU64; CHILDREN]> =
        Box::leak(Box::new(SharedBox::new(Default::default()).unwrap()));
    let mut jitter = Jitter::new(99);
    let mut killed = 0;
    for round in 0..if cfg!(debug_assertions) { 4 } else { 10 } {
        let children: Vec<ForkedChild> = (0..CHILDREN)
            .map(|c| {
                fork_child(move || {
                    for _ in 0..20_000 {
                        value.update(|v| v + 1);
                        finished[c].fetch_add(1, SeqCst);
                    }
                    0
                })
                .unwrap()
            })
            .collect();
        for (c, mut child) in children.into_iter().enumerate() {
            if (c + round) % 2 == 0 {
                jitter.pause();
                // It may have finished already; either way it is reaped.
                child.kill(Signal::KILL).unwrap();
                child
                    .wait_timeout(WATCHDOG)
                    .unwrap()
                    .expect("watchdog: reaping");
                killed += 1;
            } else {
                succeeds(child);
            }
        }
    }
    let counted: u64 = finished.iter().map(|f| f.load(SeqCst)).sum();
    let total = finishes(move || value.get());
    assert!(
        (counted..=counted + killed).contains(&total),
        "value {total}, counted {counted}, killed {killed}"
    );
}

// ---- Signals: bounded waits across processes end by their deadline ----

#[test]
fn bounded_signal_waits_in_a_child_end_by_their_deadline() {
    let sem: &'static SharedBox<Semaphore<FutexPark>> = Box::leak(Box::new(
        SharedBox::new(Semaphore::with_park(0, FutexPark)).unwrap(),
    ));
    let event: &'static SharedBox<Event<FutexPark>> = Box::leak(Box::new(
        SharedBox::new(Event::with_park(FutexPark)).unwrap(),
    ));
    let child = fork_child(|| {
        let short = || Until::after(Duration::from_millis(30));
        // Nobody releases or sets these: only the deadline ends the waits.
        let timed_out = sem.acquire_with(short()).is_none() && !event.wait_with(short());
        (!timed_out) as i32
    })
    .unwrap();
    succeeds(child);
}

#[test]
fn ticket_lock_with_gives_up_on_a_stopped_holder() {
    let m: &'static SharedBox<TicketMutex<u64>> =
        Box::leak(Box::new(SharedBox::new(TicketMutex::new(0)).unwrap()));
    let holder = fork_child(|| {
        let mut g = m.lock();
        support::stop_self(); // inside the critical section
        *g += 1;
        0
    })
    .unwrap();
    wait_until_stopped(&holder);
    assert!(finishes(move || m
        .lock_with(Until::after(Duration::from_millis(30)))
        .is_none()));
    assert!(finish(holder).success());
    assert_eq!(*m.lock(), 1);
}
