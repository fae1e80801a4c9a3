//! [`Chunking`]: the choice of schedule a parallel loop offers its caller,
//! and the [`Plan`] it makes for one run.
//!
//! The thread pool's data-parallel helpers and the fork-join process map both
//! take a `Chunking`, so the vocabulary is the same on both sides: the
//! variants are named after the schedules of this module. [`Weighted`] is not
//! among them, because it needs the items' costs; use it with a
//! [`ChunkDispenser`] directly.
//!
//! [`Weighted`]: super::Weighted
//! [`ChunkDispenser`]: super::ChunkDispenser

use core::ops::Range;

use super::{Even, Fixed, Guided, Schedule};

/// How a parallel loop cuts `0..len` into chunks for its workers.
///
/// # Example
///
/// ```
/// use ply_core::partition::{Chunking, Schedule};
///
/// // 1000 items, 4 workers.
/// assert_eq!(Chunking::Even.schedule(1000, 4).chunks(), 4);
/// assert_eq!(Chunking::Fixed(64).schedule(1000, 4).chunks(), 16);
/// assert_eq!(Chunking::Auto.schedule(1000, 4).chunk(0), 0..31); // 1000 / (4 · 8)
/// let guided = Chunking::Guided { min: 16 }.schedule(1000, 4);
/// assert_eq!(guided.chunk(0), 0..125); // 1000 / (2 · 4), then shrinking
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Chunking {
    /// [`Fixed`] chunks of about `len / (workers · 8)` items (the default):
    /// balances uneven work at low overhead.
    #[default]
    Auto,
    /// [`Even`]: one equal chunk per worker (no balancing; least overhead).
    Even,
    /// [`Fixed`] chunks of this many items, handed to whichever worker asks
    /// next (0 is taken as 1).
    Fixed(usize),
    /// [`Guided`] (OpenMP's `guided`): chunks of `remaining / (2 · workers)`
    /// items, shrinking, never below `min` (0 is taken as 1).
    Guided {
        /// The smallest chunk.
        min: usize,
    },
}

impl Chunking {
    /// The schedule this choice makes for `len` items and `workers` workers
    /// (0 workers is taken as 1). Never fails: sizes of 0 are taken as 1.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{Chunking, Schedule};
    /// let plan = Chunking::Fixed(0).schedule(3, 0);
    /// assert_eq!(plan.iter().collect::<Vec<_>>(), [0..1, 1..2, 2..3]);
    /// ```
    pub fn schedule(self, len: usize, workers: usize) -> Plan {
        let workers = workers.max(1);
        let fixed = |size: usize| match Fixed::new(len, size.max(1)) {
            Ok(s) => Kind::Fixed(s),
            Err(_) => unreachable!("a size of at least 1 is valid"),
        };
        let kind = match self {
            Chunking::Auto => fixed(len / workers.saturating_mul(8)),
            Chunking::Fixed(size) => fixed(size),
            Chunking::Even => match Even::new(len, workers) {
                Ok(s) => Kind::Even(s),
                Err(_) => unreachable!("at least one part is valid"),
            },
            Chunking::Guided { min } => match Guided::new(len, workers, 2, min.max(1)) {
                Ok(s) => Kind::Guided(s),
                Err(_) => unreachable!("workers, k and min are at least 1"),
            },
        };
        let chunks = match &kind {
            Kind::Even(s) => s.chunks(),
            Kind::Fixed(s) => s.chunks(),
            Kind::Guided(s) => s.chunks(),
        };
        Plan { kind, chunks }
    }
}

/// The schedule a [`Chunking`] made for one run: one of [`Even`], [`Fixed`]
/// or [`Guided`], with its chunk count computed once (a [`ChunkDispenser`]
/// asks for it on every claim, and counting `Guided` chunks walks them all).
///
/// [`ChunkDispenser`]: super::ChunkDispenser
///
/// # Example
///
/// ```
/// use ply_core::partition::{ChunkDispenser, Chunking, Schedule};
///
/// let plan = Chunking::Guided { min: 4 }.schedule(100, 2);
/// let dispenser = ChunkDispenser::<1>::new();
/// let mut covered = 0;
/// while let Some(claim) = dispenser.claim(0, &plan) {
///     covered += claim.range.len();
/// }
/// assert_eq!(covered, 100);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    kind: Kind,
    chunks: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Even(Even),
    Fixed(Fixed),
    Guided(Guided),
}

impl Schedule for Plan {
    fn chunks(&self) -> usize {
        self.chunks
    }

    fn chunk(&self, i: usize) -> Range<usize> {
        match &self.kind {
            Kind::Even(s) => s.chunk(i),
            Kind::Fixed(s) => s.chunk(i),
            Kind::Guided(s) => s.chunk(i),
        }
    }
}
