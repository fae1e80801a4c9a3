//! [`RwLock`]: a writer-preferring reader-writer spin lock.
//!
//! # Algorithm
//!
//! One word holds the whole state (readers hold it with a CAS, the writer with
//! a CAS, so there is no Dekker handshake between words):
//!
//! | bits | meaning |
//! |---|---|
//! | 0 (`WRITER`) | a writer holds the lock |
//! | 1–2 (`ANNOUNCE`) | a writer is waiting: a lease counter, 0 when none |
//! | 3.. (`READER` = 8 each) | readers inside |
//!
//! Readers enter with a CAS that adds a reader, but only while no writer holds
//! the lock *or has announced itself*; a waiting writer announces itself, so
//! new readers stand aside, the current ones drain, and the writer's CAS (from
//! "no readers, no writer", clearing the announcement) succeeds. Writers
//! therefore cannot be starved by a steady stream of readers — `spin::RwLock`
//! lets them be, which is why ply has its own.
//!
//! # A writer that dies (or stops) while waiting
//!
//! A count of waiting writers, as readers would consult it, stays raised for
//! good if a writer dies while counted (a process killed inside `write`), and
//! locks every reader out. Here the announcement is a *lease*: a waiting writer
//! renews it on every poll by stepping the 2-bit counter (1 → 2 → 3 → 1), and a
//! waiting reader that sees the same non-zero value, with no writer inside, for
//! `EXPIRE_AFTER` (2^14) of its polls clears it and enters. A live writer keeps
//! stepping it and keeps its preference; a dead or stopped one loses it after
//! one expiry delay, paid once (by the first reader to notice), not by every
//! reader. A writer that gives up clears the announcement itself; any other
//! writer still waiting renews it on its next poll.
//!
//! The expiry only weakens writer preference, never exclusion: readers and
//! writers still enter only through CASes on the one word, and a writer only
//! from "no readers, no writer".
//!
//! # Across processes
//!
//! One word, no pointers: works in `MAP_SHARED` memory. A process that dies
//! *waiting* to write costs readers one expiry delay (`tests/shared_sync.rs`
//! kills and stops writers inside `write`). A process that dies *holding* the
//! lock blocks the others for good; use the bounded forms where that matters,
//! or [`RobustMutex`](super::RobustMutex) for exclusive access that survives a
//! holder's death.

use crossbeam_utils::CachePadded;

use crate::primitive::{AtomicUsize, Backoff, Ordering, yield_now};
use crate::sync::Patience;
use crate::sync::patience::Forever;

const WRITER: usize = 1;
/// The waiting writers' lease counter (see the module docs).
const ANNOUNCE: usize = 0b110;
/// One step of the lease counter.
const ANNOUNCE_ONE: usize = 0b010;
const READER: usize = 8;

/// How many of its polls a waiting reader sits through, seeing one unchanged
/// writer announcement and no writer inside, before it expires the
/// announcement. A live waiting writer renews it every poll, so it only runs
/// out for a writer that is not running (dead, stopped, or descheduled for as
/// long). Each poll after the reader's backoff is a yield to the scheduler.
/// Small under loom and Miri, which explore or interpret every step.
#[cfg(not(loom))]
const EXPIRE_AFTER: u32 = if cfg!(miri) { 4 } else { 1 << 14 };
/// Polls before a reader expires a stale writer announcement (loom build).
#[cfg(loom)]
const EXPIRE_AFTER: u32 = 1;

/// The announcement after `state`'s: the next non-zero value of the counter.
fn renewed(state: usize) -> usize {
    let next = match state & ANNOUNCE {
        0b110 => ANNOUNCE_ONE,
        a => a + ANNOUNCE_ONE,
    };
    (state & !ANNOUNCE) | next
}

/// The raw lock behind [`RwLock`].
///
/// # Example
///
/// ```
/// use ply_core::sync::RawRwLock;
///
/// let raw = RawRwLock::new();
/// assert!(raw.try_read());
/// assert!(raw.try_read());
/// assert!(!raw.try_write()); // two readers inside
/// // SAFETY: two read locks are held, taken just above.
/// unsafe {
///     raw.unlock_read();
///     raw.unlock_read();
/// }
/// assert!(raw.try_write());
/// ```
#[derive(Debug)]
pub struct RawRwLock {
    /// `WRITER` bit, the `ANNOUNCE` lease, and `READER` per reader inside.
    state: CachePadded<AtomicUsize>,
}

