//! How idle workers sleep, and how new work wakes them: an event count (a
//! sleeper count and a wake word, with a re-check before sleeping).
//!
//! A worker that found no work registers as a sleeper, re-checks every queue,
//! and only then waits on the wake word. A thread that publishes work then
//! reads the sleeper count, and pays for a wake-up (a word bump and a futex
//! wake) only if someone sleeps — an awake pool pays one fence per task for
//! "work is ready", no system call and no contended write. This is the
//! protocol of rayon-core's `sleep` module and of tokio's idle workers, and
//! Vyukov's event count.
//!
//! # Why no wake-up is lost
//!
//! It is Dekker's pattern, with a `SeqCst` fence on each side:
//!
//! | sleeper ([`Sleep::sleep`]) | notifier ([`Sleep::notify_one`]) |
//! |---|---|
//! | read the word (`seen`) | publish work (a queue push) |
//! | `sleepers += 1`; **fence** | **fence** |
//! | re-check for work; if none, wait while word = `seen` | read `sleepers`; if > 0, bump the word, wake one |
//!
//! The fences are ordered one way or the other: either the notifier's read
//! sees the registration (it bumps the word, so a waiter whose `seen` predates
//! the bump returns at once, or is woken), or the sleeper's re-check sees the
//! work. The word is read with `Acquire` and bumped with `Release`, so a
//! sleeper that saw a bump also sees everything published before it (and a
//! registration can never be read by a notifier whose bump it saw).
//!
//! loom checks the protocol (`engine::loom_models`): removing either fence
//! makes the model find a lost wake-up.
//!
//! ply-core is gaining one event-count primitive on its `Park` seam for every
//! sleeper in ply (issue 14); this module should become a user of it.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use ply_core::sync::Park;

use super::primitive::{AtomicU32, EnginePark, engine_park, fence};

/// Sleepers and the word they wait on.
pub(crate) struct Sleep {
    /// Workers asleep, or about to sleep, on `word`.
    sleepers: AtomicU32,
    /// The futex word; bumped to wake sleepers.
    word: AtomicU32,
    park: EnginePark,
}

impl Sleep {
    pub(crate) fn new() -> Self {
        Sleep {
            sleepers: AtomicU32::new(0),
            word: AtomicU32::new(0),
            park: engine_park(),
        }
    }

    /// After publishing work: wakes one sleeper, if there is one.
    #[inline]
    pub(crate) fn notify_one(&self) {
        // The notifier's fence (see the module docs).
        fence(SeqCst);
        if self.sleepers.load(Relaxed) != 0 {
            self.word.fetch_add(1, Release);
            self.park.wake_one(&self.word);
        }
    }

    /// Wakes every sleeper, to see a change of state made before this call
    /// (the pool closing or draining). Unconditional: it is rare.
    pub(crate) fn notify_all(&self) {
        self.word.fetch_add(1, Release);
        self.park.wake_all(&self.word);
    }

    /// Sleeps until notified, unless `ready()` holds once registered. May
    /// return without a notification; callers look for work again either way.
    pub(crate) fn sleep(&self, ready: impl FnOnce() -> bool) {
        let seen = self.word.load(Acquire);
        self.sleepers.fetch_add(1, Relaxed);
        // The sleeper's fence (see the module docs).
        fence(SeqCst);
        if !ready() {
            // Returns at once if the word moved since `seen`.
            self.park.wait(&self.word, seen);
        }
        self.sleepers.fetch_sub(1, Relaxed);
    }
}
