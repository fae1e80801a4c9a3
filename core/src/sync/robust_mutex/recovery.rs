//! [`RecoveryGuard`]: what [`RobustMutex::lock`](super::RobustMutex::lock)
//! hands over after a holder's death.
//!
//! The dead holder may have been killed in the middle of writing a value, and
//! left it torn (some bytes new, some old). For a [`TearSafe`] type that is
//! still a valid value, so the guard derefs to it: read it, repair it, then
//! [`mark_consistent`](RecoveryGuard::mark_consistent). For any other type
//! (an enum with fields, `char`, `Option<NonZeroU32>` …) the torn bytes may be
//! no valid value at all, and reading them would be undefined behaviour: the
//! guard then offers only [`reset`](RecoveryGuard::reset), which overwrites
//! the whole value without reading or dropping the old bytes.

use core::fmt;
use core::ops::{Deref, DerefMut};

use super::RobustGuard;
use crate::TearSafe;
use crate::sync::{Liveness, Park, SpinPark};

/// The lock, held after its previous holder died; the data may be torn.
///
/// Derefs to the data only if `T` is [`TearSafe`]. Either way it turns into a
/// [`RobustGuard`] once the data is known good: by
/// [`reset`](Self::reset) (any `T`), [`mark_consistent`](Self::mark_consistent)
/// (`T: TearSafe`), or the `unsafe`
/// [`mark_consistent_unchecked`](Self::mark_consistent_unchecked). Dropped without either, it unlocks and the lock becomes
/// unrecoverable ([`RobustError::NotRecoverable`](super::RobustError::NotRecoverable)).
/// Not `Send`, like [`RobustGuard`]. Its functions are associated functions,
/// so they cannot shadow a method of `T`.
///
/// # Example
///
/// An enum's tag and fields are written by separate stores, so after a death
/// it can only be overwritten:
///
/// ```
/// # use std::cell::Cell;
/// use ply_core::sync::{Liveness, RecoveryGuard, RobustError, RobustMutex, SpinPark};
/// # struct Toy;
/// # std::thread_local!(static ME: Cell<u32> = const { Cell::new(1) });
/// # // SAFETY: tokens 1 and 2, owner 2 reported dead only after its thread returned.
/// # unsafe impl Liveness for Toy {
/// #     fn current(&self) -> u32 { ME.with(Cell::get) }
/// #     fn is_alive(&self, token: u32) -> bool { token != 2 }
/// # }
///
/// #[derive(Debug, PartialEq)]
/// enum Job { Idle, Running { id: u32, progress: f32 } }
///
/// let job = RobustMutex::new(Job::Idle, Toy, SpinPark);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         ME.with(|me| me.set(2));
///         let mut guard = job.lock().unwrap();
///         *guard = Job::Running { id: 7, progress: 0.5 };
///         std::mem::forget(guard); // dies holding the lock
///     });
/// });
/// let guard = match job.lock() {
///     Ok(guard) => guard,
///     // `*recovery` would not compile: `Job` is not `TearSafe`.
///     Err(RobustError::OwnerDied(recovery)) => RecoveryGuard::reset(recovery, Job::Idle),
///     Err(e) => panic!("{e}"),
/// };
/// assert_eq!(*guard, Job::Idle);
/// ```
#[must_use = "dropping it unlocks and makes the lock unrecoverable"]
pub struct RecoveryGuard<'a, T, L: Liveness, P: Park = SpinPark> {
    guard: RobustGuard<'a, T, L, P>,
}

impl<'a, T, L: Liveness, P: Park> RecoveryGuard<'a, T, L, P> {
    /// Wraps the guard of a lock just taken over from a dead holder.
    pub(super) fn new(guard: RobustGuard<'a, T, L, P>) -> Self {
        RecoveryGuard { guard }
    }

