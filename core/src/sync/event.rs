//! [`Event`]: a flag threads can wait on (Python's `threading.Event`).
//!
//! One 32-bit word, 0 (clear) or 1 (set), and a count of waiters. `set` stores 1
//! and, if anyone waits, wakes them all; `wait` parks while the word reads 0. The
//! set/wait handshake is the same Dekker pattern as in
//! [`Semaphore`](super::Semaphore), with the same `SeqCst` remedy.
//!
//! # Across processes
//!
//! Two words, no pointers: works in `MAP_SHARED` memory (ply-os's futex park for
//! sleeping waiters).

use crate::primitive::{AtomicU32, Ordering};
use crate::sync::patience::Forever;
use crate::sync::{Park, Patience, SpinPark};

/// A settable flag with waiting.
///
/// # Example
///
/// ```
/// use ply_core::sync::Event;
///
/// let ready = Event::new();
/// std::thread::scope(|s| {
///     s.spawn(|| ready.set());
///     ready.wait();
/// });
/// assert!(ready.is_set());
/// ```
#[derive(Debug)]
pub struct Event<P: Park = SpinPark> {
    flag: AtomicU32,
    waiters: AtomicU32,
    park: P,
}

impl Event<SpinPark> {
    /// A clear event, waiting by spinning.
    ///
    /// # Example
    ///
    /// ```
    /// static E: ply_core::sync::Event = ply_core::sync::Event::new();
    /// assert!(!E.is_set());
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self::with_park(SpinPark)
    }

    /// A clear event (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self::with_park(SpinPark)
    }
}

#[cfg(not(loom))]
impl Default for Event<SpinPark> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Park> Event<P> {
    /// A clear event that waits through `park`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{Event, SpinPark};
    /// assert!(!Event::with_park(SpinPark).is_set());
    /// ```
    #[cfg(not(loom))]
    pub const fn with_park(park: P) -> Self {
        Event {
            flag: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            park,
        }
    }

    /// A clear event that waits through `park` (loom build).
    #[cfg(loom)]
    pub fn with_park(park: P) -> Self {
        Event {
            flag: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            park,
        }
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// # Example
    ///
    /// ```
    /// let e = ply_core::sync::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    pub fn set(&self) {
        // SeqCst: pairs with the waiter's registration (module docs); also a
        // release, publishing what was done before `set` to the waiters.
        if self.flag.swap(1, Ordering::SeqCst) == 0 && self.waiters.load(Ordering::SeqCst) > 0 {
            self.park.wake_all(&self.flag);
        }
    }

    /// Clears the flag.
    ///
    /// # Example
    ///
    /// ```
    /// let e = ply_core::sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    pub fn clear(&self) {
        self.flag.store(0, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_core::sync::Event::new().is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        // Acquire: if set, what the setter did before `set` is visible.
        self.flag.load(Ordering::Acquire) == 1
    }

    /// Waits until the flag is set.
    ///
    /// # Example
    ///
    /// ```
    /// let e = ply_core::sync::Event::new();
    /// e.set();
    /// e.wait(); // returns at once
    /// ```
    pub fn wait(&self) {
        self.wait_with(Forever);
    }

    /// Waits until the flag is set or `patience` runs out; returns whether set.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{Event, Spins};
    ///
    /// let e = Event::new();
    /// assert!(!e.wait_with(Spins(5)));
    /// e.set();
    /// assert!(e.wait_with(Spins(5)));
    /// ```
    pub fn wait_with(&self, mut patience: impl Patience) -> bool {
        loop {
            if self.is_set() {
                return true;
            }
            if !patience.keep_waiting() {
                return false;
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            // Uncounts us however the park ends: the patience and the park
            // are the caller's code, and may panic.
            let counted = Counted(&self.waiters);
            if self.flag.load(Ordering::SeqCst) == 0 {
                self.park
                    .wait_timeout(&self.flag, 0, patience.park_timeout());
            }
            drop(counted);
        }
    }
}

/// A waiter counted in `waiters`, uncounted when this is dropped: also while
/// a panic from the caller's patience or park unwinds.
struct Counted<'a>(&'a AtomicU32);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        // SeqCst: as the registration it undoes.
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
