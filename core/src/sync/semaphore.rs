//! [`Semaphore`]: a counting semaphore with RAII permits.
//!
//! # Algorithm
//!
//! The permits are one 32-bit word. `try_acquire` decrements it with a CAS if it
//! is positive. `acquire` waits for a permit through an [`EventCount`]: try,
//! spin a little, register, re-try, sleep until a `release` notifies
//! ([`EventCount::wait_until`]); `release` adds permits, then notifies. The
//! event count's handshake is what makes this free of lost wake-ups, and lets
//! an uncontended `release` skip the wake-up (a system call with a futex park).
//!
//! # Across processes
//!
//! Three words, no pointers: works in `MAP_SHARED` memory, with ply-os's futex
//! park for sleeping waiters. A process that dies holding permits does not give
//! them back (there is no owner to detect); one that dies waiting costs nothing
//! but needless wake-up calls (see [`EventCount`]).

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
    /// # Example
    ///
    /// ```
    /// let s = ply_core::sync::Semaphore::new(0);
    /// s.release(2);
    /// assert_eq!(s.available(), 2);
    /// ```
    pub fn release(&self, n: u32) {
        // SeqCst: a release (publishing our work to the acquirer whose Acquire
        // CAS takes this permit), and in the total order the event count's
        // waiters register in, so the notify needs no fence of its own.
        self.permits.fetch_add(n, Ordering::SeqCst);
        seq_cst_point();
        if n == 1 {
            self.released.notify_one_after_seq_cst_write();
        } else {
            self.released.notify_all_after_seq_cst_write();
        }
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
        self.semaphore.release(1);
    }
}
