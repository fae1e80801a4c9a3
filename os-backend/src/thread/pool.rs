//! [`ThreadPool`] and [`ThreadPoolBuilder`]: the public API of the pool —
//! building it, submitting tasks, shutting it down. The queues and worker
//! threads behind it are the engine's ([`Registry`]).

use crate::InvalidOption;
use std::fmt;
use std::sync::Arc;
#[cfg(not(loom))] // `park` is not built under loom
use {crate::park::Until, std::time::Duration};

use super::engine::{Admission, MAX_QUEUE_BOUND, Registry, StartFailure, WorkerConfig};
use super::error::{PoolError, SubmitError, TrySubmitError};
use super::job::Job;
use super::task::{TaskHandle, task_job};

/// Configures a [`ThreadPool`]; [`ThreadPoolBuilder::new`] and
/// [`ThreadPool::builder`] are the same.
///
/// # Example
///
/// ```
/// use ply_os::thread::ThreadPoolBuilder;
///
/// let pool = ThreadPoolBuilder::new()
///     .workers(2)
///     .name_prefix("crunch")
///     .stack_size(256 * 1024)
///     .queue_bound(64)
///     .build()?;
/// let name = pool.submit(|| std::thread::current().name().map(String::from)).unwrap();
/// assert!(name.join().unwrap().unwrap().starts_with("crunch-"));
/// # Ok::<(), ply_os::thread::PoolError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ThreadPoolBuilder {
    workers: Option<usize>,
    name_prefix: String,
    stack_size: Option<usize>,
    pin: bool,
    queue_bound: usize,
}

impl Default for ThreadPoolBuilder {
    fn default() -> Self {
        ThreadPoolBuilder {
            workers: None,
            name_prefix: "ply-worker".to_owned(),
            stack_size: None,
            pin: false,
            queue_bound: 1024,
        }
    }
}

