//! Holders that die inside the critical section, played by threads that end
//! while holding the lock (a forgotten guard) and a test liveness that reports
//! their token dead once they have. The cross-process versions, with killed and
//! stopped processes, are in the workspace's `tests/shared_sync.rs`.

use super::*;
use crate::sync::tests::finishes;
use core::cell::Cell;
use core::sync::atomic::{AtomicU32 as StdAtomicU32, Ordering::SeqCst};
use std::string::ToString;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

static NEXT_TOKEN: StdAtomicU32 = StdAtomicU32::new(1);
std::thread_local!(static TOKEN: Cell<u32> = const { Cell::new(0) });

/// Tokens per thread; a token is dead once `bury` has been called with it
/// (which the tests do only after the thread that had it has ended).
#[derive(Default)]
struct TestLiveness {
    dead: Mutex<Vec<u32>>,
    checks: StdAtomicU32,
}

impl TestLiveness {
    fn bury(&self, token: u32) {
        self.dead.lock().unwrap().push(token);
    }
}

// SAFETY: each thread gets a distinct non-zero token below 2^31 (from a global
// counter) and keeps it; a token is reported dead only after `bury`, which the
// tests call once the thread that held it has returned.
unsafe impl Liveness for TestLiveness {
    fn current(&self) -> u32 {
        TOKEN.with(|t| {
            if t.get() == 0 {
                t.set(NEXT_TOKEN.fetch_add(1, SeqCst));
            }
            t.get()
        })
    }
    fn is_alive(&self, token: u32) -> bool {
        self.checks.fetch_add(1, SeqCst);
        !self.dead.lock().unwrap().contains(&token)
    }
}

type Lock<T = [u32; 2]> = RobustMutex<T, TestLiveness>;

fn new_lock() -> Arc<Lock> {
    Arc::new(RobustMutex::new(
        [50, 50],
        TestLiveness::default(),
        SpinPark,
    ))
}

/// Runs `critical` on a new thread that locks, runs it and ends without
/// unlocking (it "dies"); then buries its token.
fn die_holding<T: Send + 'static>(
    lock: &Arc<Lock<T>>,
    critical: impl FnOnce(&mut T) + Send + 'static,
) {
    let l = lock.clone();
    let token = std::thread::spawn(move || {
        let mut guard = l.lock().unwrap();
        critical(&mut guard);
        core::mem::forget(guard);
        l.raw().liveness.current()
    })
    .join()
    .unwrap();
    lock.raw().liveness.bury(token);
}

#[test]
fn exclusion_between_threads() {
    let lock = new_lock();
    let per_thread = if cfg!(miri) { 20 } else { 20_000 };
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..per_thread {
                    let mut g = lock.lock().unwrap();
                    g[0] += 1;
                    g[1] = g[1].wrapping_sub(1);
                }
            });
        }
    });
    let g = lock.lock().unwrap();
    assert_eq!(
        *g,
        [50 + 4 * per_thread, 50u32.wrapping_sub(4 * per_thread)]
    );
}

#[test]
fn a_dead_holder_is_reported_and_the_repaired_lock_works_on() {
    let lock = new_lock();
    die_holding(&lock, |a| a[0] -= 30); // dies before a[1] += 30
    let l = lock.clone();
    finishes(move || {
        let Err(RobustError::OwnerDied(mut g)) = l.lock() else {
            panic!("the death must be reported");
        };
        assert_eq!(*g, [20, 50], "the half-done update is visible");
        g[1] = 80;
        let g = RecoveryGuard::mark_consistent(g);
        assert_eq!(*g, [20, 80]);
    });
    let g = lock.lock().expect("repaired: locks normally again");
    assert_eq!(g[0] + g[1], 100);
}

#[test]
fn a_takeover_not_marked_consistent_makes_the_lock_unrecoverable() {
    let lock = new_lock();
    die_holding(&lock, |_| {});
    let l = lock.clone();
    finishes(move || {
        let err = l.lock().unwrap_err();
        assert!(matches!(err, RobustError::OwnerDied(_)));
        drop(err); // the guard inside unlocks without marking consistent
    });
    for _ in 0..3 {
        assert_eq!(lock.lock().unwrap_err(), RobustError::NotRecoverable);
        assert_eq!(lock.lock_with(Spins(0)).map(|r| r.is_err()), Some(true));
    }
    assert!(!lock.raw().is_locked(), "an unrecoverable lock is not held");
    assert!(lock.raw().is_not_recoverable());
}