impl RawRwLock {
    /// An unlocked lock.
    ///
    /// # Example
    ///
    /// ```
    /// static LOCK: ply_core::sync::RawRwLock = ply_core::sync::RawRwLock::new();
    /// assert!(LOCK.try_read());
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        RawRwLock {
            state: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// An unlocked lock (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        RawRwLock {
            state: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Enters as a reader if no writer holds or waits for the lock.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawRwLock::new();
    /// assert!(raw.try_read());
    /// ```
    pub fn try_read(&self) -> bool {
        let state = self.state.load(Ordering::Relaxed);
        state & (WRITER | ANNOUNCE) == 0 && self.add_reader(state)
    }

    /// Adds a reader to `state` with one CAS; `false` if the state changed.
    fn add_reader(&self, state: usize) -> bool {
        state.checked_add(READER).is_some()
            // Acquire: the last writer's critical section is visible to us.
            && self
                .state
                .compare_exchange(state, state + READER, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Enters as a reader, waiting while a writer holds or waits for the lock.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawRwLock::new();
    /// raw.read();
    /// assert!(raw.is_locked());
    /// ```
    pub fn read(&self) {
        self.read_with(Forever);
    }

    /// Enters as a reader unless `patience` runs out first; `true` if entered.
    /// Expires the announcement of a waiting writer that has stopped renewing
    /// it (see the module docs).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{RawRwLock, Spins};
    ///
    /// let raw = RawRwLock::new();
    /// raw.write();
    /// assert!(!raw.read_with(Spins(10)));
    /// ```
    pub fn read_with(&self, mut patience: impl Patience) -> bool {
        let backoff = Backoff::new();
        // The announcement seen, and for how many polls in a row.
        let mut seen = 0;
        let mut polls = 0u32;
        loop {
            let state = self.state.load(Ordering::Relaxed);
            if state & (WRITER | ANNOUNCE) == 0 {
                if self.add_reader(state) {
                    return true;
                }
                continue;
            }
            if state & WRITER == 0 {
                // Only announced: count how long the announcement stays put.
                if state & ANNOUNCE == seen {
                    polls += 1;
                } else {
                    (seen, polls) = (state & ANNOUNCE, 0);
                }
                if polls >= EXPIRE_AFTER {
                    // Its writer stopped renewing it: enter past it (one CAS
                    // clears it and adds us), or start over if anything moved.
                    let entered = state.checked_add(READER).is_some()
                        // Acquire: as in `add_reader`.
                        && self
                            .state
                            .compare_exchange(
                                state,
                                (state & !ANNOUNCE) + READER,
                                Ordering::Acquire,
                                Ordering::Relaxed,
                            )
                            .is_ok();
                    if entered {
                        return true;
                    }
                    polls = 0;
                    continue;
                }
            } else {
                polls = 0;
            }
            if !patience.keep_waiting() {
                return false;
            }
            if backoff.is_completed() {
                yield_now();
            } else {
                backoff.snooze();
            }
        }
    }

    /// Leaves as a reader.
    ///
    /// # Safety
    ///
    /// The caller must hold a read lock. Called with no reader inside, it
    /// would underflow the reader count and lock everyone out for good; where
    /// that cannot be ruled out (a C caller), use
    /// [`unlock_read_checked`](Self::unlock_read_checked).
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawRwLock::new();
    /// raw.read();
    /// // SAFETY: a read lock is held.
    /// unsafe { raw.unlock_read() };
    /// assert!(!raw.is_locked());
    /// ```
    pub unsafe fn unlock_read(&self) {
        // Release: our reads happen before a later writer's writes.
        let before = self.state.fetch_sub(READER, Ordering::Release);
        debug_assert!(before >= READER, "unlock_read of an RwLock with no reader");
    }

    /// [`unlock_read`](Self::unlock_read) that first checks a reader is
    /// inside: with none it changes nothing and returns `false`. A CAS loop
    /// instead of one `fetch_sub`, for callers that cannot be trusted to hold
    /// the lock (ply's C ABI).
    ///
    /// # Safety
    ///
    /// The caller must hold a read lock, or no reader may be inside. The check
    /// sees only *whether* readers are inside, not who: leaving in another
    /// reader's name still lets a writer in alongside that reader.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawRwLock::new();
    /// // SAFETY: no reader is inside.
    /// assert!(!unsafe { raw.unlock_read_checked() });
    /// assert!(raw.try_write(), "the refused unlock changed nothing");
    /// ```
    #[must_use = "`false` means no reader was inside: the caller's bug"]
    pub unsafe fn unlock_read_checked(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        while state >= READER {
            // Release on success, as in `unlock_read`; Relaxed load and
            // failure: the value only seeds the CAS, which re-checks it.
            match self.state.compare_exchange_weak(
                state,
                state - READER,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
        false
    }

    /// Enters as the writer if nobody holds the lock.
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawRwLock::new();
    /// assert!(raw.try_write());
    /// assert!(!raw.try_read());
    /// ```
    pub fn try_write(&self) -> bool {
        let state = self.state.load(Ordering::Relaxed);
        state & !ANNOUNCE == 0 && self.take_write(state)
    }

    /// Takes the write lock from `state` (no readers, no writer), clearing any
    /// announcement; `false` if the state changed.
    fn take_write(&self, state: usize) -> bool {
        // Acquire: the previous readers' and writer's sections are visible.
        self.state
            .compare_exchange(state, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Enters as the writer, waiting for the readers inside to leave (new readers
    /// wait behind us).
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawRwLock::new();
    /// raw.write();
    /// assert!(raw.is_locked_write());
    /// ```
    pub fn write(&self) {
        self.write_with(Forever);
    }

    /// Enters as the writer unless `patience` runs out first; `true` if entered.
    /// While it waits it announces itself, so new readers stand aside.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{RawRwLock, Spins};
    ///
    /// let raw = RawRwLock::new();
    /// raw.read();
    /// assert!(!raw.write_with(Spins(10)));
    /// assert!(raw.try_read(), "a writer that gave up no longer holds readers back");
    /// ```
    pub fn write_with(&self, mut patience: impl Patience) -> bool {
        let backoff = Backoff::new();
        let mut announced = false;
        loop {
            let state = self.state.load(Ordering::Relaxed);
            if state & !ANNOUNCE == 0 {
                if self.take_write(state) {
                    return true;
                }
                continue;
            }
            // Announce ourselves, or renew the lease: readers stand aside while
            // it keeps changing. Relaxed: it orders nothing, it only asks
            // readers to wait (exclusion comes from the CASes above).
            let _ = self.state.compare_exchange_weak(
                state,
                renewed(state),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            if !announced {
                announced = true;
                crate::fault_point!(RwWriterWaiting);
            }
            if !patience.keep_waiting() {
                // Withdraw: clear the announcement. Another waiting writer
                // renews it on its next poll.
                self.state.fetch_and(!ANNOUNCE, Ordering::Relaxed);
                return false;
            }
            if backoff.is_completed() {
                yield_now();
            } else {
                backoff.snooze();
            }
        }
    }

    /// Leaves as the writer.
    ///
    /// # Safety
    ///
    /// The caller must hold the write lock. (Called with no writer inside it
    /// changes nothing; [`unlock_write_checked`](Self::unlock_write_checked)
    /// says so.)
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawRwLock::new();
    /// raw.write();
    /// // SAFETY: the write lock is held.
    /// unsafe { raw.unlock_write() };
    /// assert!(!raw.is_locked());
    /// ```
    pub unsafe fn unlock_write(&self) {
        // SAFETY: forwarded contract (the writer holds the lock).
        let held = unsafe { self.unlock_write_checked() };
        debug_assert!(held, "unlock_write of an RwLock with no writer");
    }

    /// [`unlock_write`](Self::unlock_write), returning whether a writer was
    /// inside: with none it changes nothing and returns `false`. The same one
    /// `fetch_and` as `unlock_write`: clearing a bit that is already clear
    /// writes the value back unchanged.
    ///
    /// # Safety
    ///
    /// The caller must hold the write lock, or no writer may be inside (the
    /// check cannot tell the writer from another party).
    ///
    /// # Example
    ///
    /// ```
    /// let raw = ply_core::sync::RawRwLock::new();
    /// assert!(raw.try_read());
    /// // SAFETY: no writer is inside.
    /// assert!(!unsafe { raw.unlock_write_checked() });
    /// assert!(raw.is_locked(), "the reader is still inside");
    /// ```
    #[must_use = "`false` means no writer was inside: the caller's bug"]
    pub unsafe fn unlock_write_checked(&self) -> bool {
        // Release: our writes happen before the next reader's or writer's
        // entry. Keeps any announcement: a writer that waited meanwhile still
        // goes before new readers.
        self.state.fetch_and(!WRITER, Ordering::Release) & WRITER != 0
    }

    /// Whether anyone holds the lock (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_core::sync::RawRwLock::new().is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & !ANNOUNCE != 0
    }

    /// Whether a waiting writer has announced itself, so that new readers stand
    /// aside (a snapshot). For tests and diagnostics.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_core::sync::RawRwLock::new().is_writer_waiting());
    /// ```
    pub fn is_writer_waiting(&self) -> bool {
        self.state.load(Ordering::Relaxed) & ANNOUNCE != 0
    }

    /// Whether a writer holds the lock (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_core::sync::RawRwLock::new().is_locked_write());
    /// ```
    pub fn is_locked_write(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WRITER != 0
    }
}

#[cfg(not(loom))]
impl Default for RawRwLock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(not(loom))]
// SAFETY: a writer enters only by CAS from a state with no readers and no
// writer to WRITER, and readers only by CAS from a state with WRITER clear, so
// a writer excludes everyone and readers exclude writers, as `RawRwLock`
// requires. Unlocks are called only by
// holders (lock_api's guards guarantee it).
unsafe impl lock_api::RawRwLock for RawRwLock {
    #[allow(clippy::declare_interior_mutable_const)] // lock_api's required pattern
    const INIT: Self = Self::new();
    // Not `Send`, as std's and parking_lot's guards: a guard is this thread's
    // hold on the lock. Sent to a forked child, it would be held twice: by
    // the child, and by the parent's copy, which unlocks when dropped.
    type GuardMarker = lock_api::GuardNoSend;

    #[inline]
    fn lock_shared(&self) {
        self.read();
    }

    #[inline]
    fn try_lock_shared(&self) -> bool {
        self.try_read()
    }

    #[inline]
    unsafe fn unlock_shared(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.unlock_read() }
    }

    #[inline]
    fn lock_exclusive(&self) {
        self.write();
    }

    #[inline]
    fn try_lock_exclusive(&self) -> bool {
        self.try_write()
    }

    #[inline]
    unsafe fn unlock_exclusive(&self) {
        // SAFETY: forwarded contract.
        unsafe { self.unlock_write() }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        RawRwLock::is_locked(self)
    }

    #[inline]
    fn is_locked_exclusive(&self) -> bool {
        self.is_locked_write()
    }
}

/// A writer-preferring reader-writer spin lock protecting a `T`.
///
/// # Example
///
/// ```
/// use ply_core::sync::RwLock;
///
/// let config = RwLock::new(String::from("v1"));
/// assert_eq!(*config.read(), "v1");
/// *config.write() = String::from("v2");
/// assert_eq!(*config.read(), "v2");
/// ```
#[cfg(not(loom))]
pub type RwLock<T> = lock_api::RwLock<RawRwLock, T>;

/// A read guard of a [`RwLock`].
#[cfg(not(loom))]
pub type RwLockReadGuard<'a, T> = lock_api::RwLockReadGuard<'a, RawRwLock, T>;

/// The write guard of a [`RwLock`].
#[cfg(not(loom))]
pub type RwLockWriteGuard<'a, T> = lock_api::RwLockWriteGuard<'a, RawRwLock, T>;

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;
