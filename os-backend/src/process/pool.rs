//! [`ProcessPool`]: persistent worker processes with a fixed handler.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::io::{Read, Write};
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::failure::{Failure, oom_kills};
use super::server::{self, FromServer, Hello, Reply, ToServer, WorkerSetup};
use crate::fork::{ForkedChild, fork_child};
use crate::ipc::{IpcError, frame};

/// How long a waiting party polls (yielding) before it sleeps. Each of the
/// round trip's hops — caller to supervisor to worker and back — would
/// otherwise pay a wake-up.
pub(crate) const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(200);

/// How long the supervisor waits for the rest of a frame that has started.
const FRAME_PATIENCE: Duration = Duration::from_secs(5);

/// Why a task of a [`ProcessPool`] did not produce a response.
///
/// # Example
///
/// ```
/// use ply_os::process::{Failure, PoolTaskError};
/// let e = PoolTaskError::Worker { failure: Failure::Exited(3), attempts: 1 };
/// assert_eq!(e.to_string(), "the worker exited with code 3 (attempt 1)");
/// ```
#[derive(Debug)]
pub enum PoolTaskError {
    /// The worker running the task failed: crashed, exited, panicked, or ran
    /// past the timeout.
    Worker {
        /// What happened to the worker.
        failure: Failure,
        /// How many times the task was run.
        attempts: u32,
    },
    /// The worker could not decode the request.
    BadRequest(String),
    /// The request could not be encoded.
    Encode(IpcError),
    /// The response did not decode.
    Corrupt(IpcError),
    /// `try_submit` found the queue at its bound.
    QueueFull,
    /// The pool was shut down (or terminated) before the task could run.
    ShutDown,
    /// The fork server died, so no worker can be replaced: the pool is unusable.
    PoolBroken(String),
}

impl fmt::Display for PoolTaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolTaskError::Worker { failure, attempts } => {
                write!(f, "the worker {failure} (attempt {attempts})")
            }
            PoolTaskError::BadRequest(why) => write!(f, "the worker rejected the request: {why}"),
            PoolTaskError::Encode(e) => write!(f, "the request could not be encoded: {e}"),
            PoolTaskError::Corrupt(e) => write!(f, "the response was corrupt: {e}"),
            PoolTaskError::QueueFull => write!(f, "the process pool's queue is full; retry later"),
            PoolTaskError::ShutDown => write!(f, "the process pool is shut down"),
            PoolTaskError::PoolBroken(why) => write!(f, "the process pool is broken: {why}"),
        }
    }
}

impl std::error::Error for PoolTaskError {}

/// Why a [`ProcessPool`] could not be built.
///
/// # Example
///
/// ```
/// use ply_os::process::{ProcessPoolBuilder, ProcessPoolError};
/// let err = ProcessPoolBuilder::new().workers(0).build(|x: u8| x).unwrap_err();
/// assert!(matches!(err, ProcessPoolError::Options(_)));
/// ```
#[derive(Debug)]
pub enum ProcessPoolError {
    /// A pool needs at least one worker and a queue bound of at least one.
    Options(&'static str),
    /// The OS refused a socket or the fork server.
    Os(std::io::Error),
}

impl fmt::Display for ProcessPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessPoolError::Options(why) => write!(f, "invalid process pool options: {why}"),
            ProcessPoolError::Os(e) => write!(f, "could not start the process pool: {e}"),
        }
    }
}

impl std::error::Error for ProcessPoolError {}

impl From<std::io::Error> for ProcessPoolError {
    fn from(e: std::io::Error) -> Self {
        ProcessPoolError::Os(e)
    }
}

/// What a finished task sends to whoever waits for it: its tag (position in
/// a batch) and the worker's encoded [`Reply`], or why there is none.
type Completion = (usize, Result<Vec<u8>, PoolTaskError>);

struct Task {
    request: Vec<u8>,
    tag: usize,
    reply: Sender<Completion>,
    attempts: u32,
}

impl Task {
    fn finish(self, result: Result<Vec<u8>, PoolTaskError>) {
        let _ = self.reply.send((self.tag, result)); // the waiter may be gone
    }
}

#[derive(Default)]
struct Inbox {
    queue: VecDeque<Task>,
    /// No new submissions; finish what is queued, then stop.
    closed: bool,
    /// Stop now: fail what is queued, kill the workers.
    terminate: bool,
    /// The supervisor has stopped: nothing will run any more.
    stopped: bool,
    /// Worker pids, by slot (for diagnostics and tests).
    pids: Vec<Option<i32>>,
}

