//! The thread pool's errors: building a pool, submitting to it, and why a
//! task produced no value.

use std::fmt;
use std::io;

use super::engine::MAX_QUEUE_BOUND;

/// Why a pool could not be built.
///
/// # Example
///
/// ```
/// use ply_os::thread::{PoolError, ThreadPool};
/// assert!(matches!(ThreadPool::new(0), Err(PoolError::ZeroWorkers)));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum PoolError {
    /// A pool needs at least one worker.
    ZeroWorkers,
    /// The queue bound must be between 1 and [`MAX_QUEUE_BOUND`].
    QueueBound(usize),
    /// The OS refused to start a worker thread (the cause is the
    /// [`source`](std::error::Error::source)).
    Spawn(io::Error),
    /// A worker could not be pinned to its CPU.
    Pin {
        /// The worker.
        worker: usize,
        /// The CPU it was to be pinned to.
        cpu: usize,
        /// The `sched_setaffinity` error (also the
        /// [`source`](std::error::Error::source)).
        error: io::Error,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::ZeroWorkers => write!(f, "a thread pool needs at least one worker"),
            PoolError::QueueBound(n) => write!(
                f,
                "queue bound {n} is out of range: it must be 1 to {MAX_QUEUE_BOUND}"
            ),
            PoolError::Spawn(_) => write!(f, "could not start a worker thread"),
            PoolError::Pin { worker, cpu, .. } => {
                write!(f, "could not pin worker {worker} to CPU {cpu}")
            }
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Spawn(e) | PoolError::Pin { error: e, .. } => Some(e),
            PoolError::ZeroWorkers | PoolError::QueueBound(_) => None,
        }
    }
}

/// Why [`ThreadPool::submit`](super::ThreadPool::submit) refused a task.
///
/// # Example
///
/// ```
/// use ply_os::thread::{SubmitError, ThreadPool};
/// let pool = ThreadPool::new(1).unwrap();
/// pool.shutdown();
/// assert_eq!(pool.submit(|| ()).err(), Some(SubmitError::ShutDown));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The pool was shut down (or terminated, or lost every worker).
    ShutDown,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the thread pool is shut down and takes no new tasks")
    }
}

impl std::error::Error for SubmitError {}

/// Why [`ThreadPool::try_submit`](super::ThreadPool::try_submit) refused a
/// task; the task comes back.
///
/// # Example
///
/// ```
/// use ply_os::thread::TrySubmitError;
/// let e = TrySubmitError::Full(7);
/// assert_eq!(e.to_string(), "the thread pool's queue is full; retry later");
/// assert_eq!(e.into_inner(), 7);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrySubmitError<F> {
    /// The queue is at its bound.
    Full(F),
    /// The pool was shut down.
    ShutDown(F),
}

impl<F> TrySubmitError<F> {
    /// The task that was not submitted.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::thread::TrySubmitError;
    /// assert_eq!(TrySubmitError::ShutDown("task").into_inner(), "task");
    /// ```
    pub fn into_inner(self) -> F {
        match self {
            TrySubmitError::Full(f) | TrySubmitError::ShutDown(f) => f,
        }
    }
}

impl<F> fmt::Debug for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => write!(f, "Full(..)"),
            TrySubmitError::ShutDown(_) => write!(f, "ShutDown(..)"),
        }
    }
}

impl<F> fmt::Display for TrySubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySubmitError::Full(_) => write!(f, "the thread pool's queue is full; retry later"),
            TrySubmitError::ShutDown(_) => {
                write!(f, "the thread pool is shut down and takes no new tasks")
            }
        }
    }
}

impl<F> std::error::Error for TrySubmitError<F> {}

/// Why a task produced no value.
///
/// # Example
///
/// ```
/// use ply_os::thread::{TaskError, ThreadPool};
///
/// let pool = ThreadPool::new(1).unwrap();
/// let h = pool.submit(|| -> u32 { panic!("bad input") }).unwrap();
/// assert_eq!(h.join(), Err(TaskError::Panicked("bad input".into())));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the panic message (or a note that it had none).
    Panicked(String),
    /// The task never ran: it was cancelled
    /// ([`TaskHandle::cancel`](super::TaskHandle::cancel),
    /// [`ThreadPool::terminate`](super::ThreadPool::terminate)), or the pool
    /// lost every worker and could start none.
    Cancelled,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(msg) => write!(f, "task panicked: {msg}"),
            TaskError::Cancelled => write!(f, "task was cancelled before it ran"),
        }
    }
}

impl std::error::Error for TaskError {}
