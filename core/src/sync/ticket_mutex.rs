//! [`TicketMutex`]: a FIFO-fair spin lock.
//!
//! # Algorithm
//!
//! The ticket lock (Mellor-Crummey & Scott, "Algorithms for Scalable
//! Synchronization on Shared-Memory Multiprocessors", TOCS 1991): `lock` takes a
//! ticket with one `fetch_add` on `next` and waits until `serving` reaches it;
//! `unlock` advances `serving`. Threads get the lock in the order they asked for
//! it — no starvation — at the price of handing the lock to a waiter that may be
//! descheduled (a convoy), so it suits short critical sections on dedicated cores.
//! The next waiter in line polls tightly; the others back off. With more threads
//! than cores, a FIFO spin lock can only progress when the next ticket holder is
//! running: with the `std` feature, waiters therefore yield to the OS scheduler
//! while they wait (without it, in firmware, there is one thread per core).
//!
//! `spin` has a ticket mutex too; this one adds the graded waiting (tight for the
//! next in line, backoff and yielding for the rest) and the bounded
//! [`lock_with`](RawTicketMutex::lock_with), and shares ply's `Patience`.
//!
//! # Across processes
//!
//! Two counters, no pointers: works in `MAP_SHARED` memory. A process that dies
//! holding the lock, *or holding a ticket while waiting*, stops every later ticket
//! for good; prefer [`SpinMutex`](super::SpinMutex) where a participant may die.

use crossbeam_utils::CachePadded;

use crate::primitive::{AtomicUsize, Backoff, Ordering, yield_now};
use crate::sync::Patience;

/// The raw FIFO lock behind [`TicketMutex`].
///
/// # Example
///
/// ```
/// use ply_core::sync::RawTicketMutex;
///
/// let raw = RawTicketMutex::new();
/// raw.lock();
/// assert!(!raw.try_lock());
/// // SAFETY: locked just above.
/// unsafe { raw.unlock() };
/// assert!(raw.try_lock());
/// ```
#[derive(Debug)]
pub struct RawTicketMutex {
    /// The next ticket to hand out.
    next: CachePadded<AtomicUsize>,
    /// The ticket that holds the lock now; `serving == next` means unlocked.
    serving: CachePadded<AtomicUsize>,
}

