//! [`RwLock`]: a writer-preferring reader-writer spin lock.
//!
//! # Algorithm
//!
//! One word holds the state — bit 0: a writer holds the lock; the rest: the
//! number of readers, in steps of 2 — and a second counts writers waiting.
//! Readers enter with a CAS that adds a reader, but only while no writer holds
//! *or waits*; a waiting writer registers first, so new readers stand aside, the
//! current ones drain, and the writer's CAS from 0 succeeds. Writers therefore
//! cannot be starved by a steady stream of readers — `spin::RwLock` lets them
//! be, which is why ply has its own.
//!
//! # Across processes
//!
//! Two words, no pointers: works in `MAP_SHARED` memory. A process that dies
//! holding the lock (or registered as a waiting writer) blocks the others; use the
//! bounded forms where that matters.

use crossbeam_utils::CachePadded;

use crate::primitive::{AtomicUsize, Backoff, Ordering};
use crate::sync::Patience;
use crate::sync::patience::Forever;

const WRITER: usize = 1;
const READER: usize = 2;

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
    /// `WRITER` bit, plus `READER` per reader inside.
    state: CachePadded<AtomicUsize>,
    /// Writers waiting to enter; while non-zero, new readers wait.
    writers_waiting: CachePadded<AtomicUsize>,
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
            writers_waiting: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// An unlocked lock (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        RawRwLock {
            state: CachePadded::new(AtomicUsize::new(0)),
            writers_waiting: CachePadded::new(AtomicUsize::new(0)),
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
        // SeqCst on this load and on the writer's registration: a reader and a
        // writer each write one word and then read the other's (the Dekker
        // pattern); only SeqCst rules out both missing each other. (Missing
        // would only cost the writer's preference, not exclusion: the CAS on
        // `state` alone guarantees that.)
        if self.writers_waiting.load(Ordering::SeqCst) != 0 {
            return false;
        }
        let state = self.state.load(Ordering::Relaxed);
        state & WRITER == 0
            && state.checked_add(READER).is_some()
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
        loop {
            if self.try_read() {
                return true;
            }
            if !patience.keep_waiting() {
                return false;
            }
            backoff.snooze();
        }
    }

    /// Leaves as a reader.
    ///
    /// # Safety
    ///
    /// The caller must hold a read lock.
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
        self.state.fetch_sub(READER, Ordering::Release);
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
        // Acquire: the previous readers' and writer's sections are visible.
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
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
        if self.try_write() {
            return true;
        }
        // Register, so new readers stand aside (SeqCst: see `try_read`).
        self.writers_waiting.fetch_add(1, Ordering::SeqCst);
        let backoff = Backoff::new();
        let entered = loop {
            if self.try_write() {
                break true;
            }
            if !patience.keep_waiting() {
                break false;
            }
            backoff.snooze();
        };
        self.writers_waiting.fetch_sub(1, Ordering::SeqCst);
        entered
    }

    /// Leaves as the writer.
    ///
    /// # Safety
    ///
    /// The caller must hold the write lock.
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
        // Release: our writes happen before the next reader's or writer's entry.
        self.state.fetch_and(!WRITER, Ordering::Release);
    }

    /// Whether anyone holds the lock (a snapshot).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_core::sync::RawRwLock::new().is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }

    /// Writers waiting to enter (a snapshot). For tests and diagnostics.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_core::sync::RawRwLock::new().writers_waiting(), 0);
    /// ```
    pub fn writers_waiting(&self) -> usize {
        self.writers_waiting.load(Ordering::Relaxed)
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
// SAFETY: a writer enters only by CAS from 0 (no readers, no writer) to WRITER,
// and readers only while WRITER is clear, so a writer excludes everyone and
// readers exclude writers, as `RawRwLock` requires. Unlocks are called only by
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
