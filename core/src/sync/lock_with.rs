//! [`LockWith`]: bounded locking for every `lock_api` lock.
//!
//! `lock_api`'s `Mutex` and `RwLock` offer `try_lock` and (for clock-aware raw
//! locks) timed variants that need `std::time`. [`LockWith`] adds the `no_std`
//! bounded form: retry until a [`Patience`] runs out. It works for ply's locks
//! and for any other `lock_api` lock (parking_lot's, spin's).

use crate::sync::Patience;

/// Bounded locking: try until `patience` gives up.
///
/// # Example
///
/// Take two locks without risking a deadlock: give up on the second and retry.
///
/// ```
/// use ply_core::sync::{LockWith, SpinMutex, Spins};
///
/// let a = SpinMutex::new(1);
/// let b = SpinMutex::new(2);
/// let sum = loop {
///     let ga = a.lock();
///     if let Some(gb) = b.lock_with(Spins(1000)) {
///         break *ga + *gb;
///     }
///     drop(ga); // back off, let whoever holds `b` finish, and retry
/// };
/// assert_eq!(sum, 3);
/// ```
pub trait LockWith {
    /// The guard a successful lock returns.
    type Guard<'a>
    where
        Self: 'a;

    /// Locks, retrying `try_lock` until `patience` runs out (`None`).
    fn lock_with(&self, patience: impl Patience) -> Option<Self::Guard<'_>>;
}

impl<R: lock_api::RawMutex, T: ?Sized> LockWith for lock_api::Mutex<R, T> {
    type Guard<'a>
        = lock_api::MutexGuard<'a, R, T>
    where
        Self: 'a;

    fn lock_with(&self, mut patience: impl Patience) -> Option<Self::Guard<'_>> {
        loop {
            if let Some(guard) = self.try_lock() {
                return Some(guard);
            }
            if !patience.keep_waiting() {
                return None;
            }
            core::hint::spin_loop();
        }
    }
}

/// Bounded read and write locking for `lock_api` reader-writer locks.
///
/// # Example
///
/// ```
/// use ply_core::sync::{RwLock, RwLockWith, Spins};
///
/// let lock = RwLock::new(0);
/// let reader = lock.read();
/// assert!(lock.write_with(Spins(10)).is_none());
/// drop(reader);
/// assert!(lock.write_with(Spins(10)).is_some());
/// ```
pub trait RwLockWith {
    /// A read guard.
    type ReadGuard<'a>
    where
        Self: 'a;
    /// A write guard.
    type WriteGuard<'a>
    where
        Self: 'a;

    /// Read-locks, retrying until `patience` runs out (`None`).
    fn read_with(&self, patience: impl Patience) -> Option<Self::ReadGuard<'_>>;
    /// Write-locks, retrying until `patience` runs out (`None`).
    fn write_with(&self, patience: impl Patience) -> Option<Self::WriteGuard<'_>>;
}

impl<R: lock_api::RawRwLock, T: ?Sized> RwLockWith for lock_api::RwLock<R, T> {
    type ReadGuard<'a>
        = lock_api::RwLockReadGuard<'a, R, T>
    where
        Self: 'a;
    type WriteGuard<'a>
        = lock_api::RwLockWriteGuard<'a, R, T>
    where
        Self: 'a;

    fn read_with(&self, mut patience: impl Patience) -> Option<Self::ReadGuard<'_>> {
        loop {
            if let Some(guard) = self.try_read() {
                return Some(guard);
            }
            if !patience.keep_waiting() {
                return None;
            }
            core::hint::spin_loop();
        }
    }

    fn write_with(&self, mut patience: impl Patience) -> Option<Self::WriteGuard<'_>> {
        loop {
            if let Some(guard) = self.try_write() {
                return Some(guard);
            }
            if !patience.keep_waiting() {
                return None;
            }
            core::hint::spin_loop();
        }
    }
}