struct Shared {
    inbox: Mutex<Inbox>,
    /// Signalled when the queue shrinks (submitters wait for room).
    room: Condvar,
    /// One byte written here wakes the supervisor.
    waker: UnixStream,
    queue_bound: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        let _ = (&self.waker).write(&[1]); // full pipe: a wake-up is pending anyway
    }
}

/// Configures a [`ProcessPool`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::process::ProcessPoolBuilder;
///
/// let pool = ProcessPoolBuilder::new()
///     .workers(2)
///     .queue_bound(64)
///     .task_timeout(Duration::from_secs(30))
///     .max_tasks_per_child(1000)
///     .retry_on_crash(1)
///     .build(|n: u64| n + 1)?;
/// assert_eq!(pool.submit(&41)?.join()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ProcessPoolBuilder {
    workers: Option<usize>,
    queue_bound: usize,
    task_timeout: Option<Duration>,
    max_tasks_per_child: Option<u64>,
    retries: u32,
}

impl Default for ProcessPoolBuilder {
    fn default() -> Self {
        ProcessPoolBuilder {
            workers: None,
            queue_bound: 1024,
            task_timeout: None,
            max_tasks_per_child: None,
            retries: 0,
        }
    }
}

impl ProcessPoolBuilder {
    /// Defaults: one worker per available CPU, a queue bound of 1024, no
    /// timeout, no recycling, no retries.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build(|s: String| s.len())?;
    /// assert_eq!(pool.submit(&"four".to_string())?.join()?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Worker processes (default: the available parallelism).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(3).build(|x: u8| x)?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// At most this many tasks wait (default 1024); beyond it `submit` blocks
    /// and `try_submit` fails.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).queue_bound(8).build(|x: u8| x)?;
    /// assert_eq!(pool.submit(&1)?.join()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn queue_bound(mut self, n: usize) -> Self {
        self.queue_bound = n;
        self
    }

    /// A task running longer is failed with [`Failure::Timeout`]; its worker
    /// is killed and replaced.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_os::process::{Failure, PoolTaskError};
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1)
    ///     .task_timeout(Duration::from_millis(200))
    ///     .build(|ms: u64| std::thread::sleep(Duration::from_millis(ms)))?;
    /// assert!(matches!(
    ///     pool.submit(&60_000)?.join(),
    ///     Err(PoolTaskError::Worker { failure: Failure::Timeout(_), .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// A worker exits after this many tasks and a fresh one takes its place
    /// (for handlers that leak).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1)
    ///     .max_tasks_per_child(2)
    ///     .build(|_: ()| std::process::id())?;
    /// let pids: Vec<u32> = (0..4).map(|_| pool.submit(&()).unwrap().join().unwrap()).collect();
    /// assert_eq!(pids[0], pids[1]);
    /// assert_ne!(pids[1], pids[2]); // a fresh worker after two tasks
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_tasks_per_child(mut self, n: u64) -> Self {
        self.max_tasks_per_child = Some(n.max(1));
        self
    }

    /// Run a task again, on a fresh worker, up to `n` more times when its
    /// worker crashes or exits under it (default 0). Panics and timeouts are
    /// not retried.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::{process::ProcessPoolBuilder, shm::SharedBox};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// // Crashes on its first run only (a counter in shared memory remembers).
    /// let runs = SharedBox::new(AtomicU32::new(0))?;
    /// let runs_ref: &'static AtomicU32 = Box::leak(Box::new(runs));
    /// let pool = ProcessPoolBuilder::new().workers(1).retry_on_crash(1).build(move |x: u8| {
    ///     if runs_ref.fetch_add(1, Ordering::SeqCst) == 0 {
    ///         std::process::abort();
    ///     }
    ///     x
    /// })?;
    /// assert_eq!(pool.submit(&9)?.join()?, 9); // failed once, retried on a fresh worker
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry_on_crash(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Forks the fork server and the workers; every worker runs `handler`.
    ///
    /// # Errors
    ///
    /// [`ProcessPoolError`] for zero workers or queue bound, or an OS refusal.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(2).build(|name: String| format!("hello, {name}"))?;
    /// assert_eq!(pool.submit(&"ply".to_string())?.join()?, "hello, ply");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build<Req, Resp, F>(self, handler: F) -> Result<ProcessPool<Req, Resp>, ProcessPoolError>
    where
        Req: Serialize + DeserializeOwned + 'static,
        Resp: Serialize + DeserializeOwned + 'static,
        F: Fn(Req) -> Resp + Send + 'static,
    {
        let workers = match self.workers {
            Some(0) => {
                return Err(ProcessPoolError::Options(
                    "a process pool needs at least one worker",
                ));
            }
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.queue_bound == 0 {
            return Err(ProcessPoolError::Options(
                "the queue bound must be at least 1",
            ));
        }
        let address = server::pool_address()?;
        let listener = UnixListener::bind_addr(&address)?;
        listener.set_nonblocking(true)?;
        let token = server::random_token()?;
        let (waker, wake_rx) = UnixStream::pair()?;
        waker.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox {
                pids: vec![None; workers],
                ..Inbox::default()
            }),
            room: Condvar::new(),
            waker,
            queue_bound: self.queue_bound,
        });
        let (ready_tx, ready_rx) = channel::<std::io::Result<()>>();
        let config = self.clone();
        let thread_shared = Arc::clone(&shared);
        // The supervisor thread forks the server: PR_SET_PDEATHSIG follows the
        // forking *thread*, and this one lives exactly as long as the pool.
        let supervisor = std::thread::Builder::new()
            .name("ply-process-pool".into())
            .spawn(move || {
                let (control, server_end) = match UnixStream::pair() {
                    Ok(pair) => pair,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                let listener_fd = listener.as_raw_fd();
                let control_fd = control.as_raw_fd();
                let wake_fd = wake_rx.as_raw_fd();
                let setup = WorkerSetup {
                    handler: &handler,
                    address: &address,
                    token,
                    max_tasks: config.max_tasks_per_child,
                };
                let server = fork_child(move || {
                    // The server drops its copies of the pool's descriptors, so the
                    // pool sees EOF when the server dies and no worker inherits them.
                    // SAFETY: only closes fds; their owners are never used or
                    // dropped in this process, which ends with `_exit`.
                    unsafe {
                        libc::close(listener_fd);
                        libc::close(control_fd);
                        libc::close(wake_fd);
                    }
                    server::serve::<Req, Resp, F>(server_end, &setup)
                });
                let server = match server {
                    Ok(server) => server,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                let _ = ready_tx.send(Ok(()));
                Supervisor {
                    shared: thread_shared,
                    config,
                    token,
                    listener: Some(listener),
                    control,
                    wake_rx,
                    slots: (0..workers).map(|_| Slot::default()).collect(),
                    oom_baseline: oom_kills(),
                }
                .run(server);
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(ProcessPool {
                shared,
                supervisor: Mutex::new(Some(supervisor)),
                workers,
                _types: PhantomData,
            }),
            Ok(Err(e)) => {
                let _ = supervisor.join();
                Err(ProcessPoolError::Os(e))
            }
            Err(_) => {
                let _ = supervisor.join();
                Err(ProcessPoolError::Os(std::io::Error::other(
                    "the supervisor thread died",
                )))
            }
        }
    }
}

/// A pool of worker processes, forked once, each running a handler fixed at
/// creation: `Fn(Req) -> Resp`, with requests and responses serialized
/// (serde + postcard) over a socket per worker.
///
/// - **Crash isolation**: a worker killed by a signal, aborting, exiting or
///   panicking fails only the task it held — with a [`Failure`] that says what
///   happened — and (unless it merely panicked, which it survives) is replaced;
///   the pool keeps going. [`retry_on_crash`](ProcessPoolBuilder::retry_on_crash)
///   re-runs such tasks.
/// - **Timeouts**: a task past [`task_timeout`](ProcessPoolBuilder::task_timeout)
///   has its worker killed and fails with [`Failure::Timeout`].
/// - **Fork safety**: workers are forked by a single-threaded fork server
///   (see the `server` module docs); the pool's own process forks once, at
///   creation — make pools before the program's other threads hold locks.
/// - **Lifecycle**: every child is reaped; children die with the pool (and
///   with the process, by `PR_SET_PDEATHSIG`). [`shutdown`](Self::shutdown)
///   and `Drop` finish the queued tasks and wait for the workers;
///   [`terminate`](Self::terminate) kills them and fails what is queued.
///
/// # Example
///
/// ```
/// use ply_os::process::{Failure, PoolTaskError, ProcessPoolBuilder};
///
/// let pool = ProcessPoolBuilder::new().workers(2).build(|n: i32| {
///     if n < 0 {
///         std::process::abort(); // a crash takes down only this task
///     }
///     n * 2
/// })?;
/// let ok = pool.submit(&21)?;
/// let crash = pool.submit(&-1)?;
/// assert_eq!(ok.join()?, 42);
/// assert!(matches!(
///     crash.join(),
///     Err(PoolTaskError::Worker { failure: Failure::Signaled { signal: libc::SIGABRT, .. }, .. })
/// ));
/// assert_eq!(pool.submit(&5)?.join()?, 10); // a replacement worker serves on
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProcessPool<Req, Resp> {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
    workers: usize,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> ProcessPool<Req, Resp>
where
    Req: Serialize + DeserializeOwned + 'static,
    Resp: Serialize + DeserializeOwned + 'static,
{
    /// The number of worker slots.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(2).build(|x: u8| x)?;
    /// assert_eq!(pool.workers(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The pids of the workers alive now (a snapshot; a slot being refilled
    /// has none).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(2).build(|x: u8| x)?;
    /// pool.submit(&1)?.join()?;
    /// assert!(pool.worker_pids().len() <= 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker_pids(&self) -> Vec<i32> {
        self.shared.lock().pids.iter().flatten().copied().collect()
    }

    fn enqueue(
        &self,
        request: &Req,
        tag: usize,
        reply: Sender<Completion>,
        wait: bool,
    ) -> Result<(), PoolTaskError> {
        let request = frame::encode(request).map_err(PoolTaskError::Encode)?;
        let mut inbox = self.shared.lock();
        loop {
            if inbox.closed || inbox.stopped {
                return Err(PoolTaskError::ShutDown);
            }
            if inbox.queue.len() < self.shared.queue_bound {
                break;
            }
            if !wait {
                return Err(PoolTaskError::QueueFull);
            }
            inbox = self
                .shared
                .room
                .wait(inbox)
                .unwrap_or_else(|e| e.into_inner());
        }
        inbox.queue.push_back(Task {
            request,
            tag,
            reply,
            attempts: 0,
        });
        drop(inbox);
        self.shared.wake();
        Ok(())
    }

    /// Queues `request` (blocking while the queue is at its bound) and
    /// returns a handle to the response.
    ///
    /// # Errors
    ///
    /// [`PoolTaskError::ShutDown`] after `shutdown`; [`PoolTaskError::Encode`].
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build(|v: Vec<u32>| v.iter().sum::<u32>())?;
    /// assert_eq!(pool.submit(&vec![1, 2, 3])?.join()?, 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit(&self, request: &Req) -> Result<ProcessTask<Resp>, PoolTaskError> {
        let (tx, rx) = channel();
        self.enqueue(request, 0, tx, true)?;
        Ok(ProcessTask::new(rx))
    }

    /// As [`submit`](Self::submit), but fails with [`PoolTaskError::QueueFull`]
    /// instead of waiting.
    ///
    /// # Errors
    ///
    /// As `submit`, plus `QueueFull`.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).queue_bound(1).build(|x: u8| x)?;
    /// let h = pool.try_submit(&7)?;
    /// assert_eq!(h.join()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_submit(&self, request: &Req) -> Result<ProcessTask<Resp>, PoolTaskError> {
        let (tx, rx) = channel();
        self.enqueue(request, 0, tx, false)?;
        Ok(ProcessTask::new(rx))
    }

    /// Runs every request, yielding responses in input order. Requests are
    /// taken from the iterator lazily, at most `2 × workers` in flight.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(2).build(|x: u64| x * x)?;
    /// let squares: Vec<u64> = pool.map(1..=4u64).map(Result::unwrap).collect();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<I>(&self, requests: I) -> impl Iterator<Item = Result<Resp, PoolTaskError>> + '_
    where
        I: IntoIterator,
        I::Item: Borrow<Req>,
        I::IntoIter: 'static,
    {
        let mut inputs = requests.into_iter();
        let mut in_flight: VecDeque<Result<ProcessTask<Resp>, PoolTaskError>> = VecDeque::new();
        let window = 2 * self.workers;
        std::iter::from_fn(move || {
            while in_flight.len() < window {
                match inputs.next() {
                    Some(request) => in_flight.push_back(self.submit(request.borrow())),
                    None => break,
                }
            }
            Some(in_flight.pop_front()?.and_then(ProcessTask::join))
        })
    }

    /// Runs every request, yielding `(position, response)` as they complete.
    /// Requests are taken lazily, at most `2 × workers` in flight.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(2).build(|ms: u64| {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    ///     ms
    /// })?;
    /// let order: Vec<usize> = pool.as_completed([300u64, 1]).map(|(i, _)| i).collect();
    /// assert_eq!(order, [1, 0]); // the short task finished first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_completed<I>(
        &self,
        requests: I,
    ) -> impl Iterator<Item = (usize, Result<Resp, PoolTaskError>)> + '_
    where
        I: IntoIterator,
        I::Item: Borrow<Req>,
        I::IntoIter: 'static,
    {
        let mut inputs = requests.into_iter().enumerate();
        let (tx, rx) = channel::<Completion>();
        let mut in_flight = 0usize;
        let mut failed: VecDeque<(usize, PoolTaskError)> = VecDeque::new();
        let window = 2 * self.workers;
        std::iter::from_fn(move || {
            while in_flight < window {
                let Some((i, request)) = inputs.next() else {
                    break;
                };
                match self.enqueue(request.borrow(), i, tx.clone(), true) {
                    Ok(()) => in_flight += 1,
                    Err(e) => failed.push_back((i, e)),
                }
            }
            if let Some((i, e)) = failed.pop_front() {
                return Some((i, Err(e)));
            }
            if in_flight == 0 {
                return None;
            }
            in_flight -= 1;
            match rx.recv() {
                Ok((i, result)) => Some((i, decode_reply(result))),
                Err(_) => None, // unreachable: we hold a sender
            }
        })
    }

    /// Stops taking tasks, finishes the queued ones, and waits for every
    /// worker and the fork server to exit. Idempotent; `Drop` calls it.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{PoolTaskError, ProcessPoolBuilder};
    /// let pool = ProcessPoolBuilder::new().workers(1).build(|x: u8| x)?;
    /// let h = pool.submit(&3)?;
    /// pool.shutdown();
    /// assert_eq!(h.join()?, 3);
    /// assert!(matches!(pool.submit(&4), Err(PoolTaskError::ShutDown)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) {
        self.close_and_join();
    }

    /// Kills every worker now: running and queued tasks fail with
    /// [`PoolTaskError::ShutDown`]. Then waits as `shutdown` does.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{PoolTaskError, ProcessPoolBuilder};
    /// let pool = ProcessPoolBuilder::new().workers(1).build(|ms: u64| {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    ///     ms
    /// })?;
    /// let stuck = pool.submit(&600_000)?;
    /// pool.terminate();
    /// assert!(matches!(stuck.join(), Err(PoolTaskError::ShutDown)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn terminate(&self) {
        {
            let mut inbox = self.shared.lock();
            inbox.closed = true;
            inbox.terminate = true;
        }
        self.close_and_join();
    }
}

