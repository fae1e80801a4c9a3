//! [`RobustMutex`]: a lock whose holder may die, in the spirit of `pthread`'s
//! robust mutexes.
//!
//! # What it promises
//!
//! Between processes that share memory, a holder can be killed inside its
//! critical section. An ordinary lock then stays held for good. This one
//! records *who* holds it, and a waiter that has waited long enough asks the
//! operating system (through the [`Liveness`] seam) whether that holder can
//! still run. If not, the waiter takes the lock over and `lock` reports it:
//!
//! - `Ok(guard)`: the lock was free or released normally.
//! - `Err(RobustError::OwnerDied(guard))`: the previous holder died holding
//!   the lock. The caller holds it now through a [`RecoveryGuard`], and the
//!   data may be half-updated, even torn (see below). It repairs what it
//!   must, then calls [`RecoveryGuard::mark_consistent`], or overwrites the
//!   data with [`RecoveryGuard::reset`]; either gives the ordinary guard. If
//!   the recovery guard is dropped without that, the lock becomes
//!   unrecoverable.
//! - `Err(RobustError::NotRecoverable)`: a holder died and the one who took
//!   over did not mark the data consistent. Nobody gets the lock again; the
//!   data cannot be trusted (pthread's `ENOTRECOVERABLE`).
//!
//! A holder that is only *stopped* (`SIGSTOP`, a debugger) is alive: waiters
//! keep waiting, and the bounded forms ([`lock_with`](RobustMutex::lock_with))
//! time out instead.
//!
//! # Algorithm
//!
//! The lock word is a futex word in the layout of Linux's robust futexes: the
//! holder's owner token ([`Liveness::current`], non-zero) in bits 0–30, 0 when
//! free, and bit 31 (`WAITERS`) set while a waiter may be parked on the word.
//!
//! - `lock`: CAS the word from 0 to our token. If it is held, set `WAITERS`
//!   and park on the word ([`Park`]) with a timeout of at most [`RECHECK`]; on
//!   waking, retry. While one holder keeps the lock, the waiter checks whether
//!   it is alive after 1, 2, 4, 8 and then every 16 parks, and once more when
//!   its patience runs out. If the holder is gone, the waiter replaces the
//!   holder's token with its own by a CAS on the same word value (so two
//!   waiters cannot both take over), marks the data inconsistent, and returns
//!   `OwnerDied`.
//! - `unlock`: if the data is still marked inconsistent (the holder took over
//!   and did not repair), mark it unrecoverable; then swap the word to 0 and,
//!   if `WAITERS` was set, wake a waiter (all of them when unrecoverable). A
//!   waiter that wins the lock after parking sets `WAITERS` again, since others
//!   may still be parked (Drepper, "Futexes Are Tricky", 2011, mutex 2).
//!
//! The consistency state is a second word, written only by the holder.
//!
//! # Memory ordering
//!
//! Taking the lock (from 0, or over a dead holder) is an `Acquire` CAS;
//! `unlock`'s swap is `Release`: the next holder sees the previous critical
//! section, and the consistency state written before the swap. A takeover
//! reads the word value the dead holder's `Acquire` CAS wrote, with nothing to
//! synchronize with: what the dead holder wrote to the data is whatever it
//! managed to write, which is why the data is reported possibly inconsistent.
//!
//! # Limits
//!
//! - Whether a holder is alive is asked of the operating system; ply-os's
//!   answer uses the thread id and its start time, so all processes using one
//!   lock must share a PID namespace (as they do after `fork`).
//! - The waiter that takes over relies on the dead holder's token not being
//!   handed to a new holder between its liveness check and its CAS. ply-os's
//!   tokens combine the thread id with 9 bits of its start time: a stale
//!   takeover would need the dead thread's id reused by a thread started in a
//!   matching tick, which then takes this very lock, within those microseconds.
//! - Death is detected per thread: the guard is not `Send`, so the thread that
//!   locked is the one that unlocks.
//! - A holder killed in the middle of writing *one value* leaves a torn value:
//!   some of its bytes new, the rest old. For integers, floats, `bool`s,
//!   atomics and arrays or structs of them, that is still a valid value (if
//!   not a meaningful one). For a type with invalid bit patterns spread over
//!   several bytes it may not be: an enum with fields (rustc writes the tag
//!   and the fields with separate stores), `char`, the `NonZero` integers,
//!   `Option` of them; reading it would be undefined behaviour. So the
//!   [`RecoveryGuard`] derefs to the data only for [`TearSafe`](crate::TearSafe)
//!   types (the former); for the others it can only overwrite the data
//!   whole. The raw lock has no data and leaves this to its caller.

