//! [`TicketMutex`]: a FIFO-fair spin lock.
//!
//! # Algorithm
//!
//! The ticket lock (Mellor-Crummey & Scott, "Algorithms for Scalable
//! Synchronization on Shared-Memory Multiprocessors", TOCS 1991): `lock` takes a
//! ticket with one `fetch_add` on `next` and waits until `serving` reaches it;
//! `unlock` advances `serving`. A lock that is free with nobody waiting (every
//! ticket handed out has been served) is taken without a ticket, by one CAS
//! that marks the current turn taken and *unticketed*; its `unlock` reopens the
//! same turn for the next ticket. So the uncontended path costs what a plain
//! spin lock's does, and nobody is overtaken: a ticket taken meanwhile is
//! served next. Threads get the lock in the order they asked for
//! it — no starvation — at the price of handing the lock to a waiter that may be
//! descheduled (a convoy), so it suits short critical sections on dedicated cores.
//! The next waiter in line polls tightly; the others back off. With more threads
//! than cores, a FIFO spin lock can only progress when the next ticket holder is
//! running: with the `std` feature, waiters therefore yield to the OS scheduler
//! while they wait (without it, in firmware, there is one thread per core).
//!
//! # A waiter that never takes its turn
//!
//! A classic ticket lock hands the lock to a *ticket*, not to a thread: a
//! waiter that dies after taking its ticket (a process killed inside `lock`)
//! leaves its turn untaken, and every later ticket waits for it forever. Here
//! a turn must be *claimed*: `serving` holds the ticket whose turn it is and a
//! `TAKEN` bit, and the lock is held only once that ticket's waiter has set the
//! bit with a compare-and-swap. A turn that stays untaken while another waiter
//! yields to the scheduler `REVOKE_AFTER` (2^14) times (tens of milliseconds,
//! with an OS) is *revoked*: that waiter moves `serving` to the next ticket with a CAS on the
//! same untaken value. The claim and the revocation compare against the same
//! word, so exactly one of them wins: a waiter that was merely slow (preempted,
//! stopped) and finds its turn revoked takes a new ticket at the back of the
//! line — it never holds the lock alongside another.
//!
//! The cost is fairness for that one slow waiter, and one revocation delay for
//! the waiters behind a dead one. Only waiters that wait revoke: `lock`, and
//! the raw [`lock_with`](RawTicketMutex::lock_with) given enough patience.
//! `try_lock` never does, nor does [`LockWith::lock_with`](super::LockWith) on
//! a [`TicketMutex`] (that trait serves every `lock_api` lock by retrying
//! `try_lock`): until some `lock` call revokes a dead waiter's turn, they keep
//! timing out.
//!
//! `spin` has a ticket mutex too; this one adds the graded waiting (tight for
//! the next in line, backoff and yielding for the rest), the revocable turns,
//! and the bounded [`lock_with`](RawTicketMutex::lock_with), and shares ply's
//! `Patience`.
//!
//! # Memory ordering
//!
//! The claim CAS is `Acquire` and `unlock`'s store of the next turn is
//! `Release`: the next holder sees the previous critical section. A revocation
//! is a relaxed read-modify-write of `serving`, so it continues the release
//! sequence headed by that store: a holder whose claim reads a revoked value
//! still synchronizes with the last `unlock`. Tickets are handed out with a
//! relaxed `fetch_add`: a ticket publishes nothing.
//!
//! # Across processes
//!
//! Two counters, no pointers: works in `MAP_SHARED` memory. A process that dies
//! *waiting* costs the others one revocation delay (`tests/shared_sync.rs` kills
//! and stops waiters inside `lock`). A process that dies *holding* the lock
//! leaves it held for good: use [`RobustMutex`](super::RobustMutex) where a
//! holder may die.

use crossbeam_utils::CachePadded;

use crate::primitive::{AtomicUsize, Backoff, Ordering, yield_now};
use crate::sync::Patience;
#[cfg(all(test, not(loom)))]
use crate::sync::Spins;

