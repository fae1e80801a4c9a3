//! The errors of the process APIs, and [`Failure`]: how a worker process
//! failed, in words a user can act on.

use crate::InvalidOption;
use std::fmt;
use std::io;
use std::ops::Range;
use std::time::Duration;

use crate::fork::{ChildExit, Signal, signal_name};
use crate::ipc::IpcError;

/// Where the documentation of fork safety is, for error messages.
pub(crate) const FORK_SAFETY_DOCS: &str = "see \"Fork safety\" in the ply_os::process docs";

/// How a worker process failed the work it held.
///
/// A worker that ply killed itself is described by why ply killed it
/// ([`Timeout`](Self::Timeout), [`Stalled`](Self::Stalled),
/// [`Cancelled`](Self::Cancelled), [`Corrupt`](Self::Corrupt)), never by the
/// signal ply used.
///
/// # Example
///
/// ```
/// use ply_os::{fork::Signal, process::Failure};
/// let f = Failure::Signaled { signal: Signal::KILL, possibly_oom: true };
/// assert_eq!(f.to_string(), "was killed by signal 9 (SIGKILL), possibly out of memory");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Killed by a signal ply did not send (a crash, `abort()`, or someone's
    /// `kill`).
    Signaled {
        /// The signal.
        signal: Signal,
        /// `SIGKILL` while the cgroup's `oom_kill` counter went up: most likely
        /// the kernel's out-of-memory killer.
        possibly_oom: bool,
    },
    /// Exited on its own with this code (for example `std::process::exit`).
    Exited(i32),
    /// The work panicked, with this message and where.
    Panicked(String),
    /// The work ran longer than the timeout; ply killed the worker.
    Timeout(Duration),
    /// The worker, forked from a process that had other threads, sat blocked
    /// on a lock without progress; ply killed it. A lock one of those threads
    /// held at the fork is the likely cause.
    Stalled {
        /// Threads of the parent other than the forking one, at the fork.
        other_threads: usize,
        /// How long it was blocked without progress.
        after: Duration,
    },
    /// The work was cancelled while running; ply killed the worker.
    Cancelled,
    /// The worker sent a corrupt message (one that did not decode, a frame
    /// over the limit, a report for a chunk that is not its round's, or with
    /// the wrong number of results); ply killed it and took nothing more it
    /// sent. Never retried: the text says what was wrong.
    Corrupt(String),
    /// The worker ended, but how cannot be known (for example another
    /// `waitpid` in this process took its exit status); the text says why.
    Unknown(String),
}

impl Failure {
    /// Describes a child's exit that ply did not cause, given the OOM-kill
    /// count from before the work.
    pub(crate) fn from_exit(exit: ChildExit, oom_kills_before: Option<u64>) -> Failure {
        match exit {
            ChildExit::Exited(code) => Failure::Exited(code),
            ChildExit::Signaled(signal) => Failure::Signaled {
                signal,
                possibly_oom: signal == Signal::KILL
                    && matches!((oom_kills_before, oom_kills()), (Some(a), Some(b)) if b > a),
            },
        }
    }