use core::time::Duration;

use crate::primitive::{AtomicU32, Ordering};
use crate::sync::patience::Forever;
use crate::sync::{Liveness, Park, Patience, SpinPark, Spins, Timeout};

/// Lock word: a waiter may be parked on it.
const WAITERS: u32 = 1 << 31;

/// Consistency state: the data is as its last holder left it on unlock.
const CONSISTENT: u32 = 0;
/// A holder died; the one that took over has not marked the data consistent.
const INCONSISTENT: u32 = 1;
/// A holder that took over released the lock without marking it consistent.
const NOT_RECOVERABLE: u32 = 2;

/// The longest a waiter parks before it looks at the lock again (and, on its
/// schedule, asks whether the holder is alive). Waiters are woken at once by
/// an unlock; this bounds only how long a dead holder goes unnoticed.
pub const RECHECK: Duration = Duration::from_millis(10);

/// Parks between liveness checks of one holder, at most (the gap doubles from 1).
const MAX_PARKS_BETWEEN_CHECKS: u32 = 16;

/// The raw lock behind [`RobustMutex`]: two words, no pointers.
///
/// # Example
///
/// ```
/// use ply_core::sync::{Liveness, RawRobustMutex, SpinPark};
///
/// struct One;
/// // SAFETY: one owner that never dies (see `Liveness`).
/// unsafe impl Liveness for One {
///     fn current(&self) -> u32 { 1 }
///     fn is_alive(&self, _: u32) -> bool { true }
/// }
///
/// let raw = RawRobustMutex::new(One, SpinPark);
/// assert_eq!(raw.lock(), Ok(()));
/// assert!(raw.is_locked());
/// // SAFETY: locked just above.
/// unsafe { raw.unlock() };
/// ```
#[derive(Debug)]
pub struct RawRobustMutex<L: Liveness, P: Park = SpinPark> {
    /// Holder's token (0: free) and `WAITERS`.
    word: AtomicU32,
    /// `CONSISTENT`, `INCONSISTENT` or `NOT_RECOVERABLE`.
    state: AtomicU32,
    liveness: L,
    park: P,
}

impl<L: Liveness, P: Park> RawRobustMutex<L, P> {
    /// An unlocked lock that identifies holders through `liveness` and waits
    /// through `park`.
    ///
    /// # Example
    ///
    /// ```
    /// # use ply_core::sync::{Liveness, RawRobustMutex, SpinPark};
    /// # struct One;
    /// # // SAFETY: one owner that never dies.
    /// # unsafe impl Liveness for One {
    /// #     fn current(&self) -> u32 { 1 }
    /// #     fn is_alive(&self, _: u32) -> bool { true }
    /// # }
    /// let raw = RawRobustMutex::new(One, SpinPark);
    /// assert!(!raw.is_locked());
    /// ```
    #[cfg(not(loom))]
    pub const fn new(liveness: L, park: P) -> Self {
        RawRobustMutex {
            word: AtomicU32::new(0),
            state: AtomicU32::new(CONSISTENT),
            liveness,
            park,
        }
    }

    /// An unlocked lock (loom build).
    #[cfg(loom)]
    pub fn new(liveness: L, park: P) -> Self {
        RawRobustMutex {
            word: AtomicU32::new(0),
            state: AtomicU32::new(CONSISTENT),
            liveness,
            park,
        }
    }

    /// Takes the lock, waiting while a live holder has it; takes it over from
    /// a dead one. See the module docs for the outcomes.
    ///
    /// # Errors
    ///
    /// [`RobustError::OwnerDied`]: the lock is held, after a holder's death;
    /// repair, then [`mark_consistent`](Self::mark_consistent) before unlocking.
    /// [`RobustError::NotRecoverable`]: the lock is not held.
    ///
    /// # Example
    ///
    /// See [`RawRobustMutex`].
    pub fn lock(&self) -> Result<(), RobustError<()>> {
        match self.lock_with(Forever) {
            Some(result) => result,
            None => unreachable!("Forever never gives up"),
        }
    }

