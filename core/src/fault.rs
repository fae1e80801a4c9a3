//! Fault-injection hooks for tests (feature `fault-injection`).
//!
//! Liveness claims are about what happens when a participant stops *inside* an
//! operation (a queue push or pop, a lock or unlock, a wait). A signal sent
//! from outside lands at a random instruction; these hooks let a test stop a
//! participant at an exact point instead. The queues and locks call [`hit`] at
//! the [`Point`]s below; a test installs a hook with [`set_hook`] (in a forked
//! child, typically one that raises `SIGSTOP` on itself there).
//!
//! The feature is for tests only: without it, the calls compile to nothing.
//!
//! # Example
//!
//! ```
//! use ply_core::fault::{Point, set_hook};
//! use ply_core::queue::mpmc::ScqQueue;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! static HITS: AtomicUsize = AtomicUsize::new(0);
//! fn count(p: Point) {
//!     if p == Point::ScqPushSlotTaken {
//!         HITS.fetch_add(1, Ordering::SeqCst);
//!     }
//! }
//! set_hook(Some(count));
//! ScqQueue::<u8, 2>::new().push(1).unwrap();
//! set_hook(None);
//! assert_eq!(HITS.load(Ordering::SeqCst), 1);
//! ```

use core::sync::atomic::{AtomicUsize, Ordering};

/// A point inside a queue or lock operation where a participant can be stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// `mpmc::ArrayQueue::push`: the position is claimed, the value not yet
    /// published.
    ArrayPushClaimed,
    /// `mpmc::ArrayQueue::pop`: the position is claimed, the value not yet read.
    ArrayPopClaimed,
    /// `mpmc::ScqQueue::push`: a free slot is taken, the value not yet published.
    ScqPushSlotTaken,
    /// `mpmc::ScqQueue::pop`: the value's index is taken, the value not yet read.
    ScqPopIndexTaken,
    /// `sync::TicketMutex::lock`: a ticket is taken, its turn not yet come.
    TicketWaiting,
    /// `sync::RwLock` write: the waiting writer has announced itself (new readers
    /// stand aside), the lock is not yet held.
    RwWriterWaiting,
    /// `sync::RobustMutex` lock: a waiter has flagged itself on the lock word
    /// and is about to park.
    RobustWaiting,
    /// `sync::RobustMutex` lock: the lock word names this owner; the lock has
    /// not yet been handed to the caller.
    RobustLocked,
    /// `sync::RobustMutex` unlock: the guard is dropping; the lock word still
    /// names this owner.
    RobustUnlocking,
    /// `sync::EventCount`: the waiter is registered and about to sleep.
    EventCountWaiting,
    /// `sync::EventCount`: the waiter saw a notify, and has not yet re-checked
    /// its condition.
    EventCountNotified,
}

/// The installed hook, as a `fn(Point)` address (0: none).
static HOOK: AtomicUsize = AtomicUsize::new(0);

/// Installs `hook` (or removes it with `None`) for this process.
///
/// # Example
///
/// ```
/// ply_core::fault::set_hook(None);
/// ```
pub fn set_hook(hook: Option<fn(Point)>) {
    // Release: a thread that sees the address also sees the function's code
    // and any state the test set up before installing it.
    HOOK.store(hook.map_or(0, |f| f as usize), Ordering::Release);
}

/// Calls the installed hook, if any, at `point`.
#[inline]
pub(crate) fn hit(point: Point) {
    // Acquire: pairs with the Release in `set_hook`.
    let address = HOOK.load(Ordering::Acquire);
    if address != 0 {
        // SAFETY: the only non-zero values ever stored are `fn(Point)` addresses
        // (from `set_hook`), and function pointers round-trip through `usize`.
        let hook: fn(Point) = unsafe { core::mem::transmute::<usize, fn(Point)>(address) };
        hook(point);
    }
}
