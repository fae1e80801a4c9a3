//! [`Barrier`]: wait until `n` parties have arrived, then release them all.
//!
//! A count of arrivals and a generation number. Each arrival bumps the count;
//! the `n`-th resets it to 0 and then bumps the generation (both in one order
//! the others observe with Acquire), which releases the waiters parked on the
//! generation word. The barrier is reusable: the next round starts at once.
//!
//! # Across processes
//!
//! Two words, no pointers: works in `MAP_SHARED` memory. A party that dies
//! before arriving leaves the others waiting; use [`Barrier::wait_with`].

use crate::primitive::{AtomicU32, Ordering};
use crate::sync::patience::Forever;
use crate::sync::{Park, Patience, SpinPark};

/// A reusable barrier for `n` parties.
///
/// # Example
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use ply_core::sync::Barrier;
///
/// let barrier = Barrier::new(3);
/// let before = AtomicU32::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..3 {
///         s.spawn(|| {
///             before.fetch_add(1, Ordering::SeqCst);
///             barrier.wait();
///             // Everyone has arrived before anyone leaves.
///             assert_eq!(before.load(Ordering::SeqCst), 3);
///         });
///     }
/// });
/// ```
#[derive(Debug)]
pub struct Barrier<P: Park = SpinPark> {
    parties: u32,
    arrived: AtomicU32,
    generation: AtomicU32,
    park: P,
}

/// What [`Barrier::wait`] tells each party.
///
/// # Example
///
/// ```
/// let b = ply_core::sync::Barrier::new(1);
/// assert!(b.wait().is_leader());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// `true` for exactly one party per round: the last to arrive.
    ///
    /// # Example
    ///
    /// ```
    /// let b = ply_core::sync::Barrier::new(1);
    /// assert!(b.wait().is_leader());
    /// ```
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

impl Barrier<SpinPark> {
    /// A barrier for `parties` parties (at least 1), waiting by spinning.
    ///
    /// # Example
    ///
    /// ```
    /// static B: ply_core::sync::Barrier = ply_core::sync::Barrier::new(2);
    /// assert_eq!(B.parties(), 2);
    /// ```
    #[cfg(not(loom))]
    pub const fn new(parties: u32) -> Self {
        Self::with_park(parties, SpinPark)
    }

    /// A barrier for `parties` parties (loom build).
    #[cfg(loom)]
    pub fn new(parties: u32) -> Self {
        Self::with_park(parties, SpinPark)
    }
}

impl<P: Park> Barrier<P> {
    /// A barrier for `parties` parties (0 is treated as 1) waiting through `park`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{Barrier, SpinPark};
    /// assert!(Barrier::with_park(1, SpinPark).wait().is_leader());
    /// ```
    #[cfg(not(loom))]
    pub const fn with_park(parties: u32, park: P) -> Self {
        Barrier {
            parties: if parties == 0 { 1 } else { parties },
            arrived: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            park,
        }
    }

    /// A barrier waiting through `park` (loom build).
    #[cfg(loom)]
    pub fn with_park(parties: u32, park: P) -> Self {
        Barrier {
            parties: if parties == 0 { 1 } else { parties },
            arrived: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            park,
        }
    }

    /// The number of parties per round.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_core::sync::Barrier::new(4).parties(), 4);
    /// ```
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// Arrives and waits for the rest of this round.
    ///
    /// # Example
    ///
    /// ```
    /// let b = ply_core::sync::Barrier::new(2);
    /// std::thread::scope(|s| {
    ///     let t = s.spawn(|| b.wait().is_leader());
    ///     let here = b.wait().is_leader();
    ///     assert!(here ^ t.join().unwrap()); // exactly one leader
    /// });
    /// ```
    pub fn wait(&self) -> BarrierWaitResult {
        match self.wait_with(Forever) {
            Some(result) => result,
            None => unreachable!("Forever never gives up"),
        }
    }

    /// Arrives and waits for the rest of this round unless `patience` runs out.
    ///
    /// Giving up does not take back the arrival (the others may already have
    /// counted it): a barrier whose party gave up is broken for that round, and
    /// `None` tells the caller so.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{Barrier, Spins};
    /// let b = Barrier::new(2);
    /// assert!(b.wait_with(Spins(5)).is_none()); // the other party never came
    /// ```
    pub fn wait_with(&self, mut patience: impl Patience) -> Option<BarrierWaitResult> {
        // Acquire: if this round ends at once, the previous round's writes are
        // visible.
        let generation = self.generation.load(Ordering::Acquire);
        // AcqRel: the last arrival sees everyone's pre-barrier writes (Acquire),
        // and ours are published to it (Release).
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parties {
            // Reset before opening, so early leavers of this round arrive at the
            // next one with a fresh count.
            self.arrived.store(0, Ordering::Relaxed);
            // Release: publishes the reset and every party's writes (which we
            // acquired above) to the waiters' Acquire loads of the generation.
            self.generation.fetch_add(1, Ordering::Release);
            self.park.wake_all(&self.generation);
            return Some(BarrierWaitResult { leader: true });
        }
        while self.generation.load(Ordering::Acquire) == generation {
            if !patience.keep_waiting() {
                return None;
            }
            self.park
                .wait_timeout(&self.generation, generation, patience.park_timeout());
        }
        Some(BarrierWaitResult { leader: false })
    }
}
