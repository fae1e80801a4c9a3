//! The one seam to the operating system: waiting for an atomic word to change.
//!
//! Everything in [`sync`](super) that sleeps — a semaphore with no permits, an
//! event not yet set, a barrier not yet full, a robust lock held by another
//! process — waits through a [`Park`]. The trait is the shape of a Linux futex
//! (and of `WaitOnAddress`, `__ulock_wait`): *wait while this 32-bit word still
//! holds the value I saw, for at most this long*; *wake one / all waiters on
//! this word*. Because it names the word, not a thread, it works between
//! processes when the word is in shared memory.
//!
//! ply-core ships [`SpinPark`], which waits by spinning with backoff (and so
//! needs no OS at all: firmware, interrupt-free contexts). ply-os ships a futex
//! implementation that puts the waiter to sleep in the kernel.
//!
//! # Deadlines without a clock
//!
//! `no_std` has no clock, so ply-core never reads the time. A bounded wait
//! (`acquire_with`, `wait_with`, …) asks its [`Patience`](super::Patience) before
//! *every* park how long that park may block
//! ([`park_timeout`](super::Patience::park_timeout)), and hands the answer to
//! [`Park::wait_timeout`] as a [`Timeout`]:
//!
//! - [`Timeout::Never`]: the unbounded forms (`acquire`, `wait`).
//! - [`Timeout::After`]`(d)`: a patience with a clock (ply-os's `park::Until`)
//!   says how much of its deadline is left; a futex park passes `d` to the
//!   kernel, so a sleeping waiter wakes up by its deadline.
//! - `Timeout::After(Duration::ZERO)`: a patience without a clock ([`Spins`],
//!   [`Deadline`]) cannot say, so the park must not sleep: it spins briefly and
//!   returns, and the caller asks its patience again.
//!
//! [`SpinPark`] needs none of this: it always returns after a bounded spin.
//!
//! # Contract
//!
//! - [`wait_timeout`](Park::wait_timeout) may return at any time (spuriously,
//!   after giving up spinning, or at its timeout); callers re-check their
//!   condition in a loop. It must not block once `*word != expected` *at the
//!   moment it starts waiting* — a futex checks this atomically, which is what
//!   makes "check, then wait" free of lost wakeups — and must not block longer
//!   than its timeout (up to the OS's timer slack).
//! - [`wake_one`](Park::wake_one) / [`wake_all`](Park::wake_all) are called after
//!   the word was changed; they may wake more waiters than asked.
//!
//! [`Spins`]: super::Spins
//! [`Deadline`]: super::Deadline

use core::time::Duration;

use crate::primitive::{AtomicU32, Backoff, Ordering};

/// How long one [`Park::wait_timeout`] may block.
///
/// # Example
///
/// ```
/// use core::time::Duration;
/// use ply_core::sync::{Patience, Spins, Timeout};
///
/// // A patience without a clock never lets a park sleep.
/// assert_eq!(Spins(3).park_timeout(), Timeout::After(Duration::ZERO));
/// assert!(Timeout::After(Duration::ZERO).is_zero());
/// assert!(!Timeout::Never.is_zero());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timeout {
    /// At most this long. `Duration::ZERO`: do not sleep (spin briefly at most).
    After(Duration),
    /// No limit: until woken (or a spurious return).
    Never,
}

impl Timeout {
    /// Whether this allows no sleeping at all.
    ///
    /// # Example
    ///
    /// ```
    /// use core::time::Duration;
    /// use ply_core::sync::Timeout;
    /// assert!(!Timeout::After(Duration::from_millis(1)).is_zero());
    /// ```
    pub fn is_zero(&self) -> bool {
        *self == Timeout::After(Duration::ZERO)
    }

    /// The shorter of two timeouts (`Never` is the longest).
    ///
    /// # Example
    ///
    /// ```
    /// use core::time::Duration;
    /// use ply_core::sync::Timeout;
    ///
    /// let ms = Timeout::After(Duration::from_millis(1));
    /// assert_eq!(Timeout::Never.min(ms), ms);
    /// ```
    pub fn min(self, other: Timeout) -> Timeout {
        core::cmp::min(self, other)
    }
}

/// How a blocked operation waits for a 32-bit word to change.
///
/// Implement [`wait_timeout`](Self::wait_timeout), [`wake_one`](Self::wake_one)
/// and [`wake_all`](Self::wake_all); [`wait`](Self::wait) is `wait_timeout`
/// without a limit.
///
/// # Example
///
/// A minimal event built on the trait (ply's [`Event`](super::Event) is the
/// full version):
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use ply_core::sync::{Park, SpinPark};
///
/// let flag = AtomicU32::new(0);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         flag.store(1, Ordering::Release);
///         SpinPark.wake_all(&flag);
///     });
///     while flag.load(Ordering::Acquire) == 0 {
///         SpinPark.wait(&flag, 0);
///     }
/// });
/// ```
pub trait Park {
    /// Waits while `*word == expected`, for at most `timeout`; may return
    /// early. See the module docs.
    fn wait_timeout(&self, word: &AtomicU32, expected: u32, timeout: Timeout);

    /// Waits while `*word == expected`, with no time limit; may return early.
    fn wait(&self, word: &AtomicU32, expected: u32) {
        self.wait_timeout(word, expected, Timeout::Never);
    }

    /// Wakes at least one waiter on `word`, if any.
    fn wake_one(&self, word: &AtomicU32);

    /// Wakes every waiter on `word`.
    fn wake_all(&self, word: &AtomicU32);
}

/// Waits by spinning: exponential `spin_loop` backoff (yielding to the OS
/// scheduler once backed off, with the `std` feature), then returns to let the
/// caller re-check (a "spurious" return). Needs no operating system and no
/// clock: every wait is short, whatever its timeout. A sleeping park does the
/// same when its timeout is zero.
///
/// # Example
///
/// ```
/// use core::sync::atomic::AtomicU32;
/// use ply_core::sync::{Park, SpinPark};
///
/// let word = AtomicU32::new(5);
/// SpinPark.wait(&word, 7); // returns at once: the word is not 7
/// SpinPark.wake_all(&word); // nothing to do for spinners
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpinPark;

impl Park for SpinPark {
    fn wait_timeout(&self, word: &AtomicU32, expected: u32, _timeout: Timeout) {
        spin_while(word, expected);
    }

    fn wake_one(&self, _word: &AtomicU32) {}

    fn wake_all(&self, _word: &AtomicU32) {}
}

/// Spins with backoff while `*word == expected`, until the backoff completes.
fn spin_while(word: &AtomicU32, expected: u32) {
    let backoff = Backoff::new();
    // Acquire: when the word has changed, the caller's next reads see what
    // the changer wrote before it (callers re-load with their own ordering
    // too; this keeps the loop itself sound on its own).
    while word.load(Ordering::Acquire) == expected {
        if backoff.is_completed() {
            return; // give the caller a chance to re-check or give up
        }
        backoff.snooze();
    }
}
