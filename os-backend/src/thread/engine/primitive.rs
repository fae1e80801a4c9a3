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

use std::time::Duration;

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

/// How idle workers, blocked submitters and joiners sleep: a private futex;
/// under loom, a [`LoomPark`] that blocks for real, so a lost wake-up is a
/// deadlock loom reports.
#[cfg(not(loom))]
pub(crate) type EnginePark = PrivateFutex;
#[cfg(loom)]
pub(crate) type EnginePark = LoomPark;

/// A new [`EnginePark`].
pub(crate) fn engine_park() -> EnginePark {
    EnginePark::default()
}

/// ply-core's `Park` seam on a *private* Linux futex (`FUTEX_PRIVATE_FLAG`).
/// The pool's words never leave the process, and a private futex is keyed by
/// address alone, without the page lookup (`get_user_pages`) a shared one
/// needs on every wait and wake — which showed in profiles of loaded runs.
/// (`crate::park::FutexPark` is the shared one, for words in shared memory.)
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PrivateFutex;

#[cfg(not(loom))]
impl PrivateFutex {
    /// Sleeps while `*word == expected`, for at most `timeout` (`None`:
    /// without limit). May return early (a wake-up, a signal, the word
    /// already differing); callers re-check.
    pub(crate) fn sleep(&self, word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
        // SAFETY: the pointer comes from a live, aligned `&AtomicU32`, which the
        // kernel reads atomically; `ts_ptr` is null or points at `ts`, alive
        // until the call returns. Errors (EAGAIN, EINTR, ETIMEDOUT) are early
        // returns, which callers allow for.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                ts_ptr,
            );
        }
    }

    fn wake(word: &AtomicU32, count: i32) {
        // SAFETY: FUTEX_WAKE only uses the address as a key (it never writes
        // through it); the pointer comes from a live `&AtomicU32`.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                count,
            );
        }
    }
}

#[cfg(not(loom))]
impl ply_core::sync::Park for PrivateFutex {
    fn wait_timeout(&self, word: &AtomicU32, expected: u32, timeout: ply_core::sync::Timeout) {
        let timeout = match timeout {
            ply_core::sync::Timeout::After(d) => Some(d),
            ply_core::sync::Timeout::Never => None,
        };
        self.sleep(word, expected, timeout);
    }

    fn wake_one(&self, word: &AtomicU32) {
        Self::wake(word, 1);
    }

    fn wake_all(&self, word: &AtomicU32) {
        Self::wake(word, i32::MAX);
    }
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
/// notifies under the same lock, so the check-then-wait cannot miss it. One
/// condition variable may serve many words, so every wake wakes all waiters
/// (the `Park` contract allows more wake-ups than asked for).
#[cfg(loom)]
#[derive(Default)]
pub(crate) struct LoomPark {
    lock: loom::sync::Mutex<()>,
    changed: loom::sync::Condvar,
}

#[cfg(loom)]
impl LoomPark {
    /// As `PrivateFutex::sleep`; loom has no clock, so it waits
    /// without limit (the models use no timeouts).
    pub(crate) fn sleep(&self, word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
        let guard = self.lock.lock().unwrap();
        if word.load(std::sync::atomic::Ordering::SeqCst) == expected {
            drop(self.changed.wait(guard).unwrap());
        }
    }
}

#[cfg(loom)]
impl ply_core::sync::Park for LoomPark {
    fn wait_timeout(&self, word: &AtomicU32, expected: u32, timeout: ply_core::sync::Timeout) {
        let timeout = match timeout {
            ply_core::sync::Timeout::After(d) => Some(d),
            ply_core::sync::Timeout::Never => None,
        };
        self.sleep(word, expected, timeout);
    }

    fn wake_one(&self, _word: &AtomicU32) {
        let _guard = self.lock.lock().unwrap();
        self.changed.notify_all();
    }

    fn wake_all(&self, _word: &AtomicU32) {
        let _guard = self.lock.lock().unwrap();
        self.changed.notify_all();
    }
}

/// `UnsafeCell` with loom's closure-based access (`with`, `with_mut`), so loom
/// can track every access; outside loom a plain `UnsafeCell` underneath.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// A `std::cell::UnsafeCell` with loom's access API.
#[cfg(not(loom))]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline]
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a shared raw pointer to the contents.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a mutable raw pointer to the contents.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