    /// A crash: the worker died of something other than a panic or a kill ply
    /// decided. Only crashes are retried (see [`Retry`](super::Retry)).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::Failure;
    /// assert!(Failure::Exited(3).is_crash());
    /// assert!(!Failure::Panicked("no".into()).is_crash());
    /// ```
    pub fn is_crash(&self) -> bool {
        matches!(self, Failure::Signaled { .. } | Failure::Exited(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Signaled {
                signal,
                possibly_oom,
            } => {
                write!(
                    f,
                    "was killed by signal {} ({})",
                    signal.as_raw(),
                    signal_name(*signal)
                )?;
                if *possibly_oom {
                    write!(f, ", possibly out of memory")?;
                }
                Ok(())
            }
            Failure::Exited(code) => write!(f, "exited with code {code}"),
            Failure::Panicked(message) => write!(f, "panicked: {message}"),
            Failure::Timeout(after) => write!(f, "timed out after {after:?} and was killed"),
            Failure::Stalled {
                other_threads,
                after,
            } => write!(
                f,
                "stalled for {after:?} blocked on a lock and was killed: the parent had \
                 {other_threads} other thread(s) when it forked this worker, and a lock one \
                 of them held at that moment is the likely cause ({FORK_SAFETY_DOCS})"
            ),
            Failure::Cancelled => write!(f, "was cancelled and killed"),
            Failure::Corrupt(why) => write!(f, "sent a corrupt message ({why}) and was killed"),
            Failure::Unknown(why) => write!(f, "ended in an unknown way: {why}"),
        }
    }
}

/// The OOM kills counted in this process's cgroup (v2 `memory.events`), if
/// readable. The file's path is looked up once per process.
pub(crate) fn oom_kills() -> Option<u64> {
    static EVENTS: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let path = EVENTS.get_or_init(|| {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let dir = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
        let path = std::path::PathBuf::from(format!("/sys/fs/cgroup{dir}/memory.events"));
        path.exists().then_some(path)
    });
    let events = std::fs::read_to_string(path.as_ref()?).ok()?;
    events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

/// Why a fork-join map failed. `P` holds the results that did complete
/// (see [`completed`](Self::completed)): `Vec<Option<O>>` by input position
/// for [`map_slice`](super::map) and [`map_slice_plain`](super::map_slice_plain), the partial
/// results of the finished chunks for [`reduce`](super::reduce).
///
/// # Example
///
/// ```
/// use ply_os::fork::Signal;
/// use ply_os::process::{Failure, MapError, MapOptions, Retry, map_slice_plain};
///
/// let inputs: Vec<u32> = (0..100).collect();
/// let options = MapOptions::new().workers(2).retry(Retry::never());
/// let err = map_slice_plain(&inputs, |&x| {
///     if x == 42 {
///         std::process::abort(); // a crash in one item
///     }
///     x
/// }, &options)
/// .unwrap_err();
/// match &err {
///     MapError::Worker { items, failure, completed, .. } => {
///         assert!(items.contains(&42));
///         assert!(matches!(failure, Failure::Signaled { signal: Signal::ABORT, .. }));
///         // What finished elsewhere is kept.
///         assert!(completed.iter().flatten().count() < 100);
///     }
///     other => panic!("unexpected: {other}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum MapError<P = ()> {
    /// The items of a chunk could not be done.
    Worker {
        /// The chunk's items.
        items: Range<usize>,
        /// How its last worker failed.
        failure: Failure,
        /// How many times the chunk was run and failed.
        attempts: u32,
        /// The process id of its last worker.
        pid: i32,
        /// The results that did complete.
        completed: P,
    },
    /// The caller had other threads and its [`ThreadPolicy`](super::ThreadPolicy)
    /// is [`Refuse`](super::ThreadPolicy::Refuse): nothing was forked.
    ThreadsPresent {
        /// Threads other than the caller.
        other_threads: usize,
    },
    /// A setting out of range (zero workers, too many); also the
    /// [`source`](std::error::Error::source).
    Options(InvalidOption),
    /// The OS refused a fork, a socket or a mapping.
    Os(io::Error),
}

impl MapError {
    /// The same error with its items moved up by `offset` (for `reduce`,
    /// whose items are counted in its range's own numbers).
    pub(crate) fn shift_items(mut self, offset: usize) -> Self {
        if let MapError::Worker { items, .. } = &mut self {
            *items = items.start + offset..items.end + offset;
        }
        self
    }
}

impl<P> MapError<P> {
    /// The results that did complete, if the map got as far as running work.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{MapOptions, map_slice};
    /// let err = map_slice(&[1u32, 2, 3], |&x| if x == 2 { panic!("two") } else { x },
    ///     &MapOptions::new().workers(1).chunking(ply_core::partition::Chunking::Fixed(1))).unwrap_err();
    /// let done = err.completed().unwrap();
    /// assert_eq!(done[0], Some(1));
    /// assert_eq!(done[1], None);
    /// ```
    pub fn completed(&self) -> Option<&P> {
        match self {
            MapError::Worker { completed, .. } => Some(completed),
            _ => None,
        }
    }