impl<Req, Resp> ProcessPool<Req, Resp> {
    /// Closes the pool to new tasks, wakes the supervisor and waits for it.
    fn close_and_join(&self) {
        self.shared.lock().closed = true;
        self.shared.wake();
        let handle = self
            .supervisor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        self.shared.room.notify_all();
    }
}

impl<Req, Resp> Drop for ProcessPool<Req, Resp> {
    fn drop(&mut self) {
        self.close_and_join();
    }
}

impl<Req, Resp> fmt::Debug for ProcessPool<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("workers", &self.workers)
            .finish()
    }
}

/// A handle to one task of a [`ProcessPool`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build(|x: u32| x + 1)?;
/// let task = pool.submit(&1)?;
/// match task.join_timeout(Duration::from_secs(30)) {
///     Ok(result) => assert_eq!(result?, 2),
///     Err(_still_running) => unreachable!("one addition takes less than 30 s"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProcessTask<Resp> {
    rx: Receiver<Completion>,
    _resp: PhantomData<fn() -> Resp>,
}

impl<Resp: DeserializeOwned> ProcessTask<Resp> {
    fn new(rx: Receiver<Completion>) -> Self {
        ProcessTask {
            rx,
            _resp: PhantomData,
        }
    }

    /// Waits for the response.
    ///
    /// # Errors
    ///
    /// [`PoolTaskError`]: the worker failed, the request or response was bad,
    /// or the pool stopped first.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build(|x: i64| -x)?;
    /// assert_eq!(pool.submit(&5)?.join()?, -5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(self) -> Result<Resp, PoolTaskError> {
        let spin_until = Instant::now() + SPIN_BEFORE_SLEEP;
        while Instant::now() < spin_until {
            match self.rx.try_recv() {
                Ok((_, result)) => return decode_reply(result),
                Err(std::sync::mpsc::TryRecvError::Empty) => std::thread::yield_now(),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
            }
        }
        match self.rx.recv() {
            Ok((_, result)) => decode_reply(result),
            Err(_) => Err(PoolTaskError::ShutDown),
        }
    }

    /// Waits at most `timeout`; gives the handle back if the task is not done.
    ///
    /// # Errors
    ///
    /// `Err(self)` on timeout; the inner result as for [`join`](Self::join).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build(|ms: u64| std::thread::sleep(Duration::from_millis(ms)))?;
    /// let slow = pool.submit(&300)?;
    /// let slow = slow.join_timeout(Duration::from_millis(10)).expect_err("not done yet");
    /// assert!(slow.join_timeout(Duration::from_secs(30)).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<Resp, PoolTaskError>, Self> {
        match self.rx.recv_timeout(timeout) {
            Ok((_, result)) => Ok(decode_reply(result)),
            Err(RecvTimeoutError::Timeout) => Err(self),
            Err(RecvTimeoutError::Disconnected) => Ok(Err(PoolTaskError::ShutDown)),
        }
    }
}