/// How many of its yields to the scheduler a waiter sits through while one
/// turn stays untaken before it revokes that turn. A live waiter at its turn
/// polls tightly, so it takes its turn at once unless it is off the CPU; each
/// of these yields hands the CPU to another runnable thread if there is one,
/// so a waiter that is merely preempted gets to run long before the count is
/// reached (tens of milliseconds on an idle machine, longer under load). Small
/// under loom and Miri, which explore or interpret every step.
#[cfg(not(loom))]
const REVOKE_AFTER: u32 = if cfg!(miri) { 4 } else { 1 << 14 };
/// Yields before revoking an untaken turn (loom build).
#[cfg(loom)]
const REVOKE_AFTER: u32 = 1;

/// The next waiter in line yields once every this many polls (every poll under
/// loom, where a poll that does not yield is a wasted model step).
const POLLS_PER_YIELD: u32 = if cfg!(loom) { 1 } else { 64 };

/// `serving`: the turn's ticket shifted left by [`TURN_SHIFT`], and this bit
/// once the lock is held (by the turn's waiter, or taken with no ticket).
const TAKEN: usize = 1;

/// `serving`: with [`TAKEN`], the lock was taken with no ticket while nobody
/// waited (the fast path), so `unlock` leaves the turn where it is.
const UNTICKETED: usize = 2;

/// Where the turn starts in `serving`, above [`TAKEN`] and [`UNTICKETED`].
const TURN_SHIFT: u32 = 2;

/// Tickets live in `usize::BITS - 2` bits (they share `serving` with the flags).
const TICKET_MASK: usize = usize::MAX >> TURN_SHIFT;

/// The turn recorded in a `serving` value.
fn turn_of(serving: usize) -> usize {
    serving >> TURN_SHIFT
}

/// The `serving` value of `turn`, open and untaken.
fn open(turn: usize) -> usize {
    (turn & TICKET_MASK) << TURN_SHIFT
}

/// The `serving` value after the holder of the taken turn `serving` unlocks:
/// the same turn reopened if it was taken with no ticket (it is still the next
/// ticket's), else the next turn.
fn released(serving: usize) -> usize {
    if serving & UNTICKETED != 0 {
        open(turn_of(serving))
    } else {
        open(turn_of(serving) + 1)
    }
}

