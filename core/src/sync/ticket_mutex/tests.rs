//! A waiter that never takes its turn (it died, or is stopped) must not wedge
//! the lock. `take_ticket` without `wait_turn` plays a waiter that died inside
//! `lock`. The cross-process versions, with real killed and stopped waiters,
//! are in the workspace's `tests/shared_sync.rs`.

use super::*;
use crate::sync::tests::finishes;
use std::sync::Arc;

/// Takes the lock through a ticket, as a `lock` that had to wait does (a free
/// lock's `lock` takes none); returns the ticket.
fn lock_ticketed(lock: &RawTicketMutex) -> usize {
    let ticket = lock.take_ticket();
    lock.wait_turn(ticket);
    ticket
}

#[test]
fn a_dead_waiter_between_holder_and_next_waiter_is_skipped() {
    let lock = Arc::new(RawTicketMutex::new());
    assert_eq!(lock_ticketed(&lock), 0);
    let dead = lock.take_ticket();
    assert_eq!(dead, 1);
    let waiter = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            lock.lock();
            // SAFETY: locked just above, on this thread.
            unsafe { lock.unlock() };
        })
    };
    while lock.tickets_issued() < 3 {
        std::thread::yield_now();
    }
    // SAFETY: locked at the top by this thread.
    unsafe { lock.unlock() };
    finishes(move || waiter.join().unwrap());
    assert!(!lock.is_locked());
    // The lock works as before: the dead ticket is behind it for good.
    assert!(lock.try_lock());
}

#[test]
fn a_dead_waiter_on_an_idle_lock_is_skipped_by_the_next_lock() {
    let lock = Arc::new(RawTicketMutex::new());
    lock.take_ticket();
    assert!(!lock.try_lock(), "the dead ticket's turn is still open");
    let l = lock.clone();
    finishes(move || {
        l.lock();
        // SAFETY: locked just above, on this thread.
        unsafe { l.unlock() };
    });
    assert!(lock.try_lock());
}

#[test]
fn lock_with_skips_a_dead_waiter_given_patience_but_try_lock_never_does() {
    let lock = Arc::new(RawTicketMutex::new());
    lock.take_ticket();
    for _ in 0..1000 {
        assert!(!lock.try_lock());
    }
    assert!(!lock.lock_with(Spins(3)), "too little patience to revoke");
    let l = lock.clone();
    assert!(finishes(move || l.lock_with(Spins(u32::MAX))));
    assert!(lock.is_locked());
}

#[test]
fn a_waiter_whose_turn_was_revoked_queues_again_and_never_shares_the_lock() {
    // A slow waiter (ticket 1) loses its turn to the waiter behind it (ticket
    // 2), which then holds the lock; the slow one, resuming, must wait for a
    // new turn instead of entering alongside.
    let lock = Arc::new(RawTicketMutex::new());
    lock_ticketed(&lock); // ticket 0
    let slow = lock.take_ticket(); // ticket 1, not waited on yet
    let behind = {
        let lock = lock.clone();
        std::thread::spawn(move || lock.lock()) // ticket 2: will revoke 1
    };
    while lock.tickets_issued() < 3 {
        std::thread::yield_now();
    }
    // SAFETY: ticket 0 is ours.
    unsafe { lock.unlock() };
    finishes(move || behind.join().unwrap());
    assert!(
        lock.is_locked(),
        "ticket 2 holds the lock after revoking ticket 1"
    );
    let resumed = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            lock.wait_turn(slow);
            // SAFETY: `wait_turn` returned: the lock is held by this thread.
            unsafe { lock.unlock() };
        })
    };
    while lock.tickets_issued() < 4 {
        std::thread::yield_now(); // the slow waiter takes ticket 3
    }
    assert!(lock.is_locked());
    // SAFETY: held by ticket 2, whose thread has ended; we release it for it.
    unsafe { lock.unlock() };
    finishes(move || resumed.join().unwrap());
    assert!(!lock.is_locked());
}

#[test]
fn tickets_wrap_around() {
    let lock = RawTicketMutex::new();
    let start = TICKET_MASK - 2;
    lock.next.store(start, Ordering::Relaxed);
    lock.serving.store(open(start), Ordering::Relaxed);
    for round in 0..8 {
        // Alternate the ticketed path and the free lock's unticketed one.
        if round % 2 == 0 {
            lock_ticketed(&lock);
        } else {
            lock.lock();
        }
        assert!(!lock.try_lock());
        // SAFETY: locked just above.
        unsafe { lock.unlock() };
    }
    assert_eq!(lock.tickets_issued(), start + 4);
    assert!(lock.try_lock());
}