impl<Resp> fmt::Debug for ProcessTask<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessTask").finish_non_exhaustive()
    }
}

fn decode_reply<Resp: DeserializeOwned>(
    result: Result<Vec<u8>, PoolTaskError>,
) -> Result<Resp, PoolTaskError> {
    match frame::decode::<Reply<Resp>>(&result?).map_err(PoolTaskError::Corrupt)? {
        Reply::Done(response) => Ok(response),
        Reply::Panicked(message) => Err(PoolTaskError::Worker {
            failure: Failure::Panicked(message),
            attempts: 1,
        }),
        Reply::BadRequest(why) => Err(PoolTaskError::BadRequest(why)),
    }
}

/// One worker slot as the supervisor sees it.
#[derive(Default)]
struct Slot {
    /// Incarnation: bumped at each (re)spawn, so a late hello from a dead
    /// incarnation is ignored.
    generation: u64,
    pid: Option<i32>,
    /// Connected and not known to be closing.
    stream: Option<UnixStream>,
    busy: Option<(Task, Instant)>,
    killed_for_timeout: bool,
}

struct Supervisor {
    shared: Arc<Shared>,
    config: ProcessPoolBuilder,
    token: [u8; server::TOKEN_LEN],
    listener: Option<UnixListener>,
    control: UnixStream,
    wake_rx: UnixStream,
    slots: Vec<Slot>,
    oom_baseline: Option<u64>,
}