/// Whether `turn` is past `ticket`, i.e. `ticket`'s turn was revoked (modular:
/// tickets wrap around).
fn passed(turn: usize, ticket: usize) -> bool {
    let ahead = ticket.wrapping_sub(turn) & TICKET_MASK;
    ahead > TICKET_MASK / 2
}

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
    /// The next ticket to hand out (masked with `TICKET_MASK` when used).
    next: CachePadded<AtomicUsize>,
    /// `turn << TURN_SHIFT | flags`: whose turn it is, whether the lock is
    /// held ([`TAKEN`]), and whether it was taken with no ticket
    /// ([`UNTICKETED`]). Unlocked and idle: `turn == next`, not taken.
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

    /// Takes the lock at once if it is free and nobody waits; otherwise takes
    /// a ticket and waits for its turn.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawTicketMutex::new();
    /// raw.lock();
    /// assert!(raw.is_locked());
    /// ```
    pub fn lock(&self) {
        // Free with nobody waiting: take it without a ticket (one CAS).
        if self.try_lock() {
            return;
        }
        let ticket = self.take_ticket();
        crate::fault_point!(TicketWaiting);
        self.wait_turn(ticket);
    }

    /// Hands out the next ticket.
    fn take_ticket(&self) -> usize {
        // Relaxed: taking a ticket publishes nothing; the Acquire claim of the
        // turn is what orders us after the previous holder.
        self.next.fetch_add(1, Ordering::Relaxed) & TICKET_MASK
    }

    /// Waits for `ticket`'s turn and claims it (queueing again if it was revoked).
    fn wait_turn(&self, mut ticket: usize) {
        let backoff = Backoff::new();
        let mut watch = Watch::default();
        let mut polls = 0u32;
        loop {
            let serving = self.serving.load(Ordering::Relaxed);
            let turn = turn_of(serving);
            if turn == ticket && serving & TAKEN == 0 {
                if self.claim(serving) {
                    return;
                }
                continue;
            }
            if passed(turn, ticket) {
                // Our turn was revoked while we were not running: queue again
                // at the back.
                ticket = self.take_ticket();
                continue;
            }
            // Our turn taken with no ticket (see `try_lock`), or the one before
            // ours: we are next.
            let next_in_line = ticket.wrapping_sub(turn) & TICKET_MASK <= 1;
            let yielded = if next_in_line {
                // Next in line: poll tightly so the hand-off is not delayed,
                // but yield now and then: the holder may be preempted.
                polls = polls.wrapping_add(1);
                polls % POLLS_PER_YIELD == 0
            } else {
                // Further back: back off, then give the CPU to the holder or
                // the next in line, which may be waiting for one.
                backoff.is_completed()
            };
            if yielded {
                if watch.untaken_for_too_long(serving) {
                    self.revoke(serving);
                    continue;
                }
                yield_now();
            } else if next_in_line {
                core::hint::spin_loop();
            } else {
                backoff.snooze();
            }
        }
    }

    /// Claims the untaken turn `serving` (ours); `false` if it was revoked.
    fn claim(&self, serving: usize) -> bool {
        // Acquire: the previous holder's critical section (published by the
        // Release in `unlock`, and carried through any revocations) is visible.
        self.serving
            .compare_exchange(
                serving,
                serving | TAKEN,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Moves an untaken turn `serving` on to the next ticket, unless its waiter
    /// claimed it meanwhile (then the CAS fails and nothing happens).
    fn revoke(&self, serving: usize) {
        // Relaxed: a read-modify-write continues the release sequence of the
        // `unlock` that wrote `serving`, so the next claimer still
        // synchronizes with it; the revoker itself acquires nothing.
        let next_turn = open(turn_of(serving) + 1);
        let _ =
            self.serving
                .compare_exchange(serving, next_turn, Ordering::Relaxed, Ordering::Relaxed);
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
        // Free, and no ticket handed out that has not been served: nobody
        // waits, so the lock may be taken without a ticket, leaving the turn
        // to whoever takes the next one. One CAS, the cost of a plain spin
        // lock. A ticket taken between the `next` load and the CAS waits for
        // our `unlock`, which reopens the same turn for it: it only lost the
        // race to a `try_lock` that came first. Its waiter never revokes that
        // turn (one only revokes turns before its own, and only untaken ones).
        serving & TAKEN == 0
            && self.next.load(Ordering::Relaxed) & TICKET_MASK == turn_of(serving)
            // Acquire: as in `claim`. Fails if the turn moved or was taken
            // meanwhile (a revocation moves it, a claim takes it).
            && self
                .serving
                .compare_exchange(
                    serving,
                    serving | TAKEN | UNTICKETED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Retries [`try_lock`](Self::try_lock) until `patience` runs out; `true` if
    /// taken. It never takes a ticket it might abandon (an abandoned ticket
    /// delays every later one until revoked), so a bounded waiter is not
    /// FIFO-fair. While it waits it revokes a turn left untaken through
    /// `REVOKE_AFTER` (2^14) of its yields, as `lock` does.
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
        let backoff = Backoff::new();
        let mut watch = Watch::default();
        loop {
            if self.try_lock() {
                return true;
            }
            if !patience.keep_waiting() {
                return false;
            }
            if backoff.is_completed() {
                let serving = self.serving.load(Ordering::Relaxed);
                // Only a turn whose ticket was handed out may be revoked: an
                // idle lock's turn (equal to `next`) must stay where it is.
                let handed_out =
                    turn_of(serving) != self.next.load(Ordering::Relaxed) & TICKET_MASK;
                if handed_out && watch.untaken_for_too_long(serving) {
                    self.revoke(serving);
                }
                yield_now();
            } else {
                backoff.snooze();
            }
        }
    }

    /// Passes the lock to the next ticket.
    ///
    /// # Safety
    ///
    /// The lock must be held by the caller. Called on a free lock, it would
    /// move the turn past every ticket handed out and break the lock for good
    /// (debug builds assert instead); where that cannot be ruled out (a C
    /// caller), use [`unlock_checked`](Self::unlock_checked).
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
        // While the turn is taken only the holder writes `serving` (claims and
        // revocations need it untaken), so load-then-store is not a race.
        // Release: publishes the critical section to the next claim's Acquire.
        let serving = self.serving.load(Ordering::Relaxed);
        debug_assert!(serving & TAKEN != 0, "unlock of an unlocked TicketMutex");
        self.serving.store(released(serving), Ordering::Release);
    }

    /// [`unlock`](Self::unlock) that first checks the lock is held: on a free
    /// lock it changes nothing and returns `false`. One CAS instead of a
    /// store, for callers that cannot be trusted to hold the lock (ply's C
    /// ABI).
    ///
    /// # Safety
    ///
    /// The lock must be held by the caller, or by nobody. The check sees only
    /// *whether* the lock is held, not by whom: unlocking a lock that another
    /// party holds still breaks its exclusion.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawTicketMutex::new();
    /// // SAFETY: nobody holds it.
    /// assert!(!unsafe { raw.unlock_checked() });
    /// assert!(raw.try_lock(), "the refused unlock changed nothing");
    /// // SAFETY: locked just above.
    /// assert!(unsafe { raw.unlock_checked() });
    /// assert!(!raw.is_locked());
    /// ```
    #[must_use = "`false` means the lock was not held: the caller's bug"]
    pub unsafe fn unlock_checked(&self) -> bool {
        let mut serving = self.serving.load(Ordering::Relaxed);
        // A CAS, not `unlock`'s store: the lock may be free, so claims and
        // revocations may write `serving` between our load and our write.
        // Release on success, as in `unlock`; a read-modify-write that
        // continues the release sequence like a revocation does.
        while serving & TAKEN != 0 {
            match self.serving.compare_exchange_weak(
                serving,
                released(serving),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => serving = actual,
            }
        }
        false
    }

    /// Whether the lock is held (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_core::sync::RawTicketMutex::new().is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.serving.load(Ordering::Relaxed) & TAKEN != 0
    }

    /// Tickets handed out since creation (wrapping): one per `lock` that had
    /// to wait (a lock taken while free with nobody waiting needs none). For
    /// tests and diagnostics.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawTicketMutex::new();
    /// raw.lock(); // free: taken without a ticket
    /// assert_eq!(raw.tickets_issued(), 0);
    /// ```
    pub fn tickets_issued(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }
}

/// A waiter's count of how long it has seen one turn stay untaken.
#[derive(Default)]
struct Watch {
    seen: usize,
    yields: u32,
}

impl Watch {
    /// Called before each yield of a waiter that saw `serving`: `true` once the
    /// same untaken turn has lasted through `REVOKE_AFTER` (2^14) of them (a taken
    /// turn, or a different one, starts the count again).
    fn untaken_for_too_long(&mut self, serving: usize) -> bool {
        if serving & TAKEN != 0 || serving != self.seen {
            *self = Watch {
                seen: serving,
                yields: 0,
            };
            return false;
        }
        self.yields += 1;
        self.yields >= REVOKE_AFTER
    }
}

#[cfg(not(loom))]
impl Default for RawTicketMutex {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(loom))]
// SAFETY: the lock is held by whoever set `TAKEN` on the current turn, with a
// CAS from the untaken value; revocations and other claims need that same
// untaken value, and only the holder clears `TAKEN` (in `unlock`), so exactly
// one party holds the lock at a time.
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

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;
