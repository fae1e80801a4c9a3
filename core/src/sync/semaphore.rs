//! [`Semaphore`]: a counting semaphore with RAII permits.
//!
//! # Algorithm
//!
//! The permits are one 32-bit word. `try_acquire` decrements it with a CAS if it
//! is positive. `acquire` waits for a permit through an [`EventCount`]: try,
//! spin a little, register, re-try, sleep until a `release` notifies
//! ([`EventCount::wait_until`]); `release` adds permits with a CAS that
//! refuses to pass `u32::MAX` (a wrapped count would lose every permit), then
//! notifies. The event count's handshake is what makes this free of lost
//! wake-ups, and lets an uncontended `release` skip the wake-up (a system call
//! with a futex park).
//!
//! # Across processes
//!
//! Three words, no pointers: works in `MAP_SHARED` memory, with ply-os's futex
//! park for sleeping waiters. A process that dies holding permits does not give
//! them back (there is no owner to detect); one that dies waiting costs nothing
//! but needless wake-up calls (see [`EventCount`]).

use core::fmt;
use core::marker::PhantomData;

use crate::primitive::{AtomicU32, Ordering, seq_cst_point};
use crate::sync::patience::Forever;
use crate::sync::{EventCount, Park, Patience, SpinPark};

/// A counting semaphore: at most `permits` holders at once.
///
/// # Example
///
/// Limit concurrency to two:
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use ply_core::sync::Semaphore;
///
/// let slots = Semaphore::new(2);
/// let inside = AtomicU32::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..6 {
///         s.spawn(|| {
///             let _permit = slots.acquire();
///             assert!(inside.fetch_add(1, Ordering::SeqCst) < 2);
///             inside.fetch_sub(1, Ordering::SeqCst);
///         });
///     }
/// });
/// assert_eq!(slots.available(), 2);
/// ```
#[derive(Debug)]
pub struct Semaphore<P: Park = SpinPark> {
    permits: AtomicU32,
    /// Notified by every `release`; waiters for a permit sleep on it.
    released: EventCount<P>,
}

impl Semaphore<SpinPark> {
    /// A semaphore with `permits` permits, waiting by spinning.
    ///
    /// # Example
    ///
    /// ```
    /// static S: ply_core::sync::Semaphore = ply_core::sync::Semaphore::new(3);
    /// assert_eq!(S.available(), 3);
    /// ```
    #[cfg(not(loom))]
    pub const fn new(permits: u32) -> Self {
        Self::with_park(permits, SpinPark)
    }

    /// A semaphore with `permits` permits (loom build).
    #[cfg(loom)]
    pub fn new(permits: u32) -> Self {
        Self::with_park(permits, SpinPark)
    }
}

impl<P: Park> Semaphore<P> {
    /// A semaphore with `permits` permits that waits through `park`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{Semaphore, SpinPark};
    /// let s = Semaphore::with_park(1, SpinPark);
    /// assert!(s.try_acquire().is_some());
    /// ```
    #[cfg(not(loom))]
    pub const fn with_park(permits: u32, park: P) -> Self {
        Semaphore {
            permits: AtomicU32::new(permits),
            released: EventCount::with_park(park),
        }
    }

    /// A semaphore that waits through `park` (loom build).
    #[cfg(loom)]
    pub fn with_park(permits: u32, park: P) -> Self {
        Semaphore {
            permits: AtomicU32::new(permits),
            released: EventCount::with_park(park),
        }
    }

