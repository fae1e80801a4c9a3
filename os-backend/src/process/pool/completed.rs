//! [`as_completed`] and [`wait`] over a process pool's task handles: the
//! same calls, with the same shape, as the thread pool's
//! ([`thread::as_completed`](crate::thread::as_completed),
//! [`thread::wait`](crate::thread::wait)).

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::task::TaskHandle;
use crate::completion::{Awaitable, Completions, WaitFor};
use crate::process::error::PoolTaskError;

impl<Resp: DeserializeOwned> Awaitable for TaskHandle<Resp> {
    type Outcome = Result<Resp, PoolTaskError>;

    fn notify(&self, index: usize, tx: Sender<usize>) {
        self.notify_on_finish(index, tx);
    }

    fn join(self) -> Self::Outcome {
        TaskHandle::join(self)
    }

    fn failed(outcome: &Self::Outcome) -> bool {
        outcome.is_err()
    }
}

/// Yields `(index, result)` for process tasks as they finish (from
/// [`as_completed`] or [`wait`]).
///
/// # Example
///
/// ```
/// use ply_os::process::{ProcessPool, as_completed};
/// let pool = ProcessPool::builder().workers(2).build(|x: u32| x * x)?;
/// let handles = (0..3u32).map(|x| pool.submit(&x)).collect::<Result<Vec<_>, _>>()?;
/// let mut got: Vec<(usize, u32)> = as_completed(handles).map(|(i, r)| (i, r.unwrap())).collect();
/// got.sort();
/// assert_eq!(got, [(0, 0), (1, 1), (2, 4)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping it drops the handles; their results are discarded"]
pub struct AsCompleted<Resp: DeserializeOwned>(Completions<TaskHandle<Resp>>);

/// Waits on many handles at once, yielding `(position, result)` in the
/// order the tasks finish (Python's `concurrent.futures.as_completed`).
///
/// # Example
///
/// ```
/// use ply_os::process::{ProcessPool, as_completed};
/// let pool = ProcessPool::builder().workers(2).build(|ms: u64| {
///     std::thread::sleep(std::time::Duration::from_millis(ms));
///     ms
/// })?;
/// let slow = pool.submit(&60_000)?;
/// let fast = pool.submit(&1)?;
/// let mut done = as_completed([slow, fast]);
/// assert_eq!(done.next().map(|(i, r)| (i, r.unwrap())), Some((1, 1)));
/// pool.terminate(); // the slow task fails with `ShutDown`, not waited for
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn as_completed<Resp: DeserializeOwned>(
    handles: impl IntoIterator<Item = TaskHandle<Resp>>,
) -> AsCompleted<Resp> {
    AsCompleted(Completions::new(handles))
}

/// Waits until `until` holds for `handles`, or `timeout` passes (Python's
/// `concurrent.futures.wait`). Returns the tasks finished by then, as
/// `(position, result)` in completion order, and the others as an
/// [`AsCompleted`] to wait on again or iterate.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::process::{ProcessPool, WaitFor, wait};
/// let pool = ProcessPool::builder().workers(2).build(|ms: u64| {
///     std::thread::sleep(Duration::from_millis(ms));
///     ms
/// })?;
/// let handles = vec![pool.submit(&600_000)?, pool.submit(&1)?];
/// let (done, pending) = wait(handles, WaitFor::FirstCompleted, Duration::from_secs(60));
/// assert!(matches!(done[..], [(1, Ok(1))]));
/// assert_eq!(pending.len(), 1);
/// pool.terminate(); // the long task fails with `ShutDown`
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[allow(clippy::type_complexity)] // Python's `done, not_done`, spelled out
pub fn wait<Resp: DeserializeOwned>(
    handles: impl IntoIterator<Item = TaskHandle<Resp>>,
    until: WaitFor,
    timeout: Duration,
) -> (Vec<(usize, Result<Resp, PoolTaskError>)>, AsCompleted<Resp>) {
    let mut pending = as_completed(handles);
    let done = pending.wait(until, timeout);
    (done, pending)
}

impl<Resp: DeserializeOwned> AsCompleted<Resp> {
    /// Tasks not reported yet.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPool::builder().workers(1).build(|x: u8| x)?;
    /// let mut tasks = ply_os::process::as_completed([pool.submit(&1)?]);
    /// assert_eq!(tasks.len(), 1);
    /// assert_eq!(tasks.next().map(|(i, r)| (i, r.unwrap())), Some((0, 1)));
    /// assert_eq!(tasks.len(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::len_without_is_empty)] // an iterator: `next` says empty
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Waits until `until` holds for the tasks not reported yet, or
    /// `timeout` passes; returns those finished by then (see [`wait`]).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_os::process::{ProcessPool, WaitFor, as_completed};
    /// let pool = ProcessPool::builder().workers(2).build(|x: u8| x)?;
    /// let mut tasks = as_completed([pool.submit(&1)?, pool.submit(&2)?]);
    /// let done = tasks.wait(WaitFor::AllCompleted, Duration::from_secs(60));
    /// assert_eq!(done.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(
        &mut self,
        until: WaitFor,
        timeout: Duration,
    ) -> Vec<(usize, Result<Resp, PoolTaskError>)> {
        self.0.wait(until, timeout)
    }

    /// The next task to finish, waiting at most `timeout`; `None` if every
    /// task is reported or none finished in time.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = ply_os::process::ProcessPool::builder().workers(1).build(|x: u8| x)?;
    /// let mut tasks = ply_os::process::as_completed([pool.submit(&7)?]);
    /// let (i, r) = tasks.next_timeout(Duration::from_secs(60)).expect("done in time");
    /// assert_eq!((i, r?), (0, 7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Option<(usize, Result<Resp, PoolTaskError>)> {
        self.0.next_until(Instant::now().checked_add(timeout))
    }
}

impl<Resp: DeserializeOwned> Iterator for AsCompleted<Resp> {
    type Item = (usize, Result<Resp, PoolTaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_until(None)
    }
}

impl<Resp: DeserializeOwned> std::fmt::Debug for AsCompleted<Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted")
            .field("pending", &self.len())
            .finish()
    }
}
