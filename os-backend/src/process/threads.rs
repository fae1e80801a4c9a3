//! [`ThreadPolicy`]: what a fork from a process with other threads does.

use std::time::Duration;

/// What to do when the caller has other threads at the moment ply must fork
/// it (the fork-join [`map_slice`](super::map), [`map_slice_plain`](super::map_slice_plain),
/// [`reduce`](super::reduce), and
/// [`ProcessPoolBuilder::build_forking`](super::ProcessPoolBuilder::build_forking)).
///
/// ply takes the locks it and Rust's standard library hold process-wide
/// (stdout's, stderr's; glibc does the allocator's) across every fork, so
/// a worker may print and allocate whatever the other threads do. A lock of
/// the program's own that another thread held at the fork stays held in the
/// worker for good; this policy decides what happens about that.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::process::{MapOptions, ThreadPolicy};
/// let strict = MapOptions::new().threads(ThreadPolicy::Refuse);
/// let patient = MapOptions::new().threads(ThreadPolicy::Detect { patience: Duration::from_secs(30) });
/// assert_eq!(ThreadPolicy::default(), ThreadPolicy::Detect { patience: Duration::from_secs(3) });
/// # let _ = (strict, patient);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThreadPolicy {
    /// Fork anyway, and watch each worker: one that sits blocked on a lock
    /// (a futex wait, no CPU time, no progress) for `patience` is killed, and
    /// its work fails with [`Failure::Stalled`](super::Failure::Stalled),
    /// which says how many other threads the caller had. The default, with
    /// three seconds. A worker that legitimately waits on a lock that long
    /// (a cross-process queue, say) is taken for stalled too: raise the
    /// patience, or use `Proceed`.
    Detect {
        /// How long a worker may sit blocked without progress.
        patience: Duration,
    },
    /// Do not fork: fail with the number of other threads.
    Refuse,
    /// Fork and do not watch: for callers who know their threads hold no lock
    /// a worker needs.
    Proceed,
}

impl Default for ThreadPolicy {
    fn default() -> Self {
        ThreadPolicy::Detect {
            patience: Duration::from_secs(3),
        }
    }
}

/// What a policy says about forking now.
pub(crate) enum ForkPlan {
    /// Fork; watch workers for stalls with this patience if `Some`.
    Fork {
        other_threads: usize,
        watch: Option<Duration>,
    },
    /// Do not fork.
    Refuse { other_threads: usize },
}

impl ThreadPolicy {
    /// Looks at the threads of this process and decides.
    pub(crate) fn plan(self) -> ForkPlan {
        let other_threads = crate::fork::other_threads().unwrap_or(0);
        match (self, other_threads) {
            (_, 0) => ForkPlan::Fork {
                other_threads,
                watch: None,
            },
            (ThreadPolicy::Refuse, n) => ForkPlan::Refuse { other_threads: n },
            (ThreadPolicy::Detect { patience }, n) => ForkPlan::Fork {
                other_threads: n,
                watch: Some(patience),
            },
            (ThreadPolicy::Proceed, n) => ForkPlan::Fork {
                other_threads: n,
                watch: None,
            },
        }
    }
}