#[test]
fn a_free_lock_is_taken_without_a_ticket_and_its_turn_goes_to_the_next_waiter() {
    let lock = Arc::new(RawTicketMutex::new());
    lock.lock();
    assert_eq!(lock.tickets_issued(), 0, "free: no ticket needed");
    assert!(!lock.try_lock());
    let waiter = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            lock.lock();
            // SAFETY: locked just above, on this thread.
            unsafe { lock.unlock() };
        })
    };
    while lock.tickets_issued() < 1 {
        std::thread::yield_now();
    }
    // SAFETY: locked at the top by this thread.
    unsafe { lock.unlock() };
    finishes(move || waiter.join().unwrap());
    // The waiter's ticket 0 was served by the turn the free lock left open: it
    // never had to queue again.
    assert_eq!(lock.tickets_issued(), 1);
    assert!(!lock.is_locked());
    assert!(lock.try_lock());
}

#[test]
fn a_dead_waiter_behind_an_unticketed_holder_is_skipped() {
    let lock = Arc::new(RawTicketMutex::new());
    lock.lock(); // free: no ticket
    let dead = lock.take_ticket();
    assert_eq!(dead, 0, "the turn the holder left open");
    let waiter = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            lock.lock();
            // SAFETY: locked just above, on this thread.
            unsafe { lock.unlock() };
        })
    };
    while lock.tickets_issued() < 2 {
        std::thread::yield_now();
    }
    // SAFETY: locked at the top by this thread.
    unsafe { lock.unlock() };
    finishes(move || waiter.join().unwrap());
    assert!(!lock.is_locked());
    assert!(lock.try_lock());
}

/// An unlock of a free lock, ticketed or not, is refused and changes nothing:
/// the lock is taken, released and handed on by ticket as before.
#[test]
fn unlock_checked_of_a_free_lock_changes_nothing() {
    let lock = RawTicketMutex::new();
    let fresh = (
        lock.next.load(Ordering::Relaxed),
        lock.serving.load(Ordering::Relaxed),
    );
    // SAFETY: nobody holds it.
    assert!(!unsafe { lock.unlock_checked() });
    assert_eq!(
        (
            lock.next.load(Ordering::Relaxed),
            lock.serving.load(Ordering::Relaxed)
        ),
        fresh
    );

    // Held without a ticket, then with one: each unlock is accepted once.
    assert!(lock.try_lock());
    // SAFETY: held (try_lock above).
    assert!(unsafe { lock.unlock_checked() });
    // SAFETY: nobody holds it.
    assert!(!unsafe { lock.unlock_checked() });
    assert_eq!(lock_ticketed(&lock), 0);
    // SAFETY: held (the ticket's turn was claimed).
    assert!(unsafe { lock.unlock_checked() });
    let after = lock.serving.load(Ordering::Relaxed);
    // SAFETY: nobody holds it.
    assert!(!unsafe { lock.unlock_checked() });
    assert_eq!(lock.serving.load(Ordering::Relaxed), after);

    // The next ticket is still served, and try_lock still works.
    assert_eq!(lock_ticketed(&lock), 1);
    // SAFETY: held.
    unsafe { lock.unlock() };
    assert!(lock.try_lock());
    // SAFETY: held.
    unsafe { lock.unlock() };
}

/// Holders that release through `unlock_checked` keep exclusion and FIFO
/// hand-off working: every increment is counted.
#[test]
fn unlock_checked_hands_the_lock_on() {
    const THREADS: usize = 4;
    const EACH: usize = 500;
    let lock = RawTicketMutex::new();
    let count = core::cell::UnsafeCell::new(0usize);
    struct Shared<'a>(&'a core::cell::UnsafeCell<usize>);
    // SAFETY: the counter is only touched under the lock.
    unsafe impl Sync for Shared<'_> {}
    let shared = Shared(&count);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                let shared = &shared;
                for _ in 0..EACH {
                    lock.lock();
                    // SAFETY: the lock is held.
                    unsafe { *shared.0.get() += 1 };
                    // SAFETY: the lock is held (locked above).
                    assert!(unsafe { lock.unlock_checked() });
                }
            });
        }
    });
    assert_eq!(count.into_inner(), THREADS * EACH);
    assert!(!lock.is_locked());
}
