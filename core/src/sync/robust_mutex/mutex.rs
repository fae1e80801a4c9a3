//! [`RobustMutex`] and [`RobustGuard`]: the raw robust lock with data and an
//! RAII guard, whose `lock` returns the robust outcome (see the parent module).

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use super::{RawRobustMutex, RecoveryGuard, RobustError};
use crate::sync::patience::Forever;
use crate::sync::{Liveness, Park, Patience, SpinPark};

/// A lock for data shared with other processes that may die holding it.
///
/// `L` answers who holds it and whether they are alive (ply-os:
/// `ply_os::liveness::ThreadLiveness`); `P` is how waiters wait (ply-os:
/// `FutexPark`, which sleeps). See the module docs for the outcomes of `lock`.
///
/// # Example
///
/// A holder dies; the next `lock` says so, and the caller repairs the data
/// (integers, so the possibly torn data can be read: see [`RecoveryGuard`]):
///
/// ```
/// use std::cell::Cell;
/// use ply_core::sync::{Liveness, RecoveryGuard, RobustError, RobustMutex, SpinPark};
///
/// // A toy liveness for the example: owner 2 has died.
/// struct Toy;
/// std::thread_local!(static ME: Cell<u32> = const { Cell::new(1) });
/// // SAFETY: tokens are 1 and 2 (set per thread below, non-zero, < 2^31), and
/// // owner 2 is reported dead only after its thread has returned.
/// unsafe impl Liveness for Toy {
///     fn current(&self) -> u32 { ME.with(Cell::get) }
///     fn is_alive(&self, token: u32) -> bool { token != 2 }
/// }
///
/// let account = RobustMutex::new([50u32, 50], Toy, SpinPark); // two halves, sum 100
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         ME.with(|me| me.set(2));
///         let mut guard = account.lock().unwrap();
///         guard[0] -= 30; // ... and the thread ends before guard[1] += 30
///         std::mem::forget(guard);
///     });
/// });
/// let mut guard = match account.lock() {
///     Ok(guard) => guard,
///     Err(RobustError::OwnerDied(mut guard)) => {
///         guard[1] = 100 - guard[0]; // repair the invariant
///         RecoveryGuard::mark_consistent(guard)
///     }
///     Err(e) => panic!("{e}"),
/// };
/// assert_eq!(guard[0] + guard[1], 100);
/// guard[0] += 1;
/// guard[1] -= 1;
/// ```
pub struct RobustMutex<T, L: Liveness, P: Park = SpinPark> {
    raw: RawRobustMutex<L, P>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock gives one thread at a time access to the data (which moves
// between threads with the lock, hence `T: Send`); the liveness seam and the
// park are called from every thread, hence `Sync`.
unsafe impl<T: Send, L: Liveness + Sync, P: Park + Sync> Sync for RobustMutex<T, L, P> {}

impl<T, L: Liveness, P: Park> RobustMutex<T, L, P> {
    /// A lock around `value`.
    ///
    /// # Example
    ///
    /// See [`RobustMutex`].
    pub const fn new(value: T, liveness: L, park: P) -> Self {
        RobustMutex {
            raw: RawRobustMutex::new(liveness, park),
            data: UnsafeCell::new(value),
        }
    }

    /// Locks, waiting while a live holder has the lock.
    ///
    /// # Errors
    ///
    /// [`RobustError::OwnerDied`] with a [`RecoveryGuard`], after a holder's
    /// death; [`RobustError::NotRecoverable`] if the lock is unrecoverable.
    ///
    /// # Example
    ///
    /// See [`RobustMutex`].
    #[allow(clippy::type_complexity)] // the guard type, in and out of the error
    pub fn lock(
        &self,
    ) -> Result<RobustGuard<'_, T, L, P>, RobustError<RecoveryGuard<'_, T, L, P>>> {
        match self.lock_with(Forever) {
            Some(result) => result,
            None => unreachable!("Forever never gives up"),
        }
    }

    /// As [`lock`](Self::lock), unless `patience` runs out while a live holder
    /// has the lock (`None`).
    ///
    /// # Example
    ///
    /// ```
    /// # use ply_core::sync::{Liveness, RobustMutex, SpinPark, Spins};
    /// # struct One;
    /// # // SAFETY: one owner that never dies.
    /// # unsafe impl Liveness for One {
    /// #     fn current(&self) -> u32 { 1 }
    /// #     fn is_alive(&self, _: u32) -> bool { true }
    /// # }
    /// let m = RobustMutex::new(0, One, SpinPark);
    /// let held = m.lock().unwrap();
    /// assert!(m.lock_with(Spins(5)).is_none());
    /// ```
    #[allow(clippy::type_complexity)] // the guard type, in and out of the error
    pub fn lock_with(
        &self,
        patience: impl Patience,
    ) -> Option<Result<RobustGuard<'_, T, L, P>, RobustError<RecoveryGuard<'_, T, L, P>>>> {
        let acquired = self.raw.lock_with(patience)?;
        let guard = || RobustGuard {
            mutex: self,
            not_send: PhantomData,
        };
        Some(match acquired {
            Ok(()) => Ok(guard()),
            Err(RobustError::OwnerDied(())) => {
                Err(RobustError::OwnerDied(RecoveryGuard::new(guard())))
            }
            Err(RobustError::NotRecoverable) => Err(RobustError::NotRecoverable),
        })
    }

    /// The data, through `&mut self` (no other reference can exist).
    ///
    /// # Example
    ///
    /// ```
    /// # use ply_core::sync::{Liveness, RobustMutex, SpinPark};
    /// # struct One;
    /// # // SAFETY: one owner that never dies.
    /// # unsafe impl Liveness for One {
    /// #     fn current(&self) -> u32 { 1 }
    /// #     fn is_alive(&self, _: u32) -> bool { true }
    /// # }
    /// let mut m = RobustMutex::new(1, One, SpinPark);
    /// *m.get_mut() = 2;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The raw lock (for `is_locked` and the like).
    ///
    /// # Example
    ///
    /// ```
    /// # use ply_core::sync::{Liveness, RobustMutex, SpinPark};
    /// # struct One;
    /// # // SAFETY: one owner that never dies.
    /// # unsafe impl Liveness for One {
    /// #     fn current(&self) -> u32 { 1 }
    /// #     fn is_alive(&self, _: u32) -> bool { true }
    /// # }
    /// let m = RobustMutex::new((), One, SpinPark);
    /// let _g = m.lock().unwrap();
    /// assert!(m.raw().is_locked());
    /// ```
    pub fn raw(&self) -> &RawRobustMutex<L, P> {
        &self.raw
    }
}

impl<T: fmt::Debug, L: Liveness, P: Park> fmt::Debug for RobustMutex<T, L, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobustMutex")
            .field("locked", &self.raw.is_locked())
            .field("not_recoverable", &self.raw.is_not_recoverable())
            .finish_non_exhaustive()
    }
}

