//! [`EventCount`]: sleep until a condition may have changed, without losing a
//! wake-up — the one sleeping protocol of ply.
//!
//! # The problem it solves
//!
//! A consumer that finds a queue empty wants to sleep until a producer pushes.
//! Checking, then sleeping, loses a wake-up if the push lands in between; a
//! lock around the condition (a condition variable) costs every producer a
//! lock. The pattern that needs neither is "register as a sleeper, re-check,
//! then sleep on a word the waker changes", with a Dekker handshake between
//! the sleeper's registration and the waker's look for sleepers. An event
//! count packages that pattern once, separately from any data structure: the
//! condition stays the caller's (a queue being non-empty, a semaphore having
//! permits, a pool having work).
//!
//! # Prior art
//!
//! Dmitry Vyukov's event count (comp.programming.threads, 2008, and
//! 1024cores.net "Eventcount"), and folly's `EventCount`
//! (`folly/synchronization/EventCount.h`), which this follows: a waiter count
//! and an epoch, `prepare_wait` / `cancel_wait` / `wait` for the waiter,
//! `notify` for the waker. ply's version is two 32-bit words (no 64-bit
//! atomics, so it builds for `thumbv7em`), sleeps through the [`Park`] seam
//! (a futex with ply-os, also between processes), and honours a [`Patience`]
//! on every park.
//!
//! # Protocol
//!
//! ```text
//! waiter                                  waker
//! ------                                  -----
//! if condition() { done }                 make condition() true
//! key = prepare_wait()                    notify_one() / notify_all()
//!   (waiters += 1; fence; read epoch)       (fence; if waiters > 0:
//! if condition() { cancel_wait(key);          epoch += 1; wake)
//!                  done }
//! wait(key)  (park while epoch == key;
//!             then waiters -= 1)
//! ```
//!
//! [`wait_until`](EventCount::wait_until) runs the whole left column in a loop,
//! with a short spin (crossbeam's `Backoff`, until it says "time to park")
//! before the first sleep, so a steady stream of events is picked up without
//! system calls. That spin is the only spin-before-sleep policy in ply.
//!
//! # Memory ordering
//!
//! The waiter's registration (`waiters += 1`, then a `SeqCst` fence, then its
//! re-check of the condition) and the waker's (the condition's write, then a
//! `SeqCst` fence, then its read of `waiters`) are the Dekker pattern: with a
//! `SeqCst` fence on each side, either the waker sees the waiter registered,
//! or the waiter's re-check sees the condition. The waker bumps `epoch`
//! (`Release`, after making the condition true) and the waiter reads its key
//! with `Acquire`, so a waiter whose key already includes a bump also sees
//! the condition that bump announced; a bump after the key makes the park
//! return at once (a futex compares the word atomically with going to sleep).
//!
//! # Across processes
//!
//! Two words and the park, no pointers: works in `MAP_SHARED` memory with
//! ply-os's `FutexPark`. A waiter that dies registered leaves `waiters` raised
//! for good, which only costs wakers a wake-up call each (never a lost
//! wake-up). A waiter that is woken by a `notify_one` and then stopped before
//! it re-checks holds on to that wake-up; callers that must not depend on
//! every peer running bound each park (ply-os's `ProcessQueue` re-checks after
//! at most [`RECHECK`](super::RECHECK)).

use crate::primitive::{AtomicU32, Backoff, Ordering, fence};
use crate::sync::patience::Forever;
use crate::sync::{Park, Patience, SpinPark};

/// A waiter's registration: the epoch it saw in
/// [`prepare_wait`](EventCount::prepare_wait). Pass it to exactly one of
/// [`wait`](EventCount::wait), [`wait_with`](EventCount::wait_with) or
/// [`cancel_wait`](EventCount::cancel_wait), which end the registration.
///
/// # Example
///
/// ```
/// let ec = ply_core::sync::EventCount::new();
/// let key = ec.prepare_wait();
/// ec.cancel_wait(key);
/// ```
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a registration must end with wait, wait_with or cancel_wait"]
pub struct WaitKey {
    epoch: u32,
}