    /// The same error with the completed results dropped (or replaced by `f`).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{MapError, MapOptions, map_slice};
    /// let err: MapError<Vec<Option<u32>>> =
    ///     map_slice(&[1u32], |_| -> u32 { panic!("no") }, &MapOptions::new().workers(1)).unwrap_err();
    /// let plain: MapError = err.map_completed(|_| ());
    /// assert!(plain.to_string().contains("panicked: no"));
    /// ```
    pub fn map_completed<Q>(self, f: impl FnOnce(P) -> Q) -> MapError<Q> {
        match self {
            MapError::Worker {
                items,
                failure,
                attempts,
                pid,
                completed,
            } => MapError::Worker {
                items,
                failure,
                attempts,
                pid,
                completed: f(completed),
            },
            MapError::ThreadsPresent { other_threads } => {
                MapError::ThreadsPresent { other_threads }
            }
            MapError::Options(why) => MapError::Options(why),
            MapError::Os(e) => MapError::Os(e),
        }
    }
}

impl<P> fmt::Display for MapError<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::Worker {
                items,
                failure,
                attempts,
                pid,
                ..
            } => write!(
                f,
                "items {}..{} failed after {attempts} attempt(s): worker process {pid} {failure}",
                items.start, items.end
            ),
            MapError::ThreadsPresent { other_threads } => write!(
                f,
                "refused to fork: the caller has {other_threads} other thread(s), and the \
                 thread policy is Refuse ({FORK_SAFETY_DOCS})"
            ),
            MapError::Options(bad) => bad.fmt(f),
            MapError::Os(_) => write!(f, "could not start workers"),
        }
    }
}

impl<P: fmt::Debug> std::error::Error for MapError<P> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MapError::Os(e) => Some(e),
            MapError::Options(bad) => Some(bad),
            _ => None,
        }
    }
}

impl<P> From<io::Error> for MapError<P> {
    fn from(e: io::Error) -> Self {
        MapError::Os(e)
    }
}

/// Why a task of a [`ProcessPool`](super::ProcessPool) did not produce a
/// response.
///
/// # Example
///
/// ```
/// use ply_os::process::{Failure, PoolTaskError};
/// let e = PoolTaskError::Worker { failure: Failure::Exited(3), attempts: 1, pid: 77 };
/// assert_eq!(e.to_string(), "worker process 77 exited with code 3 (attempt 1)");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PoolTaskError {
    /// The worker running the task failed: crashed, exited, panicked, or was
    /// killed by ply (timeout, cancel, stall).
    Worker {
        /// What happened to the worker.
        failure: Failure,
        /// How many times the task was run.
        attempts: u32,
        /// The process id of the worker that ran it last.
        pid: i32,
    },
    /// The task was cancelled before it started.
    Cancelled,
    /// The worker could not decode the request.
    BadRequest(String),
    /// The request could not be encoded.
    Encode(IpcError),
    /// The response did not decode.
    Corrupt(IpcError),
    /// `try_submit` found the queue at its bound, or `submit_timeout` found
    /// it there until its deadline.
    QueueFull,
    /// The pool was shut down (or terminated) before the task could finish.
    ShutDown,
    /// The fork server died or misbehaved, so no worker can be replaced: the
    /// pool is unusable.
    PoolBroken(String),
    /// The pool had no worker to run the task, and its fork server did not
    /// replace them in time (stopped, hung, or unable to fork); the text
    /// says which. The pool recovers when the server does.
    NoWorker(String),
}

