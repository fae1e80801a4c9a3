//! The one seam to the operating system: waiting for an atomic word to change.
//!
//! Everything in [`sync`](super) that blocks — a semaphore with no permits, an
//! event not yet set, a barrier not yet full — waits through a [`Park`]. The
//! trait is the shape of a Linux futex (and of `WaitOnAddress`, `__ulock_wait`):
//! *wait while this 32-bit word still holds the value I saw*; *wake one / all
//! waiters on this word*. Because it names the word, not a thread, it works
//! between processes when the word is in shared memory.
//!
//! ply-core ships [`SpinPark`], which waits by spinning with backoff (and so
//! needs no OS at all: firmware, interrupt-free contexts). ply-os ships a futex
//! implementation that puts the waiter to sleep in the kernel.
//!
//! # Contract
//!
//! - [`wait`](Park::wait) may return at any time (spuriously, or after giving up
//!   spinning); callers re-check their condition in a loop. It must not block
//!   once `*word != expected` *at the moment it starts waiting* — a futex checks
//!   this atomically, which is what makes "check, then wait" free of lost wakeups.
//! - [`wake_one`](Park::wake_one) / [`wake_all`](Park::wake_all) are called after
//!   the word was changed; they may wake more waiters than asked.

use crate::primitive::{AtomicU32, Backoff, Ordering};

/// How a blocked operation waits for a 32-bit word to change.
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
    /// Waits while `*word == expected`; may return early. See the module docs.
    fn wait(&self, word: &AtomicU32, expected: u32);
    /// Wakes at least one waiter on `word`, if any.
    fn wake_one(&self, word: &AtomicU32);
    /// Wakes every waiter on `word`.
    fn wake_all(&self, word: &AtomicU32);
}

/// Waits by spinning: exponential `spin_loop` backoff, then returns to let the
/// caller re-check (a "spurious" return). Needs no operating system.
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
    fn wait(&self, word: &AtomicU32, expected: u32) {
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

    fn wake_one(&self, _word: &AtomicU32) {}

    fn wake_all(&self, _word: &AtomicU32) {}
}