impl Supervisor {
    fn run(mut self, server: ForkedChild) {
        let broken = self.serve();
        // Stopping: fail what can no longer run, close every worker's
        // connection (they exit), tell the server, and reap it.
        let reason = broken.unwrap_or(PoolTaskError::ShutDown);
        let leftover: Vec<Task> = {
            let mut inbox = self.shared.lock();
            inbox.stopped = true;
            inbox.queue.drain(..).collect()
        };
        self.shared.room.notify_all();
        for task in leftover {
            task.finish(Err(clone_error(&reason)));
        }
        for slot in &mut self.slots {
            if let Some((task, _)) = slot.busy.take() {
                task.finish(Err(clone_error(&reason)));
            }
            slot.stream = None;
        }
        // Close the listener too: a worker whose connection is still in its
        // backlog (never accepted) then sees the connection reset and exits,
        // instead of waiting for a request forever.
        self.listener = None;
        let _ = send(&mut self.control, &ToServer::Shutdown);
        let _ = self.control.set_read_timeout(Some(Duration::from_secs(10)));
        // Drain the server's reports until it exits (EOF), then reap it; if it
        // does not finish in time, dropping the handle kills it.
        while frame::read_frame(&mut self.control, frame::DEFAULT_MAX_FRAME).is_ok() {}
        let mut server = server;
        let _ = server.wait_timeout(Duration::from_secs(10));
        self.shared.lock().pids.iter_mut().for_each(|p| *p = None);
    }

