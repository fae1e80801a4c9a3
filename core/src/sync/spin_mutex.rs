//! [`SpinMutex`]: test-and-test-and-set with graded backoff.
//!
//! # Algorithm
//!
//! Test-and-test-and-set (Rudolph & Segall, 1984): a waiter spins on a plain load
//! of the lock word — which stays in its cache, shared, costing the holder
//! nothing — and only tries the atomic swap when it sees the lock free. Between
//! tries it backs off exponentially ([`Backoff`](crossbeam_utils::Backoff)), so
//! under contention the waiters do not all stampede the line the moment it is
//! released.
//!
//! Why not `spin::Mutex`: it retries its compare-and-swap with a fixed relax hint
//! and no growing backoff, which makes two contending cores trade the line on
//! every attempt. The guard types come from `lock_api`, as in parking_lot.
//!
//! # Across processes
//!
//! One `AtomicBool`: works in `MAP_SHARED` memory. A process that dies holding
//! the lock leaves it held (there is no owner to detect); use the bounded
//! [`lock_with`](crate::sync::LockWith::lock_with) where that matters.

use crate::primitive::{AtomicBool, Backoff, Ordering};
use crate::sync::Patience;
use crate::sync::patience::Forever;

/// The raw lock behind [`SpinMutex`]: one `AtomicBool`, TTAS with backoff.
///
/// # Example
///
/// ```
/// use ply_core::sync::RawSpinMutex;
///
/// let raw = RawSpinMutex::new();
/// raw.lock();
/// assert!(!raw.try_lock());
/// // SAFETY: locked just above by this thread.
/// unsafe { raw.unlock() };
/// assert!(raw.try_lock());
/// ```
#[derive(Debug)]
pub struct RawSpinMutex {
    locked: AtomicBool,
}

impl RawSpinMutex {
    /// An unlocked lock.
    ///
    /// # Example
    ///
    /// ```
    /// static LOCK: ply_core::sync::RawSpinMutex = ply_core::sync::RawSpinMutex::new();
    /// assert!(!LOCK.is_locked());
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RawSpinMutex {
            locked: AtomicBool::new(false),
        }
    }

    /// An unlocked lock (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        RawSpinMutex {
            locked: AtomicBool::new(false),
        }
    }

    /// Takes the lock if it is free.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawSpinMutex::new();
    /// assert!(raw.try_lock());
    /// assert!(!raw.try_lock());
    /// ```
    #[inline]
    pub fn try_lock(&self) -> bool {
        // Acquire on success: the previous holder's writes (published by the
        // Release in `unlock`) are visible inside the critical section.
        !self.locked.load(Ordering::Relaxed)
            && self
                .locked
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Takes the lock, spinning with backoff while it is held.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawSpinMutex::new();
    /// raw.lock();
    /// assert!(raw.is_locked());
    /// ```
    #[inline]
    pub fn lock(&self) {
        // Fast path: one CAS, no test first (the lock is usually free; the
        // extra load only pays off for a waiter, which `lock_contended` is).
        // Acquire on success: as in `try_lock`.
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended(&mut Forever);
        }
    }

    /// Takes the lock unless `patience` runs out first; `true` if taken.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{RawSpinMutex, Spins};
    ///
    /// let raw = RawSpinMutex::new();
    /// raw.lock();
    /// assert!(!raw.lock_with(Spins(10)));
    /// ```
    pub fn lock_with(&self, mut patience: impl Patience) -> bool {
        self.try_lock() || self.lock_contended(&mut patience)
    }

    #[cold]
    fn lock_contended(&self, patience: &mut impl Patience) -> bool {
        let backoff = Backoff::new();
        loop {
            // Test: wait on a plain load, which does not take the line away from
            // the holder. Relaxed: the successful CAS below does the acquiring.
            while self.locked.load(Ordering::Relaxed) {
                if !patience.keep_waiting() {
                    return false;
                }
                backoff.snooze();
            }
            // ...and set.
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
            if !patience.keep_waiting() {
                return false;
            }
            backoff.spin();
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The lock must be held, by this thread (or by this process, if shared), and
    /// no guard of it may be used afterwards.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawSpinMutex::new();
    /// raw.lock();
    /// // SAFETY: locked just above.
    /// unsafe { raw.unlock() };
    /// assert!(!raw.is_locked());
    /// ```
    #[inline]
    pub unsafe fn unlock(&self) {
        // Release: publishes the critical section's writes to the next holder.
        self.locked.store(false, Ordering::Release);
    }

    /// Whether the lock is held (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_core::sync::RawSpinMutex::new().is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

#[cfg(not(loom))]
impl Default for RawSpinMutex {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(loom))]
// SAFETY: `try_lock`/`lock` succeed only for one holder at a time (the CAS from
// false to true), and `unlock` is only called by that holder (lock_api's guards
// guarantee it), so this is a mutual-exclusion lock as `RawMutex` requires.
unsafe impl lock_api::RawMutex for RawSpinMutex {
    #[allow(clippy::declare_interior_mutable_const)] // lock_api's required pattern
    const INIT: Self = Self::new();
    // Not `Send`, as std's and parking_lot's guards: a guard is this thread's
    // hold on the lock. Sent to a forked child, it would be held twice: by
    // the child, and by the parent's copy, which unlocks when dropped.
    type GuardMarker = lock_api::GuardNoSend;

    #[inline]
    fn lock(&self) {
        RawSpinMutex::lock(self);
    }

    #[inline]
    fn try_lock(&self) -> bool {
        RawSpinMutex::try_lock(self)
    }

    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract: lock_api calls this only for the holder.
        unsafe { RawSpinMutex::unlock(self) }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        RawSpinMutex::is_locked(self)
    }
}

/// A spin lock protecting a `T`: [`RawSpinMutex`] with `lock_api`'s guards.
///
/// # Example
///
/// ```
/// use ply_core::sync::SpinMutex;
///
/// static COUNTER: SpinMutex<u64> = SpinMutex::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             for _ in 0..1000 {
///                 *COUNTER.lock() += 1;
///             }
///         });
///     }
/// });
/// assert_eq!(*COUNTER.lock(), 4000);
/// ```
#[cfg(not(loom))]
pub type SpinMutex<T> = lock_api::Mutex<RawSpinMutex, T>;

/// The guard of a [`SpinMutex`].
#[cfg(not(loom))]
pub type SpinMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawSpinMutex, T>;