    /// Overwrites the data with `value`, marks it consistent and returns the
    /// ordinary guard. The old, possibly torn bytes are neither read nor
    /// dropped (whatever they owned is leaked).
    ///
    /// # Example
    ///
    /// See [`RecoveryGuard`].
    pub fn reset(guard: Self, value: T) -> RobustGuard<'a, T, L, P> {
        // SAFETY: the guard holds the lock, so no one else accesses the data;
        // `write` stores `value` without reading or dropping the old bytes,
        // which may be no valid `T`.
        unsafe { guard.guard.data_ptr().write(value) };
        guard.guard.set_consistent();
        guard.guard
    }

    /// Marks the data consistent without looking at it, for a type that is
    /// not [`TearSafe`] but whose writers keep it valid across a death by
    /// their own protocol (writing a spare copy, then flipping an index to
    /// it, say). Returns the ordinary guard.
    ///
    /// # Safety
    ///
    /// Whatever the dead holder (and any holder before it) had done when it
    /// died, the data must be a valid `T` that meets every invariant of `T`'s
    /// own `unsafe` code.
    ///
    /// # Example
    ///
    /// ```
    /// # use std::cell::Cell;
    /// use std::mem::MaybeUninit;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use ply_core::sync::{
    ///     Liveness, RecoveryGuard, RobustError, RobustGuard, RobustMutex, SpinPark,
    /// };
    /// # struct Toy;
    /// # std::thread_local!(static ME: Cell<u32> = const { Cell::new(1) });
    /// # // SAFETY: tokens 1 and 2, owner 2 reported dead only after its thread returned.
    /// # unsafe impl Liveness for Toy {
    /// #     fn current(&self) -> u32 { ME.with(Cell::get) }
    /// #     fn is_alive(&self, token: u32) -> bool { token != 2 }
    /// # }
    ///
    /// /// `copies[current]` is whole: a writer fills the other copy, then flips.
    /// struct Flip { current: AtomicU32, copies: [MaybeUninit<char>; 2] }
    ///
    /// fn set(f: &mut Flip, c: char) {
    ///     let next = (f.current.load(Ordering::Relaxed) & 1) ^ 1;
    ///     f.copies[next as usize].write(c);
    ///     f.current.store(next, Ordering::Release); // after the copy is whole
    /// }
    ///
    /// let lock = RobustMutex::new(
    ///     Flip { current: AtomicU32::new(0), copies: [MaybeUninit::new('a'); 2] },
    ///     Toy,
    ///     SpinPark,
    /// );
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         ME.with(|me| me.set(2));
    ///         std::mem::forget(lock.lock().unwrap()); // dies holding the lock
    ///     });
    /// });
    /// let Err(RobustError::OwnerDied(recovery)) = lock.lock() else { panic!() };
    /// // SAFETY: `current` is one atomic store, made only once its copy was
    /// // whole, and the other copy is never read: the data is valid.
    /// let mut g: RobustGuard<'_, Flip, Toy> =
    ///     unsafe { RecoveryGuard::mark_consistent_unchecked(recovery) };
    /// set(&mut g, 'b');
    /// let current = g.current.load(Ordering::Relaxed) as usize & 1;
    /// // SAFETY: the current copy is initialized (see `Flip`).
    /// assert_eq!(unsafe { g.copies[current].assume_init() }, 'b');
    /// ```
    pub unsafe fn mark_consistent_unchecked(guard: Self) -> RobustGuard<'a, T, L, P> {
        guard.guard.set_consistent();
        guard.guard
    }
}

impl<'a, T: TearSafe, L: Liveness, P: Park> RecoveryGuard<'a, T, L, P> {
    /// Marks the data consistent (the caller has repaired it, or found it
    /// good) and returns the ordinary guard.
    ///
    /// # Example
    ///
    /// See [`RobustMutex`](super::RobustMutex).
    pub fn mark_consistent(guard: Self) -> RobustGuard<'a, T, L, P> {
        guard.guard.set_consistent();
        guard.guard
    }
}

impl<T: TearSafe, L: Liveness, P: Park> Deref for RecoveryGuard<'_, T, L, P> {
    type Target = T;
    fn deref(&self) -> &T {
        // `T: TearSafe`: the data, however torn, is a valid `T`.
        &self.guard
    }
}

impl<T: TearSafe, L: Liveness, P: Park> DerefMut for RecoveryGuard<'_, T, L, P> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T, L: Liveness, P: Park> fmt::Debug for RecoveryGuard<'_, T, L, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The data may be torn: not shown, whatever `T` is.
        f.write_str("RecoveryGuard { .. }")
    }
}