impl ThreadPoolBuilder {
    /// A builder with the defaults: one worker per available CPU, workers
    /// named `ply-worker-<i>`, Rust's default stack, no pinning, a queue bound
    /// of 1024.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPoolBuilder::new().build().unwrap();
    /// assert_eq!(pool.workers(), std::thread::available_parallelism().unwrap().get());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of workers (default: the available parallelism).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPoolBuilder::new().workers(3).build().unwrap();
    /// assert_eq!(pool.workers(), 3);
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Worker threads are named `<prefix>-<i>` (default `ply-worker`).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPoolBuilder::new()
    ///     .workers(1)
    ///     .name_prefix("io")
    ///     .build()
    ///     .unwrap();
    /// let name = pool.submit(|| std::thread::current().name().map(String::from));
    /// assert_eq!(name.unwrap().join().unwrap().as_deref(), Some("io-0"));
    /// ```
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = prefix.into();
        self
    }

    /// Each worker's stack size in bytes (default: Rust's default, 2 MiB).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPoolBuilder::new()
    ///     .workers(1)
    ///     .stack_size(8 << 20)
    ///     .build()
    ///     .unwrap();
    /// // A task may use most of its 8 MiB stack.
    /// let h = pool.submit(|| {
    ///     let buf = [1u8; 6 << 20];
    ///     std::hint::black_box(&buf).iter().map(|&b| b as usize).sum::<usize>()
    /// });
    /// assert_eq!(h.unwrap().join(), Ok(6 << 20));
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Pin worker `i` to the `i`-th allowed CPU (modulo their number).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::affinity::allowed_cpus;
    ///
    /// let pool = ply_os::thread::ThreadPoolBuilder::new()
    ///     .workers(1)
    ///     .pin_workers(true)
    ///     .build()
    ///     .unwrap();
    /// let first = allowed_cpus().unwrap()[0];
    /// let cpus = pool.submit(|| allowed_cpus().unwrap()).unwrap().join().unwrap();
    /// assert_eq!(cpus, [first]); // worker 0 runs on the first allowed CPU only
    /// ```
    pub fn pin_workers(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// At most this many tasks wait in each queue (default 1024, at most
    /// [`MAX_QUEUE_BOUND`]): in a worker's or an outside thread's own ring, and
    /// in the shared injector behind them. When both are full, `submit` blocks
    /// (a worker runs the task itself), `try_submit` fails, and
    /// `submit_timeout` waits until its deadline. A scope's `spawn` runs the
    /// task on the spawning thread as soon as that thread's own ring is full.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::thread::{MAX_QUEUE_BOUND, PoolError, ThreadPoolBuilder};
    ///
    /// assert!(ThreadPoolBuilder::new().queue_bound(16).build().is_ok());
    /// let too_big = ThreadPoolBuilder::new().queue_bound(MAX_QUEUE_BOUND + 1).build();
    /// assert!(matches!(too_big, Err(PoolError::Options(_))));
    /// ```
    pub fn queue_bound(mut self, n: usize) -> Self {
        self.queue_bound = n;
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`PoolError`] for zero workers, a bad queue bound, a thread the OS would
    /// not start, or a failed pinning (the started workers are shut down).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::thread::{PoolError, ThreadPoolBuilder};
    ///
    /// assert!(matches!(
    ///     ThreadPoolBuilder::new().workers(0).build(),
    ///     Err(PoolError::Options(_))
    /// ));
    /// let pool = ThreadPoolBuilder::new().workers(2).build()?;
    /// assert_eq!(pool.submit(|| 6 * 7).unwrap().join(), Ok(42));
    /// # Ok::<(), PoolError>(())
    /// ```
    pub fn build(self) -> Result<ThreadPool, PoolError> {
        let workers = match self.workers {
            Some(0) => {
                return Err(PoolError::Options(InvalidOption::new(
                    "workers",
                    "must be at least 1, not 0",
                )));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.queue_bound == 0 || self.queue_bound > MAX_QUEUE_BOUND {
            return Err(PoolError::Options(InvalidOption::new(
                "queue_bound",
                format!("must be 1 to {MAX_QUEUE_BOUND}, not {}", self.queue_bound),
            )));
        }
        let cpus = if self.pin {
            crate::affinity::allowed_cpus().map_err(PoolError::Spawn)?
        } else {
            Vec::new()
        };
        let config = WorkerConfig {
            name_prefix: self.name_prefix,
            stack_size: self.stack_size,
            cpus,
        };
        let pool = ThreadPool {
            registry: Registry::new(workers, self.queue_bound, config),
        };
        // On an error, dropping `pool` shuts down the workers started so far.
        pool.registry
            .start_workers()
            .map_err(|failure| match failure {
                StartFailure::Spawn(e) => PoolError::Spawn(e),
                StartFailure::Pin { worker, cpu, error } => PoolError::Pin { worker, cpu, error },
            })?;
        Ok(pool)
    }
}

/// A pool of worker threads running submitted closures.
///
/// Dropping the pool finishes the queued tasks and joins every worker — so it
/// waits for running tasks too: a task blocked forever blocks the drop (threads
/// cannot be killed; the process pool can kill its workers).
/// [`terminate`](Self::terminate) cancels the queued tasks instead.
///
/// A forked child has a copy of the pool but none of its worker threads:
/// there the pool takes no tasks ([`SubmitError::ShutDown`]; a
/// [`scope`](Self::scope) runs its spawns inline), never runs the parent's
/// queued tasks, and shuts down at once. A handle to one of the parent's
/// tasks never finishes in the child ([`TaskHandle::join_timeout`] gives up).
///
/// # Example
///
/// ```
/// use ply_os::thread::ThreadPool;
///
/// let pool = ThreadPool::new(4).unwrap();
/// let handles: Vec<_> = (0..8u64).map(|i| pool.submit(move || i * i).unwrap()).collect();
/// let squares: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
/// ```
pub struct ThreadPool {
    pub(crate) registry: Arc<Registry>,
}

impl ThreadPool {
    /// A pool of `workers` workers with default settings.
    ///
    /// # Errors
    ///
    /// See [`ThreadPoolBuilder::build`].
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.workers(), 2);
    /// ```
    pub fn new(workers: usize) -> Result<Self, PoolError> {
        ThreadPoolBuilder::new().workers(workers).build()
    }

    /// A builder for a configured pool (the same as [`ThreadPoolBuilder::new`]).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::builder().workers(1).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    /// The number of worker threads.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::thread::ThreadPool::new(3).unwrap().workers(), 3);
    /// ```
    pub fn workers(&self) -> usize {
        self.registry.workers()
    }

    /// Queues `job` (see [`Registry::submit`]). `Err` gives the job back if
    /// the pool is shut down.
    #[allow(clippy::result_large_err)] // the job is four words
    pub(crate) fn submit_job(&self, job: Job) -> Result<(), Job> {
        self.registry.submit(job)
    }

    /// Submits `f` and returns a handle to its result. Blocks while the queue
    /// is at its bound (back-pressure); a task of this pool submitting to a full
    /// queue runs the new task itself instead, so nested submission cannot
    /// deadlock.
    ///
    /// # Errors
    ///
    /// [`SubmitError::ShutDown`] after [`shutdown`](Self::shutdown) or
    /// [`terminate`](Self::terminate) (at once, for a submitter blocked on
    /// the full queue when they begin); the task is dropped unrun.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
    /// let h = pool.submit(|| "hello".len()).unwrap();
    /// assert_eq!(h.join(), Ok(5));
    /// ```
    pub fn submit<F, T>(&self, f: F) -> Result<TaskHandle<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (job, handle) = task_job(f);
        match self.submit_job(job) {
            Ok(()) => Ok(handle),
            Err(_job) => Err(SubmitError::ShutDown), // dropping it cancels it
        }
    }

    /// Submits `f` unless the queue is full or the pool shut down; never blocks.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] or [`TrySubmitError::ShutDown`], with `f`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::thread::{ThreadPool, TrySubmitError};
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_bound(1).build().unwrap();
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let (release, release_rx) = std::sync::mpsc::channel::<()>();
    /// let busy = pool
    ///     .submit(move || {
    ///         started_tx.send(()).unwrap();
    ///         release_rx.recv().unwrap(); // occupies the only worker
    ///     })
    ///     .unwrap();
    /// started.recv().unwrap(); // the worker is busy: nothing drains the queue now
    /// let queued = pool.try_submit(|| ()).unwrap(); // the one queue slot
    /// assert!(matches!(pool.try_submit(|| ()), Err(TrySubmitError::Full(_))));
    /// release.send(()).unwrap();
    /// busy.join().unwrap();
    /// queued.join().unwrap();
    /// ```
    pub fn try_submit<F, T>(&self, f: F) -> Result<TaskHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.queue_admitted(self.registry.admit(false), f)
    }

    /// Queues `f` if `admission` reserved it a place; else gives it back
    /// with the reason.
    fn queue_admitted<F, T>(
        &self,
        admission: Admission,
        f: F,
    ) -> Result<TaskHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match admission {
            Admission::Queued => {
                let (job, handle) = task_job(f);
                self.registry.push(job);
                Ok(handle)
            }
            Admission::Full | Admission::RunHere => Err(TrySubmitError::Full(f)),
            Admission::Closed => Err(TrySubmitError::ShutDown(f)),
        }
    }

    /// As [`submit`](Self::submit), but waits at most `timeout` for room in a
    /// full queue (sleeping, not spinning), so a pool whose workers are all
    /// stuck cannot hold the caller for ever. A task of this pool finds a
    /// full queue `Full` at once: waiting on its own pool could deadlock.
    ///
    /// # Errors
    ///
    /// [`TrySubmitError::Full`] if the queue stayed full until the deadline;
    /// [`TrySubmitError::ShutDown`] if the pool is, or gets, shut down while
    /// waiting: the wait ends as soon as [`shutdown`](Self::shutdown) or
    /// [`terminate`](Self::terminate) begins, even if every worker is stuck
    /// and no place would ever free up. Either way `f` comes back.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_os::thread::{ThreadPool, TrySubmitError};
    ///
    /// let pool = ThreadPool::builder().workers(1).queue_bound(1).build().unwrap();
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// let (release, release_rx) = std::sync::mpsc::channel::<()>();
    /// let busy = pool
    ///     .submit(move || {
    ///         started_tx.send(()).unwrap();
    ///         release_rx.recv().unwrap(); // occupies the only worker
    ///     })
    ///     .unwrap();
    /// started.recv().unwrap();
    /// let queued = pool.submit_timeout(|| 1, Duration::from_secs(5)).unwrap();
    /// let late = pool.submit_timeout(|| 2, Duration::from_millis(10));
    /// assert!(matches!(late, Err(TrySubmitError::Full(_)))); // the queue stayed full
    /// release.send(()).unwrap();
    /// busy.join().unwrap();
    /// assert_eq!(queued.join(), Ok(1));
    /// ```
    #[cfg(not(loom))]
    pub fn submit_timeout<F, T>(
        &self,
        f: F,
        timeout: Duration,
    ) -> Result<TaskHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let admission = self
            .registry
            .admit_with(true, Some(&mut Until::after(timeout)));
        self.queue_admitted(admission, f)
    }

    /// Stops taking tasks, finishes every queued one, and joins the workers.
    /// Idempotent; [`Drop`] calls it.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::thread::{SubmitError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let h = pool.submit(|| 1).unwrap();
    /// pool.shutdown();
    /// assert_eq!(h.join(), Ok(1)); // queued work was finished
    /// assert_eq!(pool.submit(|| 2).err(), Some(SubmitError::ShutDown));
    /// ```
    pub fn shutdown(&self) {
        self.registry.shutdown();
        self.registry.join_workers();
    }

    /// Stops now: takes no new tasks, cancels every queued one (their handles
    /// report [`TaskError::Cancelled`](super::TaskError::Cancelled); a
    /// [`scope`](Self::scope) that had tasks cancelled panics when it ends),
    /// lets running tasks finish, and joins the workers. Idempotent; after
    /// [`shutdown`](Self::shutdown) it has nothing left to cancel.
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
    /// let running = pool
    ///     .submit(move || {
    ///         started_tx.send(()).unwrap();
    ///         release_rx.recv().unwrap();
    ///         "finished"
    ///     })
    ///     .unwrap();
    /// started.recv().unwrap(); // the only worker is busy: the rest wait in the queue
    /// let queued: Vec<_> = (0..3).map(|i| pool.submit(move || i).unwrap()).collect();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| pool.terminate());
    ///     for h in queued {
    ///         assert_eq!(h.join(), Err(TaskError::Cancelled)); // without waiting for `running`
    ///     }
    ///     release.send(()).unwrap();
    /// });
    /// assert_eq!(running.join(), Ok("finished")); // a running task runs to its end
    /// ```
    pub fn terminate(&self) {
        self.registry.terminate();
        self.registry.join_workers();
    }

    /// Runs one queued task on the calling thread, if there is one (used while
    /// waiting, so waiting threads help instead of idling).
    pub(crate) fn help(&self) -> bool {
        self.registry.help()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.registry.workers())
            .field("shut_down", &self.registry.is_closed())
            .finish()
    }
}
