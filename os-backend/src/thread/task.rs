//! Task handles: a submitted task's result, its panic, or its cancellation.

use std::any::Any;
use std::fmt;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::pool::help_own_pool;

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
pub enum TaskError {
    /// The task panicked; the panic message (or a note that it had none).
    Panicked(String),
    /// The task was dropped without running (its pool was torn down first).
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

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(panic payload is not a string)".to_owned()
    }
}

/// The result slot a task and its handle share.
pub(crate) struct TaskState<T> {
    slot: Mutex<Slot<T>>,
    done: Condvar,
}

struct Slot<T> {
    result: Option<Result<T, TaskError>>,
    finished: bool,
    /// Completion notification for `as_completed`: (index, channel).
    notify: Option<(usize, Sender<usize>)>,
}

impl<T> TaskState<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(TaskState {
            slot: Mutex::new(Slot {
                result: None,
                finished: false,
                notify: None,
            }),
            done: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        // Only this module touches the slot and never panics while holding it.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the result (first call wins) and wakes the joiner.
    pub(crate) fn finish(&self, result: Result<T, TaskError>) {
        let mut slot = self.lock();
        if slot.finished {
            return;
        }
        slot.result = Some(result);
        slot.finished = true;
        if let Some((index, tx)) = slot.notify.take() {
            let _ = tx.send(index); // the receiver may be gone: fine
        }
        drop(slot);
        self.done.notify_all();
    }
}

/// A submitted task: wait for its result with [`join`](TaskHandle::join).
///
/// Dropping the handle does not cancel the task; it runs and its result is
/// discarded.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::thread::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let h = pool.submit(|| 6 * 7).unwrap();
/// assert_eq!(h.join(), Ok(42));
///
/// let slow = pool.submit(|| std::thread::sleep(Duration::from_millis(200))).unwrap();
/// let slow = slow.join_timeout(Duration::from_millis(1)).unwrap_err(); // not yet
/// assert!(slow.join().is_ok());
/// ```
pub struct TaskHandle<T> {
    pub(crate) state: Arc<TaskState<T>>,
}

impl<T> TaskHandle<T> {
    /// Waits for the task and returns its value, or why there is none.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] if the task panicked (the pool lives on);
    /// [`TaskError::Cancelled`] if it never ran.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(1).unwrap();
    /// assert_eq!(pool.submit(|| "done").unwrap().join(), Ok("done"));
    /// ```
    pub fn join(self) -> Result<T, TaskError> {
        match self.wait_until(None) {
            Ok(result) => result,
            Err(_) => unreachable!("no deadline, no timeout"),
        }
    }

    /// Waits for the result until `deadline` (if any). On a pool worker, runs
    /// queued tasks of its pool while waiting: the task waited for may be one of
    /// them, and a worker that only blocked could deadlock its own pool.
    #[allow(clippy::result_large_err)]
    fn wait_until(self, deadline: Option<Instant>) -> Result<Result<T, TaskError>, Self> {
        loop {
            let mut slot = self.state.lock();
            if slot.finished {
                return Ok(slot.result.take().unwrap_or(Err(TaskError::Cancelled)));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                drop(slot);
                return Err(self);
            }
            // Release the slot before helping: the task we run may be this one,
            // and it locks the slot to store its result.
            drop(slot);
            match help_own_pool() {
                Some(true) => continue, // ran someone's task; check again
                Some(false) => {
                    // A worker with nothing to run: nap briefly, then look again.
                    let nap = Duration::from_micros(200);
                    let nap = deadline.map_or(nap, |d| nap.min(d - now));
                    let slot = self.state.lock();
                    if !slot.finished {
                        drop(
                            self.state
                                .done
                                .wait_timeout(slot, nap)
                                .unwrap_or_else(|e| e.into_inner()),
                        );
                    }
                }
                None => {
                    let mut slot = self.state.lock();
                    if slot.finished {
                        continue;
                    }
                    slot = match deadline {
                        None => self
                            .state
                            .done
                            .wait(slot)
                            .unwrap_or_else(|e| e.into_inner()),
                        Some(d) => {
                            self.state
                                .done
                                .wait_timeout(slot, d - now)
                                .unwrap_or_else(|e| e.into_inner())
                                .0
                        }
                    };
                    drop(slot);
                }
            }
        }
    }

    /// Waits up to `timeout`; on timeout, gives the handle back to try again.
    ///
    /// # Errors
    ///
    /// `Err(self)` if the task has not finished within `timeout`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = ply_os::thread::ThreadPool::new(1).unwrap();
    /// let h = pool.submit(|| 1).unwrap();
    /// assert_eq!(h.join_timeout(Duration::from_secs(10)).ok(), Some(Ok(1)));
    /// ```
    #[allow(clippy::result_large_err)] // the handle is one pointer
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, TaskError>, Self> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Whether the task has finished (its result is ready).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(1).unwrap();
    /// let h = pool.submit(|| ()).unwrap();
    /// while !h.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.state.lock().finished
    }

    /// Asks to be told on `tx`, with `index`, when the task finishes (at once if
    /// it already has).
    pub(crate) fn notify_on_finish(&self, index: usize, tx: Sender<usize>) {
        let mut slot = self.state.lock();
        if slot.finished {
            let _ = tx.send(index);
        } else {
            slot.notify = Some((index, tx));
        }
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Completes the task's state with `Cancelled` if the job is dropped unrun.
pub(crate) struct CancelOnDrop<T> {
    pub(crate) state: Option<Arc<TaskState<T>>>,
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            state.finish(Err(TaskError::Cancelled));
        }
    }
}
