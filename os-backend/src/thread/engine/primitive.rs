//! The atomics and waits the engine is written against.
//!
//! Normally these are std's atomics, a spin hint, a thread yield, and a futex
//! to sleep on; under `--cfg loom` they are loom's, so the model checker sees
//! every shared access of the code that ships (the pattern of tokio's
//! `crate::loom` and ply-core's `primitive`). ply-core's queues and semaphore,
//! which the engine also uses, switch to loom through ply-core's own facade.
//!
//! loom models `SeqCst` *fences* but treats `SeqCst` loads, stores and
//! read-modify-writes as acquire/release. So every place where the engine's
//! proof needs a single total order (the two Dekker pairs: sleeping against
//! waking, closing against submitting) uses an explicit `SeqCst` fence, and
//! the model checks exactly the orderings that ship.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, fence};

/// The thread-local storage macro: std's, or loom's (loom runs its threads on
/// one OS thread, so std's would be shared between them).
#[cfg(loom)]
pub(crate) use loom::thread_local;
#[cfg(not(loom))]
pub(crate) use std::thread_local;

/// How idle workers and blocked submitters sleep: a futex; under loom, a
/// [`LoomPark`] that blocks for real, so a lost wake-up is a deadlock loom
/// reports.
#[cfg(not(loom))]
pub(crate) type EnginePark = crate::park::FutexPark;
#[cfg(loom)]
pub(crate) type EnginePark = LoomPark;

/// A new [`EnginePark`].
pub(crate) fn engine_park() -> EnginePark {
    EnginePark::default()
}

/// A pause in a loop that polls another thread's progress: a spin hint, or
/// under loom a yield (loom must switch threads to let the other progress).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Gives the CPU back to the OS scheduler (under loom, to another thread).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// A futex in loom's terms: `wait` blocks on a condition variable while the
/// word holds the expected value; a waker changes the word first, then
/// notifies under the same lock, so the check-then-wait cannot miss it.
#[cfg(loom)]
#[derive(Default)]
pub(crate) struct LoomPark {
    lock: loom::sync::Mutex<()>,
    changed: loom::sync::Condvar,
}

#[cfg(loom)]
impl ply_core::sync::Park for LoomPark {
    fn wait(&self, word: &AtomicU32, expected: u32) {
        let guard = self.lock.lock().unwrap();
        if word.load(std::sync::atomic::Ordering::SeqCst) == expected {
            drop(self.changed.wait(guard).unwrap());
        }
    }

    fn wake_one(&self, _word: &AtomicU32) {
        let _guard = self.lock.lock().unwrap();
        self.changed.notify_one();
    }

    fn wake_all(&self, _word: &AtomicU32) {
        let _guard = self.lock.lock().unwrap();
        self.changed.notify_all();
    }
}
