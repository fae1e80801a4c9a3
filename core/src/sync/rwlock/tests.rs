//! A writer that announced itself and then stopped renewing (it died, or is
//! stopped) must not lock readers out. The cross-process versions, with real
//! killed and stopped writers, are in the workspace's `tests/shared_sync.rs`.

use super::*;
use crate::sync::Spins;
use crate::sync::tests::finishes;
use std::sync::Arc;

/// The state a writer leaves when it dies waiting: announced, not inside.
fn with_dead_writer() -> RawRwLock {
    let lock = RawRwLock::new();
    lock.state.store(ANNOUNCE_ONE, Ordering::Relaxed);
    lock
}

#[test]
fn a_dead_waiting_writer_holds_readers_back_only_until_its_lease_expires() {
    let lock = Arc::new(with_dead_writer());
    assert!(lock.is_writer_waiting());
    assert!(
        !lock.try_read(),
        "readers stand aside for an announced writer"
    );
    assert!(
        !lock.read_with(Spins(3)),
        "not enough patience to expire it"
    );
    let l = lock.clone();
    finishes(move || l.read());
    assert!(
        !lock.is_writer_waiting(),
        "the first reader through cleared it"
    );
    assert!(lock.try_read(), "later readers enter at once");
    // SAFETY: two read locks are held, taken just above.
    unsafe {
        lock.unlock_read();
        lock.unlock_read();
    }
    assert!(lock.try_write());
}

#[test]
fn a_writer_that_gives_up_withdraws_its_announcement() {
    let lock = RawRwLock::new();
    assert!(lock.try_read());
    assert!(!lock.write_with(Spins(10)));
    assert!(!lock.is_writer_waiting());
    assert!(lock.try_read());
}

#[test]
fn a_waiting_writer_keeps_its_preference_while_it_renews() {
    // A reader is inside; a live writer waits and renews. A new reader with
    // patience well short of the expiry must not get in; once the first reader
    // leaves, the writer does.
    let lock = Arc::new(RawRwLock::new());
    assert!(lock.try_read());
    let writer = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            lock.write();
            // SAFETY: the write lock is held.
            unsafe { lock.unlock_write() };
        })
    };
    while !lock.is_writer_waiting() {
        std::thread::yield_now();
    }
    assert!(!lock.read_with(Spins(EXPIRE_AFTER / 4)));
    // SAFETY: the read lock taken at the top.
    unsafe { lock.unlock_read() };
    finishes(move || writer.join().unwrap());
    assert!(!lock.is_locked());
}

#[test]
fn the_lease_counter_cycles_through_non_zero_values() {
    let mut state = READER * 3;
    let mut seen = std::vec::Vec::new();
    for _ in 0..6 {
        state = renewed(state);
        assert_ne!(state & ANNOUNCE, 0);
        assert_eq!(
            state & !ANNOUNCE,
            READER * 3,
            "renewal touches only the lease"
        );
        seen.push(state & ANNOUNCE);
    }
    assert_eq!(seen, [2, 4, 6, 2, 4, 6]);
}

#[test]
fn readers_never_expire_a_writer_that_holds_the_lock() {
    // Only an *announcement* expires; a writer inside (with or without another
    // writer announced behind it) keeps every reader out however long they wait.
    for state in [WRITER, WRITER | ANNOUNCE_ONE] {
        let lock = RawRwLock::new();
        lock.state.store(state, Ordering::Relaxed);
        assert!(!lock.read_with(Spins(4 * EXPIRE_AFTER)));
        assert_eq!(lock.state.load(Ordering::Relaxed), state);
    }
}

/// An unlock in a mode nobody holds is refused and changes nothing: the
/// state word is untouched and the lock works as before.
#[test]
fn checked_unlocks_of_a_mode_nobody_holds_change_nothing() {
    let lock = RawRwLock::new();
    // SAFETY: each unlock below is of a mode nobody holds, or of a hold taken
    // just before it (as its comment says).
    unsafe {
        assert!(!lock.unlock_read_checked());
        assert!(!lock.unlock_write_checked());
        assert_eq!(lock.state.load(Ordering::Relaxed), 0);

        assert!(lock.try_write());
        assert!(!lock.unlock_read_checked(), "a writer is not a reader");
        assert!(lock.is_locked_write());
        assert!(lock.unlock_write_checked()); // held: try_write above
        assert!(!lock.unlock_write_checked());

        assert!(lock.try_read());
        assert!(lock.try_read());
        assert!(!lock.unlock_write_checked(), "readers are not a writer");
        assert!(lock.unlock_read_checked()); // held: two try_reads above
        assert!(lock.unlock_read_checked());
        assert!(!lock.unlock_read_checked());
        assert_eq!(lock.state.load(Ordering::Relaxed), 0);
    }
    // A waiting writer's announcement survives a refused unlock.
    lock.state.store(ANNOUNCE_ONE, Ordering::Relaxed);
    // SAFETY: nobody holds the lock.
    unsafe {
        assert!(!lock.unlock_read_checked());
        assert!(!lock.unlock_write_checked());
    }
    assert_eq!(lock.state.load(Ordering::Relaxed), ANNOUNCE_ONE);
    assert!(lock.try_write());
}

/// Readers and writers that leave through the checked unlocks keep exclusion:
/// every writer's increment is counted, and readers never see a half-write.
#[test]
fn checked_unlocks_keep_exclusion() {
    const THREADS: usize = 4;
    const EACH: usize = 300;
    struct Shared(core::cell::UnsafeCell<[usize; 2]>);
    // SAFETY: the pair is written only under the write lock, read under a
    // read lock.
    unsafe impl Sync for Shared {}
    let lock = RawRwLock::new();
    let pair = Shared(core::cell::UnsafeCell::new([0, 0]));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (lock, pair) = (&lock, &pair);
            s.spawn(move || {
                for i in 0..EACH {
                    if (t + i) % 2 == 0 {
                        lock.write();
                        // SAFETY: the write lock is held.
                        unsafe {
                            (*pair.0.get())[0] += 1;
                            (*pair.0.get())[1] += 1;
                            assert!(lock.unlock_write_checked());
                        }
                    } else {
                        lock.read();
                        // SAFETY: a read lock is held.
                        unsafe {
                            let [a, b] = *pair.0.get();
                            assert_eq!(a, b);
                            assert!(lock.unlock_read_checked());
                        }
                    }
                }
            });
        }
    });
    let writes = (0..THREADS)
        .map(|t| (0..EACH).filter(|i| (t + i) % 2 == 0).count())
        .sum::<usize>();
    assert_eq!(pair.0.into_inner(), [writes, writes]);
    assert!(!lock.is_locked());
}
