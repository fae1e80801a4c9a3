//! loom models of the writer's announcement lease (run with `--cfg loom`, see
//! `core/tests/loom.rs` for the command). `EXPIRE_AFTER` is 1 under loom: a reader expires an announcement it saw
//! unchanged on two polls in a row, so the expiry races everything.

use super::*;
use crate::primitive::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// A writer died after announcing itself. A reader and a live writer then
/// race: the reader may expire the stale announcement while the live writer
/// renews it; both must get in, never together, and the reader sees either
/// nothing or the whole write.
#[test]
fn a_dead_writers_announcement_never_blocks_a_reader_or_breaks_exclusion() {
    model(|| {
        let shared = Arc::new((RawRwLock::new(), UnsafeCell::new(0u32)));
        shared.0.state.store(ANNOUNCE_ONE, Ordering::Relaxed);
        let other = shared.clone();
        let writer = thread::spawn(move || {
            other.0.write();
            // SAFETY: loom checks the lock orders this write.
            other.1.with_mut(|p| unsafe { *p = 7 });
            // SAFETY: the write lock is held.
            unsafe { other.0.unlock_write() };
        });
        shared.0.read();
        // SAFETY: loom checks the lock orders this read.
        let seen = shared.1.with(|p| unsafe { *p });
        assert!(seen == 0 || seen == 7);
        // SAFETY: the read lock is held.
        unsafe { shared.0.unlock_read() };
        writer.join().unwrap();
        assert!(!shared.0.is_locked());
    });
}

/// A reader and a writer that leave through the checked unlocks (a CAS loop
/// for the reader): never inside together, and the reader sees either
/// nothing or the whole write.
#[test]
fn checked_unlocks_keep_exclusion() {
    model(|| {
        let shared = Arc::new((RawRwLock::new(), UnsafeCell::new(0u32)));
        let other = shared.clone();
        let writer = thread::spawn(move || {
            other.0.write();
            // SAFETY: loom checks the lock orders this write.
            other.1.with_mut(|p| unsafe { *p = 7 });
            // SAFETY: the write lock is held.
            assert!(unsafe { other.0.unlock_write_checked() });
        });
        shared.0.read();
        // SAFETY: loom checks the lock orders this read.
        let seen = shared.1.with(|p| unsafe { *p });
        assert!(seen == 0 || seen == 7);
        // SAFETY: the read lock is held.
        assert!(unsafe { shared.0.unlock_read_checked() });
        writer.join().unwrap();
        assert!(!shared.0.is_locked());
    });
}
