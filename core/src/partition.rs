//! Splitting `0..len` into chunks of work, and handing them out.
//!
//! A [`Schedule`] is a pure description — how many chunks, and which range chunk
//! `i` covers — so it needs no allocation and every worker (thread or process)
//! can compute it independently. The strategies:
//!
//! | schedule | chunks | for |
//! |---|---|---|
//! | [`Even`] | `parts` nearly equal ranges (sizes differ by at most 1) | uniform work, one chunk per worker (static split) |
//! | [`Fixed`] | ranges of `size` (the last may be shorter) | uniform work, dynamic: many small chunks |
//! | [`Guided`] | shrinking: `max(min, remaining / (k·workers))` | uneven work: big chunks early, small ones to even out the end (OpenMP `guided`) |
//! | [`Weighted`] | `parts` ranges of nearly equal total *cost* | known per-item costs (or a cost function) |
//!
//! [`Chunking`] is the choice among these that ply's parallel loops (the
//! thread pool's data-parallel helpers, the fork-join process map) offer their
//! callers: `Auto`, `Even`, `Fixed(size)` or `Guided { min }`.
//!
//! [`shard`] picks the `k`-th of `n` stable contiguous shards, so `n` machines can
//! split one job with no coordination. [`ChunkDispenser`] hands chunk indices of
//! any schedule to whichever worker asks next (dynamic self-scheduling) with one
//! `fetch_add` per claim, and records who holds what so a supervisor can re-issue
//! a dead worker's chunk ([`SliceDispenser`]: the same, for a worker count
//! chosen at run time).
//!
//! Every schedule covers each index of `0..len` exactly once, with chunks in
//! increasing order (property-tested for random sizes).
//!
//! # Example
//!
//! ```
//! use ply_core::partition::{Fixed, Schedule};
//!
//! let schedule = Fixed::new(10, 4).unwrap();
//! let chunks: Vec<_> = schedule.iter().collect();
//! assert_eq!(chunks, [0..4, 4..8, 8..10]);
//! ```

use core::fmt;
use core::ops::Range;

mod chunking;
mod dispenser;
mod even;
mod fixed;
mod guided;
mod shard;
mod weighted;

pub use chunking::{Chunking, Plan};
#[cfg(not(loom))]
pub use dispenser::{BorrowedWorkers, SliceDispenser, WorkerSlot};
pub use dispenser::{ChunkDispenser, Claim, DispenserBase, InlineWorkers, WorkerSlots};
pub use even::Even;
pub use fixed::Fixed;
pub use guided::Guided;
pub use shard::shard;
pub use weighted::{CostFn, Costs, Weighted};

/// A split of `0..len` into chunks `0..chunks()`, each a contiguous range.
///
/// Implementations must cover every index of `0..len` exactly once, with chunk
/// `i + 1` starting where chunk `i` ends.
///
/// # Example
///
/// ```
/// use ply_core::partition::{Even, Schedule};
///
/// let s = Even::new(10, 3).unwrap();
/// assert_eq!(s.chunks(), 3);
/// assert_eq!(s.chunk(0), 0..4);
/// assert_eq!(s.chunk(2), 7..10);
/// ```
pub trait Schedule {
    /// The number of chunks.
    fn chunks(&self) -> usize;

    /// The range of chunk `i`; empty if `i >= chunks()`.
    fn chunk(&self, i: usize) -> Range<usize>;

    /// The chunks in order.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{Fixed, Schedule};
    /// assert_eq!(Fixed::new(5, 2).unwrap().iter().count(), 3);
    /// ```
    fn iter(&self) -> Chunks<'_, Self>
    where
        Self: Sized,
    {
        Chunks {
            schedule: self,
            next: 0,
        }
    }
}

/// The chunks of a [`Schedule`], in order (from [`Schedule::iter`]).
#[derive(Debug)]
pub struct Chunks<'a, S> {
    schedule: &'a S,
    next: usize,
}

impl<S: Schedule> Iterator for Chunks<'_, S> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.next >= self.schedule.chunks() {
            return None;
        }
        self.next += 1;
        Some(self.schedule.chunk(self.next - 1))
    }
}

/// Why a schedule or a shard was refused.
///
/// # Example
///
/// ```
/// use ply_core::partition::{Even, PartitionError};
/// assert_eq!(Even::new(10, 0).unwrap_err(), PartitionError::ZeroParts);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionError {
    /// `parts` (or `workers`, or the shard count) was 0.
    ZeroParts,
    /// A chunk size (or a minimum chunk size) of 0 was given.
    ZeroChunkSize,
    /// The guided factor `k` was 0.
    ZeroFactor,
    /// `shard(k, n)` with `k >= n`.
    ShardOutOfRange {
        /// The shard asked for.
        k: usize,
        /// The number of shards.
        n: usize,
    },
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionError::ZeroParts => write!(f, "the number of parts must be at least 1"),
            PartitionError::ZeroChunkSize => write!(f, "the chunk size must be at least 1"),
            PartitionError::ZeroFactor => write!(f, "the guided factor k must be at least 1"),
            PartitionError::ShardOutOfRange { k, n } => {
                write!(
                    f,
                    "shard {k} of {n} does not exist: shards are numbered 0 to {}",
                    n - 1
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PartitionError {}

#[cfg(all(test, not(loom)))]
mod tests;