    /// As [`lock`](Self::lock), unless `patience` runs out first (`None`) while
    /// the holder is alive. Each park lasts at most what `patience` allows (and
    /// at most [`RECHECK`]); when it runs out, the holder's liveness is checked
    /// once more before giving up.
    ///
    /// # Example
    ///
    /// ```
    /// # use ply_core::sync::{Liveness, RawRobustMutex, SpinPark, Spins};
    /// # struct One;
    /// # // SAFETY: one owner that never dies.
    /// # unsafe impl Liveness for One {
    /// #     fn current(&self) -> u32 { 1 }
    /// #     fn is_alive(&self, _: u32) -> bool { true }
    /// # }
    /// let raw = RawRobustMutex::new(One, SpinPark);
    /// raw.lock().unwrap();
    /// assert!(raw.lock_with(Spins(10)).is_none()); // held by a live owner
    /// ```
    pub fn lock_with(&self, mut patience: impl Patience) -> Option<Result<(), RobustError<()>>> {
        let me = self.liveness.current() & !WAITERS;
        debug_assert_ne!(me, 0, "Liveness::current must not return 0");
        if self.state.load(Ordering::Relaxed) == NOT_RECOVERABLE {
            return Some(Err(RobustError::NotRecoverable));
        }
        // Acquire: see "Memory ordering".
        if self
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Some(self.acquired(false));
        }
        let mut watched = 0;
        let mut parks = 0u32;
        let mut gap = 1u32;
        loop {
            let word = self.word.load(Ordering::Relaxed);
            if word == 0 {
                // Free. We may have parked, so others may be parked too: keep
                // `WAITERS` set so our unlock wakes one of them.
                if self
                    .word
                    .compare_exchange(0, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(self.acquired(false));
                }
                continue;
            }
            let holder = word & !WAITERS;
            if holder != watched {
                (watched, parks, gap) = (holder, 0, 1);
            }
            let out_of_patience = !patience.keep_waiting();
            if out_of_patience || parks >= gap {
                if !self.liveness.is_alive(holder) {
                    // Take over from the dead holder; the CAS on this exact
                    // value lets only one waiter do it. Acquire: as above.
                    if self
                        .word
                        .compare_exchange(
                            word,
                            me | (word & WAITERS),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        return Some(self.acquired(true));
                    }
                    continue;
                }
                if out_of_patience {
                    return None;
                }
                parks = 0;
                gap = (gap * 2).min(MAX_PARKS_BETWEEN_CHECKS);
            }
            if word & WAITERS == 0
                && self
                    .word
                    .compare_exchange(word, word | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            crate::fault_point!(RobustWaiting);
            let timeout = patience.park_timeout().min(Timeout::After(RECHECK));
            self.park.wait_timeout(&self.word, word | WAITERS, timeout);
            parks += 1;
        }
    }

    /// Takes the lock if it is free now, or over a dead holder; `None` if a
    /// live holder has it.
    ///
    /// # Example
    ///
    /// ```
    /// # use ply_core::sync::{Liveness, RawRobustMutex, SpinPark};
    /// # struct One;
    /// # // SAFETY: one owner that never dies.
    /// # unsafe impl Liveness for One {
    /// #     fn current(&self) -> u32 { 1 }
    /// #     fn is_alive(&self, _: u32) -> bool { true }
    /// # }
    /// let raw = RawRobustMutex::new(One, SpinPark);
    /// assert!(raw.try_lock().is_some());
    /// assert!(raw.try_lock().is_none());
    /// ```
    pub fn try_lock(&self) -> Option<Result<(), RobustError<()>>> {
        self.lock_with(Spins(0))
    }

    /// After taking the word: the outcome, given the consistency state.
    fn acquired(&self, took_over: bool) -> Result<(), RobustError<()>> {
        crate::fault_point!(RobustLocked);
        match self.state.load(Ordering::Relaxed) {
            NOT_RECOVERABLE => {
                // SAFETY: we hold the lock (just taken); give it back so the
                // others see the verdict too.
                unsafe { self.release() };
                Err(RobustError::NotRecoverable)
            }
            // A takeover, or a holder that died mid-recovery before us (the
            // state is still inconsistent).
            state if took_over || state == INCONSISTENT => {
                self.state.store(INCONSISTENT, Ordering::Relaxed);
                Err(RobustError::OwnerDied(()))
            }
            _ => Ok(()),
        }
    }

