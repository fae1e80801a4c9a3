//! The atomics, cells and spin hints the algorithms are written against.
//!
//! Normally these are `core`'s types (and `crossbeam-utils`' `Backoff`); under
//! `--cfg loom` they are loom's, so the model checker sees every shared access. The
//! pattern is tokio's `loom` module and concurrent-queue's `sync.rs`.
//!
//! loom's `UnsafeCell` has no `get()`: access goes through `with`/`with_mut`
//! closures so loom can track it. The non-loom [`UnsafeCell`] here has the same
//! API and compiles to a plain pointer access. It is `#[repr(transparent)]`, so an
//! array of them can be viewed as a slice of the inner type (the SPSC chunk API
//! relies on this, and is therefore not built under loom).

#[cfg(all(not(loom), target_has_atomic = "ptr"))]
pub(crate) use core::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicU32, AtomicUsize, Ordering, fence,
};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicU32, AtomicUsize, Ordering, fence,
};
// Without compare-and-swap (thumbv6m), the same API from portable-atomic, whose
// read-modify-write operations run in a critical section.
#[cfg(all(not(loom), not(target_has_atomic = "ptr")))]
pub(crate) use portable_atomic::{
    AtomicBool, AtomicIsize, AtomicU32, AtomicUsize, Ordering, fence,
};

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// A `core::cell::UnsafeCell` with loom's closure-based access API.
#[cfg(not(loom))]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
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

/// Graded waiting for a contended retry loop.
///
/// Outside loom this is `crossbeam_utils::Backoff` (exponential `spin_loop` hints;
/// without `std` its `snooze` also only spins). Under loom every wait must be a
/// `loom::thread::yield_now`, or the model checker would explore an unbounded spin.
#[cfg(not(loom))]
pub(crate) use crossbeam_utils::Backoff;

#[cfg(loom)]
pub(crate) struct Backoff {
    snoozes: core::cell::Cell<u32>,
}

#[cfg(loom)]
impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff {
            snoozes: core::cell::Cell::new(0),
        }
    }
    pub(crate) fn spin(&self) {
        loom::thread::yield_now();
    }
    pub(crate) fn snooze(&self) {
        self.snoozes.set(self.snoozes.get() + 1);
        loom::thread::yield_now();
    }
    /// "Time to park" after two yields, so waits return to their callers.
    pub(crate) fn is_completed(&self) -> bool {
        self.snoozes.get() >= 2
    }
}

/// Marks a point after a `SeqCst` atomic operation.
///
/// loom does not model `SeqCst` on individual loads, stores and read-modify-
/// writes (it treats them as acquire/release), only `SeqCst` fences. Algorithms
/// whose proof assumes sequential consistency call this after each operation, so
/// under loom the fences recreate the single total order that the `SeqCst`
/// operations give real code; outside loom it compiles to nothing.
#[inline(always)]
pub(crate) fn seq_cst_point() {
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// Gives the CPU back to the OS scheduler, where there is one: with the `std`
/// feature or in tests (a yield), under loom (a model yield). Elsewhere, a spin
/// hint. For waits that depend on a thread that may be preempted, such as the
/// next ticket holder of a ticket lock.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(all(not(loom), any(feature = "std", test)))]
    std::thread::yield_now();
    #[cfg(all(not(loom), not(any(feature = "std", test))))]
    core::hint::spin_loop();
}