    /// The main loop; returns `Some(error)` if the pool broke, `None` on an
    /// orderly stop.
    fn serve(&mut self) -> Option<PoolTaskError> {
        let _ = self.control.set_read_timeout(Some(FRAME_PATIENCE));
        for slot in 0..self.slots.len() {
            if let Err(e) = self.respawn(slot) {
                return Some(e);
            }
        }
        loop {
            let (closed, terminate, queued) = {
                let inbox = self.shared.lock();
                (inbox.closed, inbox.terminate, inbox.queue.len())
            };
            if terminate {
                self.kill_all();
                return None;
            }
            if closed && queued == 0 && self.slots.iter().all(|s| s.busy.is_none()) {
                return None;
            }
            let ready = self.poll_once();
            if ready[2] != 0
                && let Err(e) = self.read_control()
            {
                return Some(e);
            }
            if ready[1] != 0 {
                self.accept_workers();
            }
            self.read_replies(&ready[3..]);
            self.assign();
            self.enforce_timeouts();
        }
    }

    fn respawn(&mut self, slot: usize) -> Result<(), PoolTaskError> {
        let s = &mut self.slots[slot];
        s.generation += 1;
        s.pid = None;
        s.stream = None;
        s.killed_for_timeout = false;
        let message = ToServer::Spawn {
            slot: slot as u32,
            generation: s.generation,
        };
        send(&mut self.control, &message)
            .map_err(|e| PoolTaskError::PoolBroken(format!("the fork server is gone: {e}")))
    }