/// Sleep until notified, without losing a wake-up: see the module docs.
///
/// # Example
///
/// A flag one thread waits for:
///
/// ```
/// use core::sync::atomic::{AtomicBool, Ordering};
/// use ply_core::sync::EventCount;
///
/// let ready = AtomicBool::new(false);
/// let ec = EventCount::new();
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         ready.store(true, Ordering::Release);
///         ec.notify_all();
///     });
///     // The whole protocol: try, spin a little, register, re-try, sleep.
///     ec.wait_until(|| ready.load(Ordering::Acquire).then_some(()));
/// });
/// ```
///
/// The same by hand, as a queue's blocking `pop` would write it:
///
/// ```
/// use std::collections::VecDeque;
/// use std::sync::Mutex;
/// use ply_core::sync::EventCount;
///
/// let queue = Mutex::new(VecDeque::new());
/// let not_empty = EventCount::new();
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         queue.lock().unwrap().push_back(7);
///         not_empty.notify_one();
///     });
///     let item = loop {
///         if let Some(item) = queue.lock().unwrap().pop_front() {
///             break item;
///         }
///         let key = not_empty.prepare_wait();
///         if let Some(item) = queue.lock().unwrap().pop_front() {
///             not_empty.cancel_wait(key);
///             break item;
///         }
///         not_empty.wait(key);
///     };
///     assert_eq!(item, 7);
/// });
/// ```
#[derive(Debug)]
pub struct EventCount<P: Park = SpinPark> {
    /// Bumped by each notify that finds a waiter: the word waiters park on.
    epoch: AtomicU32,
    /// Waiters between `prepare_wait` and the end of their wait.
    waiters: AtomicU32,
    park: P,
}

impl EventCount<SpinPark> {
    /// An event count whose waiters spin (no OS needed).
    ///
    /// # Example
    ///
    /// ```
    /// static EC: ply_core::sync::EventCount = ply_core::sync::EventCount::new();
    /// EC.notify_all(); // nobody waits: nothing to do
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self::with_park(SpinPark)
    }

    /// An event count whose waiters spin (loom build).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self::with_park(SpinPark)
    }
}

#[cfg(not(loom))]
impl Default for EventCount<SpinPark> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Park> EventCount<P> {
    /// An event count whose waiters wait through `park` (ply-os: `FutexPark`).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{EventCount, SpinPark};
    /// let ec = EventCount::with_park(SpinPark);
    /// ec.notify_one();
    /// ```
    #[cfg(not(loom))]
    pub const fn with_park(park: P) -> Self {
        EventCount {
            epoch: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            park,
        }
    }

    /// An event count waiting through `park` (loom build).
    #[cfg(loom)]
    pub fn with_park(park: P) -> Self {
        EventCount {
            epoch: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            park,
        }
    }

    /// Registers the caller as a waiter. Re-check the condition afterwards:
    /// if it holds, [`cancel_wait`](Self::cancel_wait); if not,
    /// [`wait`](Self::wait) — any notify after this call wakes it.
    ///
    /// # Example
    ///
    /// See [`EventCount`].
    pub fn prepare_wait(&self) -> WaitKey {
        // SeqCst, and the fence: the waiter's half of the Dekker handshake
        // (module docs), ordering the registration before the re-check.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // Acquire: pairs with the notifier's Release bump; if the key already
        // includes a bump, the condition it announced is visible.
        let epoch = self.epoch.load(Ordering::Acquire);
        crate::fault_point!(EventCountWaiting);
        WaitKey { epoch }
    }

    /// Ends a registration without sleeping (the re-check succeeded).
    ///
    /// # Example
    ///
    /// See [`EventCount`].
    pub fn cancel_wait(&self, key: WaitKey) {
        let _ = key;
        self.unregister();
    }

    /// Ends a registration.
    fn unregister(&self) {
        // Relaxed: leaving publishes nothing; at worst a waker sees a stale
        // count and makes one needless wake-up call.
        self.waiters.fetch_sub(1, Ordering::Relaxed);
    }

    /// Sleeps until a notify after `key`'s [`prepare_wait`](Self::prepare_wait),
    /// then ends the registration. Callers re-check their condition after:
    /// another waiter may have consumed what the notify announced.
    ///
    /// # Example
    ///
    /// See [`EventCount`].
    pub fn wait(&self, key: WaitKey) {
        self.wait_with(key, Forever);
    }

    /// As [`wait`](Self::wait), unless `patience` runs out first; `true` if
    /// notified. Each park lasts at most what `patience` allows.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{EventCount, Spins};
    /// let ec = EventCount::new();
    /// let key = ec.prepare_wait();
    /// assert!(!ec.wait_with(key, Spins(3)), "nobody notified");
    /// ```
    pub fn wait_with(&self, key: WaitKey, mut patience: impl Patience) -> bool {
        // Ends the registration however this returns: the patience and the
        // park are the caller's code, and may panic.
        let registration = Registration(self);
        let notified = loop {
            // Acquire: as in `prepare_wait`.
            if self.epoch.load(Ordering::Acquire) != key.epoch {
                crate::fault_point!(EventCountNotified);
                break true;
            }
            if !patience.keep_waiting() {
                break false;
            }
            self.park
                .wait_timeout(&self.epoch, key.epoch, patience.park_timeout());
        };
        drop(registration);
        let _ = key;
        notified
    }

