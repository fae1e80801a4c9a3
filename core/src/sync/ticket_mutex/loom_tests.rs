//! loom models of revocable turns (run with `--cfg loom`, see `core/tests/loom.rs`
//! for the command). `REVOKE_AFTER` is 1 under loom, so the models explore a
//! live waiter losing its turn to the one behind it as well as a dead one.
//! Each model has at most two threads that wait: loom explores a schedule in
//! which two waiters only yield to each other forever, so three would never end.

use super::*;
use crate::primitive::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

fn bump(cell: &UnsafeCell<u32>) {
    cell.with_mut(|p| {
        // SAFETY: loom checks that the lock orders every access to the cell.
        unsafe { *p += 1 }
    });
}

fn read(cell: &UnsafeCell<u32>) -> u32 {
    // SAFETY: as in `bump`.
    cell.with(|p| unsafe { *p })
}

/// A waiter dies holding ticket 1 while ticket 0 holds the lock; ticket 2 must
/// still get the lock (revoking ticket 1) and see the holder's write.
#[test]
fn a_dead_waiter_does_not_block_the_next() {
    model(|| {
        let shared = Arc::new((RawTicketMutex::new(), UnsafeCell::new(0u32)));
        let holder = shared.0.take_ticket(); // ticket 0 holds the lock
        shared.0.wait_turn(holder);
        shared.0.take_ticket();
        let other = shared.clone();
        let next = thread::spawn(move || {
            other.0.lock();
            bump(&other.1);
            // SAFETY: locked just above by this thread.
            unsafe { other.0.unlock() };
        });
        bump(&shared.1);
        // SAFETY: locked at the top by this thread.
        unsafe { shared.0.unlock() };
        next.join().unwrap();
        assert_eq!(read(&shared.1), 2);
        assert!(!shared.0.is_locked());
    });
}

/// A slow waiter's claim of its turn races the revocation of that turn by
/// the waiter behind it: whichever wins, the two never hold the lock together,
/// and both get it (the loser of the race queues again). The revocation is
/// issued directly (as if `REVOKE_AFTER` yields had passed): under loom a
/// yield lets the other thread run first, so the timed path would never lose
/// to the claim.
#[test]
fn a_slow_waiter_and_its_revoker_never_share_the_lock() {
    model(|| {
        let shared = Arc::new((RawTicketMutex::new(), UnsafeCell::new(0u32)));
        let holder = shared.0.take_ticket(); // 0
        shared.0.wait_turn(holder);
        let slow = shared.0.take_ticket(); // 1
        let behind = shared.0.take_ticket(); // 2
        let other = shared.clone();
        let revoker = thread::spawn(move || {
            other.0.revoke(open(slow)); // only if turn 1 is open and untaken
            other.0.wait_turn(behind);
            bump(&other.1);
            // SAFETY: `wait_turn` returned: this thread holds the lock.
            unsafe { other.0.unlock() };
        });
        bump(&shared.1);
        // SAFETY: ticket 0, taken at the top, holds the lock.
        unsafe { shared.0.unlock() };
        shared.0.wait_turn(slow);
        bump(&shared.1);
        // SAFETY: `wait_turn` returned: this thread holds the lock.
        unsafe { shared.0.unlock() };
        revoker.join().unwrap();
        assert_eq!(read(&shared.1), 3);
        assert!(!shared.0.is_locked());
    });
}

/// A free lock taken without a ticket races a thread that finds it held and
/// takes a ticket: each gets the lock once, never together, and the ticket's
/// turn is served without revocation or requeueing.
#[test]
fn an_unticketed_holder_and_a_ticketed_waiter_take_turns() {
    model(|| {
        let shared = Arc::new((RawTicketMutex::new(), UnsafeCell::new(0u32)));
        let other = shared.clone();
        let waiter = thread::spawn(move || {
            other.0.lock();
            bump(&other.1);
            // SAFETY: locked just above by this thread.
            unsafe { other.0.unlock() };
        });
        shared.0.lock();
        bump(&shared.1);
        // SAFETY: locked just above by this thread.
        unsafe { shared.0.unlock() };
        waiter.join().unwrap();
        assert_eq!(read(&shared.1), 2);
        assert!(!shared.0.is_locked());
        assert!(shared.0.tickets_issued() <= 1, "at most one waited, once");
    });
}

/// Two holders that release with `unlock_checked` (a CAS, where `unlock`
/// stores): both get the lock, never together, and each sees the other's
/// write.
#[test]
fn unlock_checked_publishes_the_critical_section() {
    model(|| {
        let shared = Arc::new((RawTicketMutex::new(), UnsafeCell::new(0u32)));
        let other = shared.clone();
        let t = thread::spawn(move || {
            other.0.lock();
            bump(&other.1);
            // SAFETY: locked just above by this thread.
            assert!(unsafe { other.0.unlock_checked() });
        });
        shared.0.lock();
        bump(&shared.1);
        // SAFETY: locked just above by this thread.
        assert!(unsafe { shared.0.unlock_checked() });
        t.join().unwrap();
        assert_eq!(read(&shared.1), 2);
        assert!(!shared.0.is_locked());
    });
}