    /// Waits for input; returns each descriptor's `revents`: the waker, the
    /// listener, the control socket, then one per slot.
    fn poll_once(&mut self) -> Vec<libc::c_short> {
        let mut fds = vec![
            pollfd(self.wake_rx.as_raw_fd()),
            pollfd(self.listener.as_ref().map_or(-1, |l| l.as_raw_fd())),
            pollfd(self.control.as_raw_fd()),
        ];
        fds.extend(
            self.slots
                .iter()
                .map(|s| pollfd(s.stream.as_ref().map_or(-1, |x| x.as_raw_fd()))),
        );
        // Poll without sleeping for a moment first (yielding the CPU between
        // looks): a reply that is microseconds away is seen without paying a
        // wake-up, which on a VM costs tens of microseconds.
        let spin_until = Instant::now() + SPIN_BEFORE_SLEEP;
        let mut ready = 0;
        while ready == 0 && Instant::now() < spin_until {
            // SAFETY: `fds` is a live array of `fds.len()` pollfds.
            ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
            if ready == 0 {
                std::thread::yield_now();
            }
        }
        if ready == 0 {
            // SAFETY: as above.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 20) };
        }
        if fds[0].revents != 0 {
            let mut sink = [0u8; 64];
            while matches!((&self.wake_rx).read(&mut sink), Ok(n) if n > 0) {}
        }
        fds.iter().map(|p| p.revents).collect()
    }

    fn read_control(&mut self) -> Result<(), PoolTaskError> {
        match peek_ready(&self.control) {
            Some(true) => {}
            Some(false) => return Err(PoolTaskError::PoolBroken("the fork server died".into())),
            None => return Ok(()),
        }
        let message = frame::read_frame(&mut self.control, frame::DEFAULT_MAX_FRAME)
            .and_then(|bytes| frame::decode::<FromServer>(&bytes))
            .map_err(|e| {
                PoolTaskError::PoolBroken(format!("the fork server's report failed: {e}"))
            })?;
        match message {
            FromServer::Spawned {
                slot,
                generation,
                pid,
            } => {
                let slot = slot as usize;
                if self
                    .slots
                    .get(slot)
                    .is_some_and(|s| s.generation == generation)
                {
                    self.slots[slot].pid = Some(pid);
                    self.shared.lock().pids[slot] = Some(pid);
                }
            }
            FromServer::SpawnFailed { slot, .. } => {
                // Try again shortly (the process limit may clear).
                std::thread::sleep(Duration::from_millis(50));
                self.respawn(slot as usize)?;
            }
            FromServer::Exited { pid, exit } => {
                let Some(index) = self.slots.iter().position(|s| s.pid == Some(pid)) else {
                    return Ok(());
                };
                self.shared.lock().pids[index] = None;
                let slot = &mut self.slots[index];
                if let Some((mut task, _)) = slot.busy.take() {
                    task.attempts += 1;
                    let failure = if slot.killed_for_timeout {
                        Failure::Timeout(self.config.task_timeout.unwrap_or_default())
                    } else {
                        let f = Failure::from_exit(exit, self.oom_baseline);
                        self.oom_baseline = oom_kills();
                        f
                    };
                    let crash = matches!(failure, Failure::Signaled { .. } | Failure::Exited(_));
                    if crash && task.attempts <= self.config.retries {
                        self.shared.lock().queue.push_front(task);
                    } else {
                        let attempts = task.attempts;
                        task.finish(Err(PoolTaskError::Worker { failure, attempts }));
                    }
                }
                let stopping = self.shared.lock().terminate;
                if !stopping {
                    self.respawn(index)?;
                }
            }
        }
        Ok(())
    }