    /// Takes a permit if one is available.
    ///
    /// # Example
    ///
    /// ```
    /// let s = ply_core::sync::Semaphore::new(1);
    /// let p = s.try_acquire().unwrap();
    /// assert!(s.try_acquire().is_none());
    /// drop(p);
    /// assert!(s.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<Permit<'_, P>> {
        // `then`, not `then_some`: a `Permit` built eagerly and discarded would
        // release a permit that was never taken.
        self.try_take().then(|| Permit {
            semaphore: self,
            _not_send: PhantomData,
        })
    }

    fn try_take(&self) -> bool {
        let mut current = self.permits.load(Ordering::Relaxed);
        while current > 0 {
            // Acquire: the releaser's work before `release` is visible to us.
            match self.permits.compare_exchange_weak(
                current,
                current - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// Takes a permit, waiting for one if none is available.
    ///
    /// # Example
    ///
    /// ```
    /// let s = ply_core::sync::Semaphore::new(1);
    /// let permit = s.acquire();
    /// assert_eq!(s.available(), 0);
    /// drop(permit);
    /// assert_eq!(s.available(), 1);
    /// ```
    pub fn acquire(&self) -> Permit<'_, P> {
        match self.acquire_with(Forever) {
            Some(permit) => permit,
            None => unreachable!("Forever never gives up"),
        }
    }

    /// Takes a permit unless `patience` runs out first.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{Semaphore, Spins};
    ///
    /// let s = Semaphore::new(0);
    /// assert!(s.acquire_with(Spins(3)).is_none());
    /// s.release(1);
    /// assert!(s.acquire_with(Spins(3)).is_some());
    /// ```
    pub fn acquire_with(&self, patience: impl Patience) -> Option<Permit<'_, P>> {
        self.released
            .wait_until_with(|| self.try_take().then_some(()), patience)
            .map(|()| Permit {
                semaphore: self,
                _not_send: PhantomData,
            })
    }

    /// Adds `n` permits (for example, to give back a [`Permit::forget`]ten one).
    ///
    /// # Panics
    ///
    /// If the count would exceed `u32::MAX` (releasing permits that were never
    /// taken), like integer overflow in debug arithmetic, but in every build:
    /// a wrapped count would lose the permits and leave every later `acquire`
    /// waiting forever. Nothing is added then. Use
    /// [`try_release`](Self::try_release) to get the overflow as an error.
    ///
    /// # Example
    ///
    /// ```
    /// let s = ply_core::sync::Semaphore::new(0);
    /// s.release(2);
    /// assert_eq!(s.available(), 2);
    /// ```
    #[track_caller]
    pub fn release(&self, n: u32) {
        if let Err(e) = self.try_release(n) {
            panic!("Semaphore::release({n}): {e}");
        }
    }

    /// Adds `n` permits, unless the count would exceed `u32::MAX`: then it
    /// adds none, changes nothing, and returns [`ReleaseError::Overflow`].
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{ReleaseError, Semaphore};
    ///
    /// let s = Semaphore::new(1);
    /// assert_eq!(s.try_release(u32::MAX), Err(ReleaseError::Overflow));
    /// assert_eq!(s.available(), 1);
    /// assert_eq!(s.try_release(2), Ok(()));
    /// assert_eq!(s.available(), 3);
    /// ```
    pub fn try_release(&self, n: u32) -> Result<(), ReleaseError> {
        // A CAS loop rather than a `fetch_add`, so that an overflow is refused
        // before anything is written (a wrapped `fetch_add` could only be
        // undone after acquirers had seen the wrapped count). Still lock-free:
        // a CAS fails only because another acquire or release succeeded.
        //
        // Relaxed load and failure: the value only seeds the CAS, which
        // re-checks it. SeqCst success: a release (publishing our work to the
        // acquirer whose Acquire CAS takes this permit), and in the total
        // order the event count's waiters register in, so the notify needs no
        // fence of its own (a successful CAS is a read-modify-write, as the
        // `fetch_add` was).
        let mut current = self.permits.load(Ordering::Relaxed);
        loop {
            let added = current.checked_add(n).ok_or(ReleaseError::Overflow)?;
            match self.permits.compare_exchange_weak(
                current,
                added,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        seq_cst_point();
        if n == 1 {
            self.released.notify_one_after_seq_cst_write();
        } else {
            self.released.notify_all_after_seq_cst_write();
        }
        Ok(())
    }

    /// Permits available now (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_core::sync::Semaphore::new(4).available(), 4);
    /// ```
    pub fn available(&self) -> u32 {
        self.permits.load(Ordering::Relaxed)
    }
}

/// Why [`Semaphore::try_release`] released nothing.
///
/// # Example
///
/// ```
/// use ply_core::sync::ReleaseError;
/// assert_eq!(
///     ReleaseError::Overflow.to_string(),
///     "the permit count would exceed u32::MAX; no permit was released"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The count plus the released permits would exceed `u32::MAX`: more
    /// permits were released than were ever taken.
    Overflow,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::Overflow => {
                f.write_str("the permit count would exceed u32::MAX; no permit was released")
            }
        }
    }
}