impl RawTicketMutex {
    /// An unlocked lock.
    ///
    /// # Example
    ///
    /// ```
    /// static LOCK: ply_core::sync::RawTicketMutex = ply_core::sync::RawTicketMutex::new();
    /// assert!(!LOCK.is_locked());
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RawTicketMutex {
            next: CachePadded::new(AtomicUsize::new(0)),
            serving: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// An unlocked lock (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        RawTicketMutex {
            next: CachePadded::new(AtomicUsize::new(0)),
            serving: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Takes a ticket and waits for its turn.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawTicketMutex::new();
    /// raw.lock();
    /// assert!(raw.is_locked());
    /// ```
    pub fn lock(&self) {
        // Relaxed: taking a ticket publishes nothing; the Acquire load of
        // `serving` below is what orders us after the previous holder.
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let backoff = Backoff::new();
        let mut polls = 0u32;
        loop {
            let serving = self.serving.load(Ordering::Acquire);
            if serving == ticket {
                return;
            }
            if ticket.wrapping_sub(serving) == 1 {
                // Next in line: poll tightly so the hand-off is not delayed,
                // but yield now and then: the holder may be preempted.
                polls += 1;
                if polls % 64 == 0 {
                    yield_now();
                } else {
                    core::hint::spin_loop();
                }
            } else if backoff.is_completed() {
                // Further back and backed off: give the CPU to the holder or the
                // next in line, which may be waiting for one.
                yield_now();
            } else {
                backoff.snooze();
            }
        }
    }

    /// Takes the lock only if it is free and nobody is waiting.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawTicketMutex::new();
    /// assert!(raw.try_lock());
    /// assert!(!raw.try_lock());
    /// ```
    pub fn try_lock(&self) -> bool {
        let serving = self.serving.load(Ordering::Relaxed);
        // Take ticket `serving` only if it is the next one: then it is served
        // at once. Acquire on success: as in `lock`.
        self.next
            .compare_exchange(
                serving,
                serving.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Retries [`try_lock`](Self::try_lock) until `patience` runs out; `true` if
    /// taken. It never takes a ticket it might abandon (an abandoned ticket would
    /// block every later one), so a bounded waiter is not FIFO-fair.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{RawTicketMutex, Spins};
    ///
    /// let raw = RawTicketMutex::new();
    /// raw.lock();
    /// assert!(!raw.lock_with(Spins(10)));
    /// ```
    pub fn lock_with(&self, mut patience: impl Patience) -> bool {
        loop {
            if self.try_lock() {
                return true;
            }
            if !patience.keep_waiting() {
                return false;
            }
            core::hint::spin_loop();
            #[cfg(loom)]
            loom::thread::yield_now();
        }
    }

    /// Passes the lock to the next ticket.
    ///
    /// # Safety
    ///
    /// The lock must be held by the caller.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawTicketMutex::new();
    /// raw.lock();
    /// // SAFETY: locked just above.
    /// unsafe { raw.unlock() };
    /// assert!(!raw.is_locked());
    /// ```
    pub unsafe fn unlock(&self) {
        // Only the holder writes `serving`, so load-then-store is not a race.
        // Release: publishes the critical section to the next ticket's Acquire.
        let serving = self.serving.load(Ordering::Relaxed);
        self.serving
            .store(serving.wrapping_add(1), Ordering::Release);
    }

    /// Whether the lock is held (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_core::sync::RawTicketMutex::new().is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.next.load(Ordering::Relaxed) != self.serving.load(Ordering::Relaxed)
    }

    /// Tickets handed out since creation (wrapping): the holder plus waiters
    /// plus every finished holder. For tests and diagnostics.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawTicketMutex::new();
    /// raw.lock();
    /// assert_eq!(raw.tickets_issued(), 1);
    /// ```
    pub fn tickets_issued(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }
}

#[cfg(not(loom))]
impl Default for RawTicketMutex {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(loom))]
// SAFETY: a ticket is served only when `serving` equals it, and only the
// holder advances `serving`, so exactly one ticket holds the lock at a time.
unsafe impl lock_api::RawMutex for RawTicketMutex {
    #[allow(clippy::declare_interior_mutable_const)] // lock_api's required pattern
    const INIT: Self = Self::new();
    // Not `Send`, as std's and parking_lot's guards: a guard is this thread's
    // hold on the lock. Sent to a forked child, it would be held twice: by
    // the child, and by the parent's copy, which unlocks when dropped.
    type GuardMarker = lock_api::GuardNoSend;

    #[inline]
    fn lock(&self) {
        RawTicketMutex::lock(self);
    }

    #[inline]
    fn try_lock(&self) -> bool {
        RawTicketMutex::try_lock(self)
    }

    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract: lock_api calls this only for the holder.
        unsafe { RawTicketMutex::unlock(self) }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        RawTicketMutex::is_locked(self)
    }
}

// SAFETY: the lock is released in ticket order, so it is fair as `RawMutexFair`
// promises: `unlock_fair` is plain `unlock`.
#[cfg(not(loom))]
unsafe impl lock_api::RawMutexFair for RawTicketMutex {
    unsafe fn unlock_fair(&self) {
        // SAFETY: forwarded contract.
        unsafe { RawTicketMutex::unlock(self) }
    }
}

/// A FIFO-fair spin lock protecting a `T`.
///
/// # Example
///
/// ```
/// use ply_core::sync::TicketMutex;
///
/// let log = TicketMutex::new(Vec::new());
/// std::thread::scope(|s| {
///     for t in 0..3 {
///         let log = &log;
///         s.spawn(move || log.lock().push(t));
///     }
/// });
/// assert_eq!(log.lock().len(), 3);
/// ```
#[cfg(not(loom))]
pub type TicketMutex<T> = lock_api::Mutex<RawTicketMutex, T>;

/// The guard of a [`TicketMutex`].
#[cfg(not(loom))]
pub type TicketMutexGuard<'a, T> = lock_api::MutexGuard<'a, RawTicketMutex, T>;
