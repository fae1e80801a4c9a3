//! [`shard`]: the `k`-th of `n` stable shards.

use core::ops::Range;

use super::{Even, PartitionError, Schedule};

/// The `k`-th (0-based) of `n` contiguous, nearly equal shards of `0..len`.
///
/// It depends only on `(k, n, len)`, so `n` machines — a Slurm job array, a
/// Kubernetes Indexed Job — each compute their own shard with no coordination;
/// the shards are disjoint and together cover `0..len`. With more shards than
/// items, some shards are empty.
///
/// # Errors
///
/// [`PartitionError::ZeroParts`] if `n == 0`;
/// [`PartitionError::ShardOutOfRange`] if `k >= n`.
///
/// # Example
///
/// ```
/// use ply_core::partition::shard;
///
/// assert_eq!(shard(0, 3, 10), Ok(0..4));
/// assert_eq!(shard(1, 3, 10), Ok(4..7));
/// assert_eq!(shard(2, 3, 10), Ok(7..10));
/// assert!(shard(3, 3, 10).is_err());
/// ```
pub fn shard(k: usize, n: usize, len: usize) -> Result<Range<usize>, PartitionError> {
    if n == 0 {
        return Err(PartitionError::ZeroParts);
    }
    if k >= n {
        return Err(PartitionError::ShardOutOfRange { k, n });
    }
    if n > len {
        // One item per shard for the first `len` shards, empty after that.
        let start = k.min(len);
        return Ok(start..(k + 1).min(len));
    }
    Ok(Even::new(len, n)?.chunk(k))
}
