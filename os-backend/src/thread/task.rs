//! Task handles: a submitted task's result, its panic, or its cancellation.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{AcqRel, Acquire};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::engine::help_own_pool;
use super::error::TaskError;
use super::job::Job;
use super::unwind::{drop_payload, drop_quietly, panic_message};

/// Where a task is in its life. Only `Queued` can become `Cancelled`, so a
/// task that a worker has started is never reported as cancelled.
const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELLED: u8 = 2;

/// The result slot a task and its handle share.
struct TaskState<T> {
    /// `QUEUED` → `RUNNING` (a worker starts it) or → `CANCELLED` (its handle
    /// cancelled it); the compare-exchange decides which came first.
    phase: AtomicU8,
    slot: Mutex<Slot<T>>,
    done: Condvar,
}

struct Slot<T> {
    result: Option<Result<T, TaskError>>,
    finished: bool,
    /// The handle is gone: nobody will take the result, so whoever holds it
    /// drops it, quietly (see [`drop_quietly`]).
    abandoned: bool,
    /// Completion notification for `as_completed`: (index, channel).
    notify: Option<(usize, Sender<usize>)>,
}

impl<T> TaskState<T> {
    fn new() -> Arc<Self> {
        Arc::new(TaskState {
            phase: AtomicU8::new(QUEUED),
            slot: Mutex::new(Slot {
                result: None,
                finished: false,
                abandoned: false,
                notify: None,
            }),
            done: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        // Only this module touches the slot, and runs no user code (no drop of
        // a result) while holding it.
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the task for running: `false` if it was cancelled first.
    fn start(&self) -> bool {
        // AcqRel/Acquire: one side's claim is ordered with the other's check;
        // the result itself travels under the slot's mutex.
        self.phase
            .compare_exchange(QUEUED, RUNNING, AcqRel, Acquire)
            .is_ok()
    }

    /// Cancels the task if it has not started; `true` if it never will run.
    fn cancel(&self) -> bool {
        match self
            .phase
            .compare_exchange(QUEUED, CANCELLED, AcqRel, Acquire)
        {
            Ok(_) => {
                self.finish(Err(TaskError::Cancelled));
                true
            }
            Err(phase) => phase == CANCELLED,
        }
    }

    /// Stores the result (first call wins) and wakes the joiner. A result
    /// nobody can take any more (the handle is gone, or a result is already
    /// stored) is dropped here, outside the lock, quietly.
    fn finish(&self, result: Result<T, TaskError>) {
        let mut slot = self.lock();
        if slot.finished {
            drop(slot);
            drop_quietly(result);
            return;
        }
        slot.finished = true;
        let unwanted = if slot.abandoned {
            Some(result)
        } else {
            slot.result = Some(result);
            None
        };
        let notify = slot.notify.take();
        drop(slot);
        self.done.notify_all();
        if let Some((index, tx)) = notify {
            let _ = tx.send(index); // the receiver may be gone: fine
        }
        drop_quietly(unwanted);
    }

    /// The handle is going away: drop a result already stored, and have
    /// [`finish`](Self::finish) drop one that comes later.
    fn abandon(&self) {
        let mut slot = self.lock();
        slot.abandoned = true;
        let result = slot.result.take();
        drop(slot);
        drop_quietly(result);
    }
}

/// A submitted task: wait for its result with [`join`](TaskHandle::join).
///
/// Dropping the handle does not cancel the task ([`cancel`](Self::cancel)
/// does): it runs and its result is dropped (a panic in the result's `Drop` is
/// contained; the panic hook reports it).
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
#[must_use = "a task's result or panic is only seen through its handle"]
pub struct TaskHandle<T> {
    state: Arc<TaskState<T>>,
}

impl<T> TaskHandle<T> {
    /// A handle to a task that was cancelled before it was queued.
    pub(crate) fn cancelled() -> Self {
        let state = TaskState::new();
        state.cancel();
        TaskHandle { state }
    }

    /// Cancels the task if it has not started: it will never run, and
    /// [`join`](Self::join) returns [`TaskError::Cancelled`]. Returns whether
    /// the task is cancelled (now or before); `false` if it has started, in
    /// which case it runs to the end. Its captured values are dropped when a
    /// worker next reaches it in the queue.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::mpsc::channel;
    /// use ply_os::thread::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (started_tx, started) = channel();
    /// let (release, release_rx) = channel::<()>();
    /// let busy = pool
    ///     .submit(move || {
    ///         started_tx.send(()).unwrap();
    ///         release_rx.recv().unwrap(); // occupies the only worker
    ///     })
    ///     .unwrap();
    /// started.recv().unwrap();
    /// let queued = pool.submit(|| unreachable!("cancelled tasks never run")).unwrap();
    /// assert!(queued.cancel());
    /// assert!(!busy.cancel()); // already running
    /// release.send(()).unwrap();
    /// assert_eq!(queued.join(), Err(TaskError::Cancelled));
    /// assert_eq!(busy.join(), Ok(()));
    /// ```
    pub fn cancel(&self) -> bool {
        self.state.cancel()
    }

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

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        self.state.abandon();
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
struct CancelOnDrop<T> {
    state: Option<Arc<TaskState<T>>>,
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            state.cancel();
        }
    }
}

/// Wraps a task in a job, with a handle to its result. The job claims the
/// task (unless cancelled), runs it, catches a panic and stores the result; if
/// the job is dropped unrun, the task is cancelled. Nothing the task does
/// unwinds out of the job: its panic and the panic payload's `Drop` are
/// contained here, and a result nobody wants is dropped quietly by
/// [`TaskState::finish`].
pub(crate) fn task_job<F, T>(f: F) -> (Job, TaskHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let state = TaskState::new();
    let mut guard = CancelOnDrop {
        state: Some(Arc::clone(&state)),
    };
    let job = Job::new(move || {
        let Some(state) = guard.state.take() else {
            return;
        };
        if !state.start() {
            drop_quietly(f); // cancelled while queued: never runs
            return;
        }
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => state.finish(Ok(value)),
            Err(payload) => {
                // Report first: the payload's `Drop` may panic.
                state.finish(Err(TaskError::Panicked(panic_message(&*payload))));
                drop_payload(payload);
            }
        }
    });
    (job, TaskHandle { state })
}
