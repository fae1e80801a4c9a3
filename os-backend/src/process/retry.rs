//! [`Retry`]: when a crashed run is run again, the same for the fork-join
//! map's chunks and the process pool's tasks.

/// How many times one piece of work (a chunk of a [`map_slice`](super::map), a
/// task of a [`ProcessPool`](super::ProcessPool)) may be *run*, the first run
/// included.
///
/// A run that ends in a crash — the worker killed by a signal ply did not
/// send, or exiting on its own — is run again on a fresh worker while runs
/// are left. Panics, timeouts, stalls, cancels and corrupt messages are never
/// retried: running again would fail the same way, or was decided on purpose.
/// Work that never failed is never charged: a chunk redone only because the
/// worker that had finished it died before reporting it costs no attempt.
///
/// The default is three runs, for both.
///
/// # Example
///
/// ```
/// use ply_os::process::{MapOptions, ProcessPoolBuilder, Retry};
/// assert_eq!(Retry::default().max_runs(), 3);
/// assert_eq!(Retry::never().max_runs(), 1);
/// let map = MapOptions::new().retry(Retry::runs(5));
/// let pool = ProcessPoolBuilder::new().retry(Retry::never());
/// # let _ = (map, pool);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Retry {
    runs: u32,
}

impl Retry {
    /// At most `runs` runs in all (0 is taken as 1).
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::process::Retry::runs(0).max_runs(), 1);
    /// ```
    pub const fn runs(runs: u32) -> Self {
        Retry {
            runs: if runs == 0 { 1 } else { runs },
        }
    }

    /// One run: a crash fails the work at once.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::process::Retry::never(), ply_os::process::Retry::runs(1));
    /// ```
    pub const fn never() -> Self {
        Retry::runs(1)
    }

    /// The most runs allowed, the first included.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::process::Retry::runs(2).max_runs(), 2);
    /// ```
    pub const fn max_runs(self) -> u32 {
        self.runs
    }

    /// Whether work whose runs so far ended in `failed_runs` failures, the
    /// last being `failure`, runs again.
    pub(crate) fn again(self, failed_runs: u32, failure: &super::error::Failure) -> bool {
        failure.is_crash() && failed_runs < self.runs
    }
}

impl Default for Retry {
    fn default() -> Self {
        Retry::runs(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::error::Failure;

    #[test]
    fn only_crashes_are_retried_and_only_while_runs_are_left() {
        let r = Retry::runs(2);
        assert!(r.again(1, &Failure::Exited(3)));
        assert!(!r.again(2, &Failure::Exited(3)));
        assert!(!r.again(1, &Failure::Panicked("x".into())));
        assert!(!r.again(1, &Failure::Timeout(std::time::Duration::ZERO)));
        assert!(!r.again(1, &Failure::Cancelled));
        assert!(!Retry::never().again(1, &Failure::Exited(1)));
    }
}