    fn accept_workers(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok((mut stream, _)) = listener.accept() {
            let hello = stream
                .set_nonblocking(false)
                .and_then(|()| stream.set_read_timeout(Some(Duration::from_secs(1))))
                .map_err(IpcError::Io)
                .and_then(|()| frame::read_frame(&mut stream, 1024))
                .and_then(|bytes| frame::decode::<Hello>(&bytes));
            let Ok(hello) = hello else { continue };
            let slot = hello.slot as usize;
            let ours = hello.token == self.token
                && self
                    .slots
                    .get(slot)
                    .is_some_and(|s| s.generation == hello.generation);
            if ours && stream.set_read_timeout(Some(FRAME_PATIENCE)).is_ok() {
                self.slots[slot].stream = Some(stream);
            }
        }
    }

    /// Reads from the workers whose `revents` (one per slot) show input.
    fn read_replies(&mut self, ready: &[libc::c_short]) {
        for (slot, &revents) in self.slots.iter_mut().zip(ready) {
            if revents == 0 {
                continue;
            }
            let Some(stream) = slot.stream.as_mut() else {
                continue;
            };
            match peek_ready(stream) {
                Some(false) => slot.stream = None, // closed: the exit report follows
                Some(true) => match frame::read_frame(stream, frame::DEFAULT_MAX_FRAME) {
                    Ok(reply) => {
                        if let Some((task, _)) = slot.busy.take() {
                            task.finish(Ok(reply));
                        }
                    }
                    Err(_) => {
                        // Torn or stalled mid-reply: this worker is broken.
                        slot.stream = None;
                        if let Some(pid) = slot.pid {
                            // SAFETY: kill has no memory-safety preconditions.
                            unsafe { libc::kill(pid, libc::SIGKILL) };
                        }
                    }
                },
                None => {}
            }
        }
    }

    fn assign(&mut self) {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.busy.is_some() || slot.stream.is_none() {
                continue;
            }
            let task = {
                let mut inbox = self.shared.lock();
                let task = inbox.queue.pop_front();
                drop(inbox);
                self.shared.room.notify_one();
                task
            };
            let Some(task) = task else { return };
            let stream = slot.stream.as_mut().expect("checked above");
            if frame::write_frame(stream, &task.request).is_ok() {
                slot.busy = Some((task, Instant::now()));
            } else {
                // The worker is going away; the task never reached it.
                slot.stream = None;
                self.shared.lock().queue.push_front(task);
            }
        }
    }

    fn enforce_timeouts(&mut self) {
        let Some(limit) = self.config.task_timeout else {
            return;
        };
        for slot in &mut self.slots {
            let overdue = slot.busy.as_ref().is_some_and(|(_, t)| t.elapsed() > limit);
            if overdue && !slot.killed_for_timeout {
                slot.killed_for_timeout = true;
                if let Some(pid) = slot.pid {
                    // SAFETY: kill has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }

    fn kill_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(pid) = slot.pid {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn send(control: &mut UnixStream, message: &ToServer) -> Result<(), IpcError> {
    frame::write_frame(control, &frame::encode(message)?)
}

/// Without blocking: `Some(true)` if bytes are waiting, `Some(false)` at end
/// of stream (or a reset), `None` if nothing has arrived.
fn peek_ready(stream: &UnixStream) -> Option<bool> {
    let mut probe = 0u8;
    // SAFETY: `probe` is a live one-byte buffer; MSG_PEEK leaves the data in
    // the socket and MSG_DONTWAIT makes the call return at once.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut probe as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => Some(false),
        n if n > 0 => Some(true),
        _ => match std::io::Error::last_os_error().kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => None,
            _ => Some(false),
        },
    }
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// The errors handed to several tasks at once.
fn clone_error(e: &PoolTaskError) -> PoolTaskError {
    match e {
        PoolTaskError::PoolBroken(why) => PoolTaskError::PoolBroken(why.clone()),
        _ => PoolTaskError::ShutDown,
    }
}