impl fmt::Display for PoolTaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolTaskError::Worker {
                failure,
                attempts,
                pid,
            } => write!(f, "worker process {pid} {failure} (attempt {attempts})"),
            PoolTaskError::Cancelled => write!(f, "the task was cancelled before it started"),
            PoolTaskError::BadRequest(why) => write!(f, "the worker rejected the request: {why}"),
            PoolTaskError::Encode(_) => write!(f, "the request could not be encoded"),
            PoolTaskError::Corrupt(_) => write!(f, "the response was corrupt"),
            PoolTaskError::QueueFull => write!(f, "the process pool's queue is full; retry later"),
            PoolTaskError::ShutDown => write!(f, "the process pool is shut down"),
            PoolTaskError::PoolBroken(why) => write!(f, "the process pool is broken: {why}"),
            PoolTaskError::NoWorker(why) => write!(f, "no worker could run the task: {why}"),
        }
    }
}

impl std::error::Error for PoolTaskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolTaskError::Encode(e) | PoolTaskError::Corrupt(e) => Some(e),
            _ => None,
        }
    }
}

impl PoolTaskError {
    /// The same error, for another of the tasks it applies to.
    pub(crate) fn duplicate(&self) -> PoolTaskError {
        match self {
            PoolTaskError::PoolBroken(why) => PoolTaskError::PoolBroken(why.clone()),
            PoolTaskError::Cancelled => PoolTaskError::Cancelled,
            _ => PoolTaskError::ShutDown,
        }
    }
}

/// Why a [`ProcessPool`](super::ProcessPool) could not be built.
///
/// # Example
///
/// ```
/// use ply_os::process::{ProcessPoolBuilder, ProcessPoolError};
/// let err = ProcessPoolBuilder::new().workers(0).build(|x: u8| x).unwrap_err();
/// assert!(matches!(err, ProcessPoolError::Options(_)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessPoolError {
    /// A setting out of range: zero workers, a queue bound of zero; also
    /// the [`source`](std::error::Error::source).
    Options(InvalidOption),
    /// The caller had other threads and the pool's
    /// [`ThreadPolicy`](super::ThreadPolicy) is
    /// [`Refuse`](super::ThreadPolicy::Refuse) (only for
    /// [`build_forking`](super::ProcessPoolBuilder::build_forking)).
    ThreadsPresent {
        /// Threads other than the caller.
        other_threads: usize,
    },
    /// The OS refused a socket, a process, or the fork server did not start.
    Os(io::Error),
}

impl fmt::Display for ProcessPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessPoolError::Options(bad) => bad.fmt(f),
            ProcessPoolError::ThreadsPresent { other_threads } => write!(
                f,
                "refused to fork the fork server: the caller has {other_threads} other \
                 thread(s), and the thread policy is Refuse ({FORK_SAFETY_DOCS})"
            ),
            ProcessPoolError::Os(_) => write!(f, "could not start the process pool"),
        }
    }
}

impl std::error::Error for ProcessPoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessPoolError::Os(e) => Some(e),
            ProcessPoolError::Options(bad) => Some(bad),
            _ => None,
        }
    }
}

impl From<io::Error> for ProcessPoolError {
    fn from(e: io::Error) -> Self {
        ProcessPoolError::Os(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_with_names() {
        assert_eq!(
            Failure::from_exit(ChildExit::Signaled(Signal::SEGV), None).to_string(),
            "was killed by signal 11 (SIGSEGV)"
        );
        assert_eq!(
            Failure::from_exit(ChildExit::Exited(3), Some(0)),
            Failure::Exited(3)
        );
        // Without a counter that moved, a SIGKILL is not blamed on memory.
        assert_eq!(
            Failure::from_exit(ChildExit::Signaled(Signal::KILL), None),
            Failure::Signaled {
                signal: Signal::KILL,
                possibly_oom: false
            }
        );
        let stalled = Failure::Stalled {
            other_threads: 3,
            after: Duration::from_secs(2),
        }
        .to_string();
        assert!(stalled.contains("3 other thread(s)"), "{stalled}");
        assert!(stalled.contains("lock"), "{stalled}");
        assert!(stalled.contains("Fork safety"), "{stalled}");
    }
}