    /// Wakes one waiter, if any is registered. Call it after making the
    /// condition true.
    ///
    /// # Example
    ///
    /// See [`EventCount`].
    pub fn notify_one(&self) {
        if self.any_waiter() {
            self.park.wake_one(&self.epoch);
        }
    }

    /// Wakes every registered waiter. Call it after making the condition true.
    ///
    /// # Example
    ///
    /// See [`EventCount`].
    pub fn notify_all(&self) {
        if self.any_waiter() {
            self.park.wake_all(&self.epoch);
        }
    }

    /// The waker's half of the handshake: `true` (after bumping the epoch) if
    /// a waiter may need waking.
    fn any_waiter(&self) -> bool {
        // SeqCst fence: orders the caller's write of the condition before the
        // read of `waiters` (module docs, "Memory ordering").
        fence(Ordering::SeqCst);
        self.bump_if_waiter()
    }

    /// [`notify_one`](Self::notify_one) for a caller whose write of the
    /// condition was a `SeqCst` read-modify-write (followed by
    /// `seq_cst_point`): that write and the `SeqCst` load of `waiters` here are
    /// both in the single total order that the waiter's fence is in, which
    /// does the fence's job (C++ [atomics.order]: a read after a `SeqCst`
    /// fence sees every `SeqCst` write before the fence). Saves a full fence
    /// on the semaphore's release path.
    pub(crate) fn notify_one_after_seq_cst_write(&self) {
        if self.bump_if_waiter() {
            self.park.wake_one(&self.epoch);
        }
    }

    /// As [`notify_one_after_seq_cst_write`](Self::notify_one_after_seq_cst_write),
    /// waking every waiter.
    pub(crate) fn notify_all_after_seq_cst_write(&self) {
        if self.bump_if_waiter() {
            self.park.wake_all(&self.epoch);
        }
    }

    fn bump_if_waiter(&self) -> bool {
        // SeqCst: after the fence above it adds nothing; without it (the
        // `_after_seq_cst_write` forms) it is what orders this read after the
        // caller's `SeqCst` write in the total order.
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return false;
        }
        // Release: a waiter whose key includes this bump sees the condition.
        self.epoch.fetch_add(1, Ordering::Release);
        true
    }

    /// Waits until `attempt` returns `Some`, and returns it: tries, spins a
    /// little (crossbeam's `Backoff`, until it says "park"), then registers,
    /// re-tries and sleeps until notified, in a loop.
    ///
    /// # Example
    ///
    /// See [`EventCount`].
    pub fn wait_until<R>(&self, attempt: impl FnMut() -> Option<R>) -> R {
        match self.wait_until_with(attempt, Forever) {
            Some(r) => r,
            None => unreachable!("Forever never gives up"),
        }
    }

    /// As [`wait_until`](Self::wait_until), unless `patience` runs out first
    /// (`None`). `patience` is asked after every failed attempt and before
    /// every park, and bounds how long each park lasts.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{EventCount, Spins};
    /// let ec = EventCount::new();
    /// assert_eq!(ec.wait_until_with(|| None::<u8>, Spins(20)), None);
    /// assert_eq!(ec.wait_until_with(|| Some(5), Spins(0)), Some(5));
    /// ```
    pub fn wait_until_with<R>(
        &self,
        mut attempt: impl FnMut() -> Option<R>,
        mut patience: impl Patience,
    ) -> Option<R> {
        let backoff = Backoff::new();
        loop {
            if let Some(r) = attempt() {
                return Some(r);
            }
            if !patience.keep_waiting() {
                return None;
            }
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            let key = self.prepare_wait();
            // `attempt` is the caller's code: a panic in it must not leave
            // the registration behind (every later notify would pay for it).
            let registration = Registration(self);
            if let Some(r) = attempt() {
                drop(registration);
                let _ = key;
                return Some(r);
            }
            // `wait_with` ends the registration from here on.
            core::mem::forget(registration);
            self.wait_with(key, &mut patience);
        }
    }

    /// Waiters registered now (a snapshot). For tests and diagnostics.
    ///
    /// # Example
    ///
    /// ```
    /// let ec = ply_core::sync::EventCount::new();
    /// let key = ec.prepare_wait();
    /// assert_eq!(ec.waiters(), 1);
    /// ec.cancel_wait(key);
    /// assert_eq!(ec.waiters(), 0);
    /// ```
    pub fn waiters(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }
}

/// A registered wait (made by `prepare_wait`), ended when this is dropped:
/// also while a panic from the caller's code unwinds.
struct Registration<'a, P: Park>(&'a EventCount<P>);

impl<P: Park> Drop for Registration<'_, P> {
    fn drop(&mut self) {
        self.0.unregister();
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