#[test]
fn a_holder_that_dies_while_repairing_is_reported_again() {
    let lock = new_lock();
    die_holding(&lock, |_| {});
    // The next holder takes over and dies before marking consistent.
    let l = lock.clone();
    let token = std::thread::spawn(move || {
        let guard = l.lock().unwrap_err().into_owner_died().unwrap();
        core::mem::forget(guard);
        l.raw().liveness.current()
    })
    .join()
    .unwrap();
    lock.raw().liveness.bury(token);
    let l = lock.clone();
    finishes(move || {
        let g = l.lock().unwrap_err().into_owner_died().unwrap();
        drop(RecoveryGuard::mark_consistent(g));
    });
    assert!(lock.lock().is_ok());
}

#[test]
fn a_bounded_wait_times_out_on_a_live_holder_and_checks_liveness_when_it_does() {
    let lock = new_lock();
    let held = lock.lock().unwrap();
    let checks_before = lock.raw().liveness.checks.load(SeqCst);
    let l = lock.clone();
    assert!(finishes(move || l.lock_with(Spins(50)).is_none()));
    assert!(
        lock.raw().liveness.checks.load(SeqCst) > checks_before,
        "the waiter asked whether the holder lives before giving up"
    );
    drop(held);
    assert!(lock.lock_with(Spins(0)).unwrap().is_ok());
}

#[test]
fn try_lock_takes_over_from_a_dead_holder_at_once() {
    let lock = new_lock();
    die_holding(&lock, |_| {});
    let l = lock.clone();
    finishes(move || {
        let Some(Err(RobustError::OwnerDied(g))) = l.lock_with(Spins(0)) else {
            panic!("a dead holder's lock is taken at once");
        };
        drop(RecoveryGuard::mark_consistent(g));
    });
    assert!(lock.lock_with(Spins(0)).unwrap().is_ok());
}

#[test]
fn of_many_waiters_exactly_one_is_told_the_owner_died() {
    let lock = new_lock();
    die_holding(&lock, |a| a[0] = 0);
    let told = StdAtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| match lock.lock() {
                Ok(g) => assert_eq!(g[0] + g[1], 100, "saw the data before repair"),
                Err(RobustError::OwnerDied(mut g)) => {
                    told.fetch_add(1, SeqCst);
                    g[0] = 50;
                    drop(RecoveryGuard::mark_consistent(g));
                }
                Err(e) => panic!("{e}"),
            });
        }
    });
    assert_eq!(told.load(SeqCst), 1);
}

#[test]
fn errors_read_well() {
    let died: RobustError<u8> = RobustError::OwnerDied(1);
    assert_eq!(std::format!("{died:?}"), "OwnerDied(..)");
    assert!(died.to_string().contains("mark it consistent"));
    assert_eq!(RobustError::<u8>::NotRecoverable.into_owner_died(), None);
}

/// A value that records, when dropped, the `char` it holds.
struct Tracked {
    c: char,
    dropped: &'static Mutex<Vec<char>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.lock().unwrap().push(self.c);
    }
}

#[test]
fn reset_overwrites_a_torn_value_without_reading_or_dropping_it() {
    static DROPPED: Mutex<Vec<char>> = Mutex::new(Vec::new());
    let lock = Arc::new(RobustMutex::new(
        Tracked {
            c: 'a',
            dropped: &DROPPED,
        },
        TestLiveness::default(),
        SpinPark,
    ));
    die_holding(&lock, |t| {
        let c = core::ptr::addr_of_mut!(t.c).cast::<u32>();
        // SAFETY: `c` is the 4 bytes of a `char`, written as a `u32` (and
        // never read again as a `char`): 0xD800, a surrogate, is no `char`,
        // as a writer's death can leave a torn one.
        unsafe { c.write(0xD800) };
    });
    let l = lock.clone();
    finishes(move || {
        let Err(RobustError::OwnerDied(g)) = l.lock() else {
            panic!("the death must be reported");
        };
        let g = RecoveryGuard::reset(
            g,
            Tracked {
                c: 'b',
                dropped: &DROPPED,
            },
        );
        assert_eq!(g.c, 'b');
    });
    assert!(
        DROPPED.lock().unwrap().is_empty(),
        "the torn value is neither read nor dropped"
    );
    assert_eq!(lock.lock().expect("reset: locks normally again").c, 'b');
    drop(Arc::into_inner(lock).expect("the last handle"));
    assert_eq!(*DROPPED.lock().unwrap(), ['b']);
}

#[test]
fn a_recovery_guard_dropped_without_reset_makes_the_lock_unrecoverable() {
    let lock: Arc<Lock<Option<char>>> = Arc::new(RobustMutex::new(
        Some('x'),
        TestLiveness::default(),
        SpinPark,
    ));
    die_holding(&lock, |v| *v = None);
    let l = lock.clone();
    finishes(move || {
        let g = l.lock().unwrap_err().into_owner_died().unwrap();
        assert_eq!(std::format!("{g:?}"), "RecoveryGuard { .. }");
    });
    assert_eq!(lock.lock().unwrap_err(), RobustError::NotRecoverable);
}
