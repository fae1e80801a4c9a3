//! [`Fixed`]: chunks of a fixed size.

use core::ops::Range;

use super::{PartitionError, Schedule};

/// `0..len` in chunks of `size` (the last one shorter if `size` does not divide
/// `len`).
///
/// # Example
///
/// ```
/// use ply_core::partition::{Fixed, Schedule};
///
/// let s = Fixed::new(10, 3).unwrap();
/// assert_eq!(s.chunks(), 4);
/// assert_eq!(s.chunk(3), 9..10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixed {
    len: usize,
    size: usize,
}

impl Fixed {
    /// Splits `0..len` into chunks of `size`.
    ///
    /// # Errors
    ///
    /// [`PartitionError::ZeroChunkSize`] if `size == 0`.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(ply_core::partition::Fixed::new(10, 0).is_err());
    /// ```
    pub const fn new(len: usize, size: usize) -> Result<Self, PartitionError> {
        if size == 0 {
            return Err(PartitionError::ZeroChunkSize);
        }
        Ok(Fixed { len, size })
    }
}

impl Schedule for Fixed {
    fn chunks(&self) -> usize {
        self.len.div_ceil(self.size)
    }

    fn chunk(&self, i: usize) -> Range<usize> {
        let start = i.saturating_mul(self.size).min(self.len);
        start..start.saturating_add(self.size).min(self.len)
    }
}
