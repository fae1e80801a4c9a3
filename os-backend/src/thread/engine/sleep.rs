//! How idle workers sleep, and how new work wakes them: an event count with
//! one slot per worker (a sleeper count, a wake word per worker, and a
//! re-check before sleeping), after rayon-core's `sleep` module.
//!
//! A worker that found no work registers as a sleeper (counts itself and marks
//! its word `SLEEPING`), re-checks every queue, and only then waits on its
//! word. A thread that publishes work then reads the sleeper count and, only
//! if someone sleeps, claims one sleeper — it flips that worker's word to
//! `NOTIFIED` and uncounts it — and wakes it. An awake pool pays a light
//! fence and a load per task for "work is ready": no system call, no
//! contended write, no wait for the store buffer. And a burst
//! of pushes pays one wake-up per sleeper, not one per push: the first push
//! uncounts the sleeper it wakes, so the next ones see no sleeper even before
//! the woken worker runs (on a busy machine that can take a time slice).
//!
//! # Why no wake-up is lost
//!
//! It is Dekker's pattern, with a fence on each side: the sleeper's is the
//! heavy one and the notifier's the light one of an asymmetric pair
//! ([`barrier`](super::barrier)), as sleeping is rare and notifying is per
//! task.
//!
//! | sleeper ([`Sleep::sleep`]) | notifier ([`Sleep::notify_one`]) |
//! |---|---|
//! | `sleepers += 1`; word = `SLEEPING`; **heavy fence** | publish work (a queue push); **light fence** |
//! | re-check for work; if none, wait while word = `SLEEPING` | read `sleepers`; if > 0, flip a `SLEEPING` word to `NOTIFIED`, wake it |
//!
//! The fences are ordered one way or the other: either the notifier sees the
//! registration (and the word, so its compare-exchange finds it), or the
//! sleeper's re-check sees the work. A word leaves `SLEEPING` only by one
//! compare-exchange — the notifier's, or the sleeper's own when its re-check
//! found work — so each registration is uncounted exactly once. The word is
//! set with `Release` and claimed with `Acquire`, so the count is incremented
//! before a notifier decrements it.
//!
//! loom checks the protocol (`engine::loom_models`): removing either fence
//! makes the model find a lost wake-up.
//!
//! ply-core is gaining one event-count primitive on its `Park` seam for every
//! sleeper in ply (issue 14); this module should become a user of it.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use crossbeam_utils::CachePadded;
use ply_core::sync::Park;

use super::barrier;
use super::primitive::{AtomicU32, EnginePark, engine_park, fence};

const AWAKE: u32 = 0;
const SLEEPING: u32 = 1;
const NOTIFIED: u32 = 2;

/// Sleepers and the words they wait on.
pub(crate) struct Sleep {
    /// Workers registered as sleeping and not yet claimed by a notifier.
    sleepers: CachePadded<AtomicU32>,
    /// One word per worker: `AWAKE`, `SLEEPING` or `NOTIFIED`.
    words: Box<[CachePadded<AtomicU32>]>,
    park: EnginePark,
}

impl Sleep {
    pub(crate) fn new(workers: usize) -> Self {
        Sleep {
            sleepers: CachePadded::new(AtomicU32::new(0)),
            words: (0..workers)
                .map(|_| CachePadded::new(AtomicU32::new(AWAKE)))
                .collect(),
            park: engine_park(),
        }
    }

    /// After publishing work: wakes one sleeper, if there is one.
    #[inline]
    pub(crate) fn notify_one(&self) {
        // The notifier's fence (see the module docs): the light side.
        barrier::light();
        if self.sleepers.load(Relaxed) != 0 {
            self.wake_sleepers(1);
        }
    }

    /// Wakes every sleeper, to see a change of state made before this call
    /// (the pool closing or draining). Rare, so it always looks.
    pub(crate) fn notify_all(&self) {
        // Pairs with the sleeper's fence (a full fence, heavy or not).
        fence(SeqCst);
        self.wake_sleepers(usize::MAX);
    }

    /// Claims and wakes up to `count` sleeping workers.
    fn wake_sleepers(&self, count: usize) {
        let mut woken = 0;
        for word in self.words.iter() {
            if woken == count {
                break;
            }
            // Acquire: the sleeper counted itself before marking its word.
            if word.load(Relaxed) == SLEEPING
                && word
                    .compare_exchange(SLEEPING, NOTIFIED, Acquire, Relaxed)
                    .is_ok()
            {
                self.sleepers.fetch_sub(1, Relaxed);
                self.park.wake_one(word);
                woken += 1;
            }
        }
    }

    /// Worker `index` sleeps until notified, unless `ready()` holds once it is
    /// registered. Callers look for work again either way.
    pub(crate) fn sleep(&self, index: usize, ready: impl FnOnce() -> bool) {
        let word = &self.words[index];
        self.sleepers.fetch_add(1, Relaxed);
        word.store(SLEEPING, Release);
        // The sleeper's fence (see the module docs): the heavy side.
        barrier::heavy();
        if !ready() {
            // Waits until a notifier flips the word (a spurious return, or a
            // signal, waits again).
            while word.load(Acquire) == SLEEPING {
                self.park.wait(word, SLEEPING);
            }
        }
        // Still `SLEEPING` (the re-check found work): withdraw the
        // registration ourselves. Otherwise a notifier uncounted us.
        if word
            .compare_exchange(SLEEPING, AWAKE, Relaxed, Relaxed)
            .is_ok()
        {
            self.sleepers.fetch_sub(1, Relaxed);
        } else {
            word.store(AWAKE, Relaxed);
        }
    }
}