impl core::error::Error for ReleaseError {}

/// One permit of a [`Semaphore`], given back when dropped.
///
/// # Example
///
/// ```
/// let s = ply_core::sync::Semaphore::new(1);
/// {
///     let _permit = s.acquire();
///     assert_eq!(s.available(), 0);
/// }
/// assert_eq!(s.available(), 1);
/// ```
#[derive(Debug)]
#[must_use = "dropping a permit releases it at once"]
pub struct Permit<'a, P: Park = SpinPark> {
    semaphore: &'a Semaphore<P>,
    /// Not `Send`, as a lock guard: given to a forked child, the permit would
    /// be released twice, by the child and by the parent's copy.
    _not_send: PhantomData<*const ()>,
}

impl<P: Park> Permit<'_, P> {
    /// Keeps the permit taken without giving it back (hand it over to another
    /// party, which will call [`Semaphore::release`]).
    ///
    /// # Example
    ///
    /// ```
    /// let s = ply_core::sync::Semaphore::new(1);
    /// s.acquire().forget();
    /// assert_eq!(s.available(), 0);
    /// ```
    pub fn forget(self) {
        core::mem::forget(self);
    }
}

impl<P: Park> Drop for Permit<'_, P> {
    fn drop(&mut self) {
        // Panics only if others released permits never taken, filling the
        // count to `u32::MAX` while this one was out.
        self.semaphore.release(1);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn semaphore_try_release_refuses_overflow_and_changes_nothing() {
        let s = Semaphore::new(1);
        assert_eq!(s.try_release(u32::MAX), Err(ReleaseError::Overflow));
        assert_eq!(s.available(), 1);
        assert_eq!(s.try_release(u32::MAX - 1), Ok(()));
        assert_eq!(s.available(), u32::MAX);
        assert_eq!(s.try_release(1), Err(ReleaseError::Overflow));
        assert_eq!(s.available(), u32::MAX);
        // Still usable: permits come out and go back.
        s.acquire().forget();
        assert_eq!(s.available(), u32::MAX - 1);
        assert_eq!(s.try_release(1), Ok(()));
        assert_eq!(s.available(), u32::MAX);
    }

    #[test]
    fn semaphore_try_release_of_zero_changes_nothing() {
        let s = Semaphore::new(u32::MAX);
        assert_eq!(s.try_release(0), Ok(()));
        assert_eq!(s.available(), u32::MAX);
    }

    #[test]
    #[should_panic(expected = "would exceed u32::MAX")]
    fn semaphore_release_panics_on_overflow() {
        Semaphore::new(1).release(u32::MAX);
    }

    #[test]
    fn semaphore_release_overflow_panic_leaves_the_count() {
        let s = Semaphore::new(2);
        let caught = std::panic::catch_unwind(|| s.release(u32::MAX - 1));
        assert!(caught.is_err());
        assert_eq!(s.available(), 2);
        assert!(s.try_acquire().is_some());
    }

    /// Releases racing up to the limit: exactly the ones that fit succeed,
    /// and the count ends at `u32::MAX`, never wrapped.
    #[test]
    fn semaphore_concurrent_releases_stop_exactly_at_the_limit() {
        const THREADS: u32 = 4;
        const EACH: u32 = 1000;
        let headroom = 1500;
        let s = Semaphore::new(u32::MAX - headroom);
        let successes = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    for _ in 0..EACH {
                        if s.try_release(1).is_ok() {
                            successes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(successes.into_inner(), headroom);
        assert_eq!(s.available(), u32::MAX);
    }
}