/// Access to a [`RobustMutex`]'s data; unlocks on drop. Not `Send`: the lock
/// identifies its holder by thread, so a guard moved to another thread could
/// outlive the thread the lock names, and be taken over while in use.
///
/// # Example
///
/// See [`RobustMutex`]. A guard cannot leave its thread:
///
/// ```compile_fail
/// # use ply_core::sync::{Liveness, RobustMutex, SpinPark};
/// # struct One;
/// # // SAFETY: one owner that never dies.
/// # unsafe impl Liveness for One {
/// #     fn current(&self) -> u32 { 1 }
/// #     fn is_alive(&self, _: u32) -> bool { true }
/// # }
/// fn send<T: Send>(_: T) {}
/// let m = RobustMutex::new(0, One, SpinPark);
/// send(m.lock().unwrap());
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct RobustGuard<'a, T, L: Liveness, P: Park = SpinPark> {
    mutex: &'a RobustMutex<T, L, P>,
    not_send: PhantomData<*const ()>,
}

impl<T, L: Liveness, P: Park> RobustGuard<'_, T, L, P> {
    /// The data, which may be torn (a holder died writing it): only written
    /// through, never read or dropped, unless `T: TearSafe`.
    pub(super) fn data_ptr(&self) -> *mut T {
        self.mutex.data.get()
    }

    /// Marks the data consistent again.
    pub(super) fn set_consistent(&self) {
        // SAFETY: the guard proves the lock is held.
        unsafe { self.mutex.raw.mark_consistent() }
    }
}

// SAFETY: sharing `&RobustGuard` across threads only shares `&T`.
unsafe impl<T: Sync, L: Liveness, P: Park> Sync for RobustGuard<'_, T, L, P> {}

impl<T, L: Liveness, P: Park> Deref for RobustGuard<'_, T, L, P> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no one else accesses the data;
        // and the data is valid: a `RobustGuard` is handed out only for a lock
        // released normally, or after a takeover whose `RecoveryGuard` reset
        // the data or found it valid (`T: TearSafe`, or the caller of the
        // `unsafe` `mark_consistent_unchecked` vouched for it).
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T, L: Liveness, P: Park> DerefMut for RobustGuard<'_, T, L, P> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only view.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T, L: Liveness, P: Park> Drop for RobustGuard<'_, T, L, P> {
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock, on this thread (it is not `Send`).
        unsafe { self.mutex.raw.unlock() }
    }
}

impl<T: fmt::Debug, L: Liveness, P: Park> fmt::Debug for RobustGuard<'_, T, L, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
