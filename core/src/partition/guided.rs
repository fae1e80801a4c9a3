//! [`Guided`]: shrinking chunks (OpenMP's `guided` schedule).

use core::ops::Range;

use super::{PartitionError, Schedule};

/// Chunks that shrink as work runs out: each is `remaining / (k · workers)`
/// (rounded up), never below `min` (except the very last, which takes what is
/// left). Big chunks early keep overhead low; small ones at the end let
/// workers finish together even when items cost different amounts
/// (Polychronopoulos & Kuck, "Guided Self-Scheduling", IEEE TC 1987).
///
/// Chunk `i` is computed by walking the sequence from the start: `O(i)`, and
/// the number of chunks grows only logarithmically with `len`, so this stays
/// small (about `k · workers · ln(len / min)` chunks plus a tail).
///
/// # Example
///
/// ```
/// use ply_core::partition::{Guided, Schedule};
///
/// let s = Guided::new(100, 2, 2, 5).unwrap();
/// let sizes: Vec<usize> = s.iter().map(|r| r.len()).collect();
/// assert_eq!(sizes[0], 25); // 100 / (2 · 2)
/// assert!(sizes.windows(2).all(|w| w[0] >= w[1])); // never grows
/// assert_eq!(sizes.iter().sum::<usize>(), 100);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guided {
    len: usize,
    /// `k · workers`: the divisor of the remaining work.
    divisor: usize,
    min: usize,
}

impl Guided {
    /// Guided chunks of `0..len` for `workers` workers, factor `k` (OpenMP uses
    /// 1; 2 gives a finer end game), minimum chunk `min`.
    ///
    /// # Errors
    ///
    /// [`PartitionError::ZeroParts`] if `workers == 0`,
    /// [`PartitionError::ZeroFactor`] if `k == 0`,
    /// [`PartitionError::ZeroChunkSize`] if `min == 0`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::{Guided, PartitionError};
    /// assert_eq!(Guided::new(10, 2, 0, 1), Err(PartitionError::ZeroFactor));
    /// ```
    pub const fn new(
        len: usize,
        workers: usize,
        k: usize,
        min: usize,
    ) -> Result<Self, PartitionError> {
        if workers == 0 {
            return Err(PartitionError::ZeroParts);
        }
        if k == 0 {
            return Err(PartitionError::ZeroFactor);
        }
        if min == 0 {
            return Err(PartitionError::ZeroChunkSize);
        }
        Ok(Guided {
            len,
            divisor: k.saturating_mul(workers),
            min,
        })
    }

    /// The size of the chunk that starts with `remaining` items left.
    fn size(&self, remaining: usize) -> usize {
        remaining
            .div_ceil(self.divisor)
            .max(self.min)
            .min(remaining)
    }
}

impl Schedule for Guided {
    fn chunks(&self) -> usize {
        let (mut start, mut count) = (0, 0);
        while start < self.len {
            start += self.size(self.len - start);
            count += 1;
        }
        count
    }

    fn chunk(&self, i: usize) -> Range<usize> {
        let mut start = 0;
        for _ in 0..i {
            if start >= self.len {
                return self.len..self.len;
            }
            start += self.size(self.len - start);
        }
        start..start + self.size(self.len - start)
    }
}
