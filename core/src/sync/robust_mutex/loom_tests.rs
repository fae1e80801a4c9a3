//! loom models of the robust lock's takeover (run with `--cfg loom`, see
//! `core/tests/loom.rs` for the command). Threads are owners; an owner "dies"
//! by returning while it holds the lock, after which the model's liveness
//! reports it dead (its `dead` flag, set as its very last step, is what the
//! operating system's answer stands for).

use super::*;
use crate::primitive::{AtomicBool, UnsafeCell};
use loom::sync::Arc;
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

loom::thread_local!(static TOKEN: core::cell::Cell<u32> = core::cell::Cell::new(1));

/// Owner 1 is every thread that does not say otherwise; owner 2 dies.
struct ModelLiveness {
    two_is_dead: AtomicBool,
}

// SAFETY: tokens 1 and 2 are non-zero and below 2^31; owner 2 is reported dead
// only after its thread set `two_is_dead` as its last step (Release, paired
// with the Acquire here, so the survivor sees what it wrote).
unsafe impl Liveness for ModelLiveness {
    fn current(&self) -> u32 {
        TOKEN.with(|t| t.get())
    }
    fn is_alive(&self, token: u32) -> bool {
        !(token == 2 && self.two_is_dead.load(Ordering::Acquire))
    }
}

type Shared = (RawRobustMutex<ModelLiveness>, UnsafeCell<u32>);

fn shared() -> Arc<Shared> {
    Arc::new((
        RawRobustMutex::new(
            ModelLiveness {
                two_is_dead: AtomicBool::new(false),
            },
            SpinPark,
        ),
        UnsafeCell::new(0),
    ))
}

fn set(cell: &UnsafeCell<u32>, v: u32) {
    // SAFETY: loom checks that the lock (or the death) orders every access.
    cell.with_mut(|p| unsafe { *p = v });
}

fn get(cell: &UnsafeCell<u32>) -> u32 {
    // SAFETY: as in `set`.
    cell.with(|p| unsafe { *p })
}

/// Owner 2 locks, writes, and dies holding the lock; owner 1 locks meanwhile.
/// Owner 1 either gets the lock first (and owner 2 after it) or takes it over
/// after the death — and then sees owner 2's write — never while owner 2 is
/// inside.
#[test]
fn a_waiter_takes_over_only_after_the_holder_died() {
    model(|| {
        let s = shared();
        let s2 = s.clone();
        let dying = thread::spawn(move || {
            TOKEN.with(|t| t.set(2));
            s2.0.lock().unwrap();
            set(&s2.1, 7);
            s2.0.liveness.two_is_dead.store(true, Ordering::Release);
        });
        match s.0.lock() {
            Ok(()) => {
                set(&s.1, 1);
                // SAFETY: held by this thread.
                unsafe { s.0.unlock() };
                dying.join().unwrap();
            }
            Err(RobustError::OwnerDied(())) => {
                assert_eq!(get(&s.1), 7, "the dead holder's write is visible");
                // SAFETY: held by this thread (taken over).
                unsafe {
                    s.0.mark_consistent();
                    s.0.unlock();
                }
                dying.join().unwrap();
            }
            Err(RobustError::NotRecoverable) => panic!("never marked unrecoverable here"),
        }
    });
}

/// The lock is held by a dead owner; two waiters race to take over. Exactly
/// one is told the owner died; the critical sections never overlap.
#[test]
fn exactly_one_of_two_waiters_takes_over() {
    model(|| {
        let s = shared();
        // Owner 2 took the lock and died before this model starts.
        s.0.word.store(2, Ordering::Relaxed);
        s.0.liveness.two_is_dead.store(true, Ordering::Relaxed);
        let s2 = s.clone();
        let other = thread::spawn(move || {
            let died = s2.0.lock().is_err();
            set(&s2.1, get(&s2.1) + 1);
            // SAFETY: held by this thread.
            unsafe {
                s2.0.mark_consistent();
                s2.0.unlock();
            }
            died
        });
        let died = s.0.lock().is_err();
        set(&s.1, get(&s.1) + 1);
        // SAFETY: held by this thread.
        unsafe {
            s.0.mark_consistent();
            s.0.unlock();
        }
        let other_died = other.join().unwrap();
        assert!(died ^ other_died, "exactly one takeover");
        assert_eq!(get(&s.1), 2);
    });
}
