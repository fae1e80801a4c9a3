//! A lock (or a permit) the parent holds across a fork stays exclusive: the
//! child sees it taken, waits for it, and gets it only once the parent lets
//! go; for every lock ply offers for shared memory. (Handing the parent's
//! guard itself to the child, which would let both in, is refused at
//! compile time: `fork_claims.rs`.)
//!
//! Each lock is checked three ways while the parent holds it: a child's
//! non-blocking attempt fails; a child's blocking `lock` has not returned
//! after the parent has waited for it (the parent's wait is an observation
//! that passes however slow the machine is: the child cannot get in); and,
//! once the parent releases, that child gets in and counts, exactly once.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use common::{assert_no_descendants, serial, watchdog};
use ply_core::sync::{RobustMutex, RwLock, Semaphore, SpinMutex, Spins, TicketMutex};
use ply_os::fork::{ScopedChild, scope};
use ply_os::ipc::SharedArray;
use ply_os::liveness::ThreadLiveness;
use ply_os::park::FutexPark;
use ply_os::shm::SharedBox;

const WATCHDOG: Duration = Duration::from_secs(60);
/// How long the parent watches a blocked child while holding the lock.
const HOLD: Duration = Duration::from_millis(100);

fn succeeds(mut child: ScopedChild<'_>) {
    let exit = child
        .wait_timeout(WATCHDOG)
        .unwrap()
        .expect("watchdog: child did not finish");
    assert!(exit.success(), "child {exit}");
}

/// Holds the lock through `hold` while two children run: `attempt` (true
/// if it got in: it must not) and `enter` (blocks, then counts in
/// `entered`). `enter` must not finish while the lock is held, and must
/// count once after.
fn held_across_fork<G>(
    name: &str,
    hold: impl FnOnce() -> G,
    attempt: impl Fn() -> bool + Sync,
    enter: impl Fn() + Sync,
) {
    let entered = SharedBox::new(AtomicU64::new(0)).unwrap();
    scope(|s| {
        let guard = hold();
        let tried = s.fork_child(|| if attempt() { 1 } else { 0 }).unwrap();
        succeeds(tried);
        let mut blocked = s
            .fork_child(|| {
                enter();
                entered.fetch_add(1, SeqCst);
                0
            })
            .unwrap();
        assert_eq!(
            blocked.wait_timeout(HOLD).unwrap(),
            None,
            "{name}: the child got in while the parent held it"
        );
        assert_eq!(entered.load(SeqCst), 0, "{name}");
        drop(guard);
        succeeds(blocked);
    });
    assert_eq!(entered.load(SeqCst), 1, "{name}");
}

type Robust = RobustMutex<u64, ThreadLiveness, FutexPark>;

#[test]
fn a_lock_held_across_a_fork_stays_exclusive() {
    let _serial = serial();
    let _dog = watchdog("held across fork", Duration::from_secs(120));

    let spin = SharedBox::new(SpinMutex::new(0u64)).unwrap();
    held_across_fork(
        "SpinMutex",
        || spin.lock(),
        || spin.try_lock().is_some(),
        || *spin.lock() += 1,
    );
    assert_eq!(*spin.lock(), 1);

    let ticket = SharedBox::new(TicketMutex::new(0u64)).unwrap();
    held_across_fork(
        "TicketMutex",
        || ticket.lock(),
        || ticket.try_lock().is_some(),
        || *ticket.lock() += 1,
    );
    assert_eq!(*ticket.lock(), 1);

    let rw = SharedBox::new(RwLock::new(0u64)).unwrap();
    held_across_fork(
        "RwLock (write held)",
        || rw.write(),
        || rw.try_read().is_some() || rw.try_write().is_some(),
        || *rw.write() += 1,
    );
    held_across_fork(
        "RwLock (read held)",
        || rw.read(),
        || rw.try_write().is_some() || rw.try_read().is_none(),
        || *rw.write() += 1,
    );
    assert_eq!(*rw.read(), 2);

    let robust = SharedBox::new(Robust::new(0, ThreadLiveness, FutexPark)).unwrap();
    held_across_fork(
        "RobustMutex",
        || robust.lock().expect("nobody died"),
        // A live holder (the parent) is waited for, never taken as dead.
        || robust.lock_with(Spins(10_000)).is_some(),
        || *robust.lock().expect("the holder lives") += 1,
    );
    assert_eq!(*robust.lock().unwrap(), 1);

    let array = SharedArray::new(1, 0u64).unwrap();
    held_across_fork(
        "SharedArray",
        || array.lock().expect("nobody died"),
        || array.lock_timeout(Duration::from_millis(1)).is_some(),
        || array.lock().expect("the holder lives")[0] += 1,
    );
    assert_eq!(array.lock().unwrap()[0], 1);

    let permits = SharedBox::new(Semaphore::with_park(1, FutexPark)).unwrap();
    held_across_fork(
        "Semaphore",
        || permits.acquire(),
        || permits.try_acquire().is_some(),
        || permits.acquire().forget(),
    );
    assert_eq!(permits.available(), 0, "the child kept its permit");

    assert_no_descendants();
}
