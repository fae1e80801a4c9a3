//! [`RobustError`]: what a robust lock reports instead of a clean lock.

use core::fmt;

/// Why a robust lock could not be taken cleanly. `G` is what the caller holds
/// after an owner's death: a [`RecoveryGuard`](super::RecoveryGuard)
/// ([`RobustMutex`](super::RobustMutex)),
/// or `()` for the raw lock ([`RawRobustMutex`](super::RawRobustMutex), whose
/// caller then holds the lock).
///
/// # Example
///
/// ```
/// use ply_core::sync::RobustError;
///
/// let e: RobustError<()> = RobustError::NotRecoverable;
/// assert_eq!(
///     e.to_string(),
///     "the lock is unrecoverable: a holder died and the data was never marked consistent"
/// );
/// ```
#[non_exhaustive]
pub enum RobustError<G> {
    /// The previous holder died holding the lock. The caller holds it now (the
    /// guard is inside); the data may be half-updated, or torn. Repair it and
    /// mark it consistent, or overwrite it (see
    /// [`RecoveryGuard`](super::RecoveryGuard)); dropping the guard instead
    /// makes the lock unrecoverable.
    OwnerDied(G),
    /// A holder died and the data was never marked consistent: the lock is not
    /// taken, and never will be again.
    NotRecoverable,
}

impl<G> RobustError<G> {
    /// The guard inside `OwnerDied`, if this is one.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::RobustError;
    /// assert_eq!(RobustError::OwnerDied(7).into_owner_died(), Some(7));
    /// ```
    pub fn into_owner_died(self) -> Option<G> {
        match self {
            RobustError::OwnerDied(guard) => Some(guard),
            RobustError::NotRecoverable => None,
        }
    }
}

impl<G> fmt::Debug for RobustError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RobustError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            RobustError::NotRecoverable => f.write_str("NotRecoverable"),
        }
    }
}

impl<G> PartialEq for RobustError<G> {
    /// Compares the kind of error (guards are not compared).
    fn eq(&self, other: &Self) -> bool {
        matches!(
            (self, other),
            (RobustError::OwnerDied(_), RobustError::OwnerDied(_))
                | (RobustError::NotRecoverable, RobustError::NotRecoverable)
        )
    }
}

impl<G> fmt::Display for RobustError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RobustError::OwnerDied(_) => f.write_str(
                "the previous holder died holding the lock: repair the data, then mark it consistent",
            ),
            RobustError::NotRecoverable => f.write_str(
                "the lock is unrecoverable: a holder died and the data was never marked consistent",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl<G> std::error::Error for RobustError<G> {}
