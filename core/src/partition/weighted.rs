//! [`Weighted`]: parts of nearly equal total cost.

use core::ops::Range;

use super::{Even, PartitionError, Schedule};

/// Per-item costs: a slice of weights, or a function ([`CostFn`]).
///
/// The costs must not change while a [`Weighted`] schedule uses them:
/// `cost(i)` must return the same value every time for the same `i`. The
/// schedule stores no cut points (it allocates nothing), so it asks for the
/// costs again for every chunk; costs that changed in between (a timer, a
/// random estimate, a counter) would make neighbouring chunks overlap or leave
/// a gap, and items would be done twice or not at all. Measure or estimate
/// once, into a slice, and schedule over that.
///
/// # Example
///
/// ```
/// use ply_core::partition::Costs;
/// let w: &[u64] = &[3, 1, 4];
/// assert_eq!((w.len(), w.cost(2)), (3, 4));
/// ```
pub trait Costs {
    /// The number of items.
    fn len(&self) -> usize;
    /// Whether there are no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The cost of item `i` (`i < len()`).
    fn cost(&self, i: usize) -> u64;
}

impl Costs for &[u64] {
    fn len(&self) -> usize {
        <[u64]>::len(self)
    }
    fn cost(&self, i: usize) -> u64 {
        self[i]
    }
}

/// Costs given by a function of the index, for `0..len`. The function must be
/// pure: the same cost for the same index every time (see [`Costs`]).
///
/// # Example
///
/// ```
/// use ply_core::partition::{CostFn, Costs};
/// let quadratic = CostFn::new(4, |i| (i * i) as u64);
/// assert_eq!(quadratic.cost(3), 9);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CostFn<F> {
    len: usize,
    f: F,
}

impl<F: Fn(usize) -> u64> CostFn<F> {
    /// Items `0..len` costing `f(i)` each.
    ///
    /// # Example
    ///
    /// ```
    /// let c = ply_core::partition::CostFn::new(10, |_| 1);
    /// # let _ = c;
    /// ```
    pub fn new(len: usize, f: F) -> Self {
        CostFn { len, f }
    }
}

impl<F: Fn(usize) -> u64> Costs for CostFn<F> {
    fn len(&self) -> usize {
        self.len
    }
    fn cost(&self, i: usize) -> u64 {
        (self.f)(i)
    }
}

/// `0..len` in `parts` contiguous ranges of nearly equal total cost.
///
/// Item `i` goes to the part its starting cost (the sum of the costs before it)
/// falls in, when the total cost is cut into `parts` equal spans. So every part
/// costs at most `total / parts + max_cost` — the ideal plus one item — which is
/// the best any contiguous split can promise. Parts may be empty when one item
/// outweighs a whole span. With all costs zero it falls back to [`Even`].
///
/// Chunk `i` is found by scanning the costs (`O(len)`), since no allocation is
/// allowed here; compute each part once per worker.
///
/// # Example
///
/// The primes workload: testing `n` costs about `√n`, so late items are dearer
/// and the late parts come out shorter.
///
/// ```
/// use ply_core::partition::{CostFn, Schedule, Weighted};
///
/// let costs = CostFn::new(1000, |i| (i as f64).sqrt() as u64 + 1);
/// let parts = Weighted::new(costs, 4).unwrap();
/// let lens: Vec<usize> = parts.iter().map(|r| r.len()).collect();
/// assert_eq!(lens.iter().sum::<usize>(), 1000);
/// assert!(lens[0] > lens[3]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Weighted<C> {
    costs: C,
    parts: usize,
    total: u128,
}

impl<C: Costs> Weighted<C> {
    /// Splits the items of `costs` into `parts` parts of balanced cost.
    ///
    /// # Errors
    ///
    /// [`PartitionError::ZeroParts`] if `parts == 0`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::Weighted;
    /// let w: &[u64] = &[1, 2, 3];
    /// assert!(Weighted::new(w, 0).is_err());
    /// ```
    pub fn new(costs: C, parts: usize) -> Result<Self, PartitionError> {
        if parts == 0 {
            return Err(PartitionError::ZeroParts);
        }
        let total = (0..costs.len()).map(|i| u128::from(costs.cost(i))).sum();
        Ok(Weighted {
            parts: parts.min(costs.len()),
            costs,
            total,
        })
    }

    /// The first item whose starting cost reaches part `i`'s share: the cut
    /// before part `i`.
    fn cut(&self, i: usize) -> usize {
        if i == 0 {
            return 0;
        }
        if i >= self.parts {
            return self.costs.len();
        }
        let target = self.total * i as u128; // compare prefix · parts with it
        let mut prefix: u128 = 0;
        for item in 0..self.costs.len() {
            if prefix * self.parts as u128 >= target {
                return item;
            }
            prefix += u128::from(self.costs.cost(item));
        }
        self.costs.len()
    }
}

impl<C: Costs> Schedule for Weighted<C> {
    fn chunks(&self) -> usize {
        self.parts
    }

    fn chunk(&self, i: usize) -> Range<usize> {
        if self.total == 0 {
            return match Even::new(self.costs.len(), self.parts.max(1)) {
                Ok(even) => even.chunk(i),
                Err(_) => 0..0,
            };
        }
        self.cut(i)..self.cut(i + 1)
    }
}