    /// Marks the data consistent again after [`RobustError::OwnerDied`].
    ///
    /// # Safety
    ///
    /// The caller must hold the lock.
    ///
    /// # Example
    ///
    /// ```
    /// use std::cell::Cell;
    /// use ply_core::sync::{Liveness, RawRobustMutex, RobustError, SpinPark};
    ///
    /// struct Toy;
    /// std::thread_local!(static ME: Cell<u32> = const { Cell::new(1) });
    /// // SAFETY: tokens 1 and 2, non-zero, < 2^31; owner 2 is reported dead
    /// // only after its thread has returned.
    /// unsafe impl Liveness for Toy {
    ///     fn current(&self) -> u32 { ME.with(Cell::get) }
    ///     fn is_alive(&self, token: u32) -> bool { token != 2 }
    /// }
    ///
    /// let raw = RawRobustMutex::new(Toy, SpinPark);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         ME.with(|me| me.set(2));
    ///         raw.lock().unwrap(); // and the thread ends holding it
    ///     });
    /// });
    /// assert_eq!(raw.lock(), Err(RobustError::OwnerDied(())));
    /// // SAFETY: the lock is held (taken over just above).
    /// unsafe {
    ///     raw.mark_consistent();
    ///     raw.unlock();
    /// }
    /// assert_eq!(raw.lock(), Ok(()));
    /// ```
    pub unsafe fn mark_consistent(&self) {
        // Only the holder writes the state; unlock's Release publishes it.
        self.state.store(CONSISTENT, Ordering::Relaxed);
    }

    /// Releases the lock. If it was taken over from a dead holder and not
    /// marked consistent since, it becomes unrecoverable.
    ///
    /// # Safety
    ///
    /// The caller must hold the lock (on this thread: the lock identifies its
    /// holder by thread).
    ///
    /// # Example
    ///
    /// See [`RawRobustMutex`].
    pub unsafe fn unlock(&self) {
        crate::fault_point!(RobustUnlocking);
        if self.state.load(Ordering::Relaxed) == INCONSISTENT {
            self.state.store(NOT_RECOVERABLE, Ordering::Relaxed);
        }
        // SAFETY: forwarded contract.
        unsafe { self.release() };
    }

    /// Frees the word and wakes a waiter if any may be parked.
    ///
    /// # Safety
    ///
    /// The caller holds the lock.
    unsafe fn release(&self) {
        // Release: publishes the critical section and the consistency state
        // to the next holder's Acquire CAS.
        let word = self.word.swap(0, Ordering::Release);
        if word & WAITERS != 0 {
            if self.state.load(Ordering::Relaxed) == NOT_RECOVERABLE {
                self.park.wake_all(&self.word);
            } else {
                self.park.wake_one(&self.word);
            }
        }
    }

    /// Whether the lock is held (a snapshot).
    ///
    /// # Example
    ///
    /// See [`RawRobustMutex`].
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & !WAITERS != 0
    }

    /// Whether the lock is unrecoverable (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// # use ply_core::sync::{Liveness, RawRobustMutex, SpinPark};
    /// # struct One;
    /// # // SAFETY: one owner that never dies.
    /// # unsafe impl Liveness for One {
    /// #     fn current(&self) -> u32 { 1 }
    /// #     fn is_alive(&self, _: u32) -> bool { true }
    /// # }
    /// assert!(!RawRobustMutex::new(One, SpinPark).is_not_recoverable());
    /// ```
    pub fn is_not_recoverable(&self) -> bool {
        self.state.load(Ordering::Relaxed) == NOT_RECOVERABLE
    }
}

mod error;
#[cfg(not(loom))]
mod mutex;
#[cfg(not(loom))]
mod recovery;

pub use error::RobustError;
#[cfg(not(loom))]
pub use mutex::{RobustGuard, RobustMutex};
#[cfg(not(loom))]
pub use recovery::RecoveryGuard;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;
