//! [`Even`]: `parts` nearly equal ranges (the static split).

use core::ops::Range;

use super::{PartitionError, Schedule};

/// `0..len` in `min(parts, len)` ranges whose sizes differ by at most one (the
/// first `len % parts` are one longer).
///
/// # Example
///
/// ```
/// use ply_core::partition::{Even, Schedule};
///
/// let s = Even::new(7, 3).unwrap();
/// assert_eq!(s.iter().collect::<Vec<_>>(), [0..3, 3..5, 5..7]);
/// assert_eq!(Even::new(2, 5).unwrap().chunks(), 2); // never an empty chunk
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Even {
    len: usize,
    parts: usize,
}

impl Even {
    /// Splits `0..len` into `parts` (fewer if `len < parts`).
    ///
    /// # Errors
    ///
    /// [`PartitionError::ZeroParts`] if `parts == 0`.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(ply_core::partition::Even::new(10, 0).is_err());
    /// ```
    pub const fn new(len: usize, parts: usize) -> Result<Self, PartitionError> {
        if parts == 0 {
            return Err(PartitionError::ZeroParts);
        }
        Ok(Even {
            len,
            parts: if parts < len { parts } else { len },
        })
    }
}

impl Schedule for Even {
    fn chunks(&self) -> usize {
        self.parts
    }

    fn chunk(&self, i: usize) -> Range<usize> {
        if i >= self.parts {
            return self.len..self.len;
        }
        let (base, extra) = (self.len / self.parts, self.len % self.parts);
        // The first `extra` chunks hold `base + 1` items.
        let start = i * base + i.min(extra);
        start..start + base + usize::from(i < extra)
    }
}
