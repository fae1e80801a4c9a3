//! [`ProcessPool`]: persistent worker processes with a fixed handler, and
//! its [`ProcessPoolBuilder`].
//!
//! The supervisor (a thread of the caller's process, in `pool/supervise.rs`)
//! runs the engine's loop; the workers come from the fork server
//! (`forkserver/`).

mod completed;
mod lane;
mod reply;
pub(crate) mod shm_channel;
mod supervise;
mod task;
#[cfg(test)]
mod tests;

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::channel;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{PoolTaskError, ProcessPoolError};
use super::forkserver::{self, WorkerLoop, reexec};
use super::retry::Retry;
use super::threads::ForkPlan;
use super::threads::ThreadPolicy;
use super::wire::{Entry, RequestHead, Setup};
use crate::InvalidOption;
use crate::fork::{ForkedChild, fork_child};
use crate::ipc::frame;
pub use completed::{AsCompleted, as_completed, wait};
use lane::{Lane, Placed};
use reply::{Completion, ReplyTo, Route};
use supervise::{Config, Inbox, Shared, Supervisor, Task};
pub use task::TaskHandle;
use task::decode_reply;

/// Configures a [`ProcessPool`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::process::{ProcessPool, Retry};
///
/// let pool = ProcessPool::builder()
///     .workers(2)
///     .queue_bound(64)
///     .task_timeout(Duration::from_secs(30))
///     .max_tasks_per_child(1000)
///     .retry(Retry::runs(2))
///     .build(|n: u64| n + 1)?;
/// assert_eq!(pool.submit(&41)?.join()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ProcessPoolBuilder {
    workers: Option<usize>,
    queue_bound: usize,
    task_timeout: Option<Duration>,
    max_tasks_per_child: Option<u64>,
    retry: Retry,
    threads: ThreadPolicy,
    initializer: Option<fn()>,
}

impl Default for ProcessPoolBuilder {
    fn default() -> Self {
        ProcessPoolBuilder {
            workers: None,
            queue_bound: 1024,
            task_timeout: None,
            max_tasks_per_child: None,
            retry: Retry::default(),
            threads: ThreadPolicy::default(),
            initializer: None,
        }
    }
}

impl ProcessPoolBuilder {
    /// Defaults: one worker per available CPU, a queue bound of 1024, no
    /// timeout, no recycling, [`Retry::default`] (three runs per task),
    /// [`ThreadPolicy::default`] (for [`build_forking`](Self::build_forking)).
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

    /// At most this many tasks wait (default 1024); beyond it `submit` blocks,
    /// `try_submit` fails and `submit_timeout` waits until its deadline.
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

    /// A task running longer is failed with [`Failure::Timeout`](super::Failure::Timeout); its worker
    /// is killed and replaced. The timeout covers the whole task, reply
    /// included: a worker stopped in the middle of its reply times out too.
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

    /// How often a task whose worker crashed is run (default
    /// [`Retry::default`]: three runs in all). Panics, timeouts and cancels
    /// are never retried.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{Failure, PoolTaskError, ProcessPoolBuilder, Retry};
    /// let pool = ProcessPoolBuilder::new().workers(1).retry(Retry::runs(2))
    ///     .build(|_: ()| -> u8 { std::process::abort() })?;
    /// let err = pool.submit(&())?.join().unwrap_err();
    /// assert!(matches!(err, PoolTaskError::Worker { attempts: 2, failure: Failure::Signaled { .. }, .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// What [`build_forking`](Self::build_forking) does when the caller has
    /// other threads (default [`ThreadPolicy::default`]). [`build`](Self::build)
    /// never forks the caller and ignores it.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{ProcessPoolBuilder, ThreadPolicy};
    /// let pool = ProcessPoolBuilder::new().workers(1).threads(ThreadPolicy::Refuse)
    ///     .build_forking(|x: u8| x + 1)?; // a single-threaded doc test: not refused
    /// assert_eq!(pool.submit(&1)?.join()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn threads(mut self, policy: ThreadPolicy) -> Self {
        self.threads = policy;
        self
    }

    /// Runs `init` once in every worker, before its first task (as Python's
    /// `Pool(initializer=...)`): to open a connection, load a model, warm a
    /// cache. If it panics, the worker answers each task with that panic
    /// (`Failure::Panicked`) instead of running it.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// static READY: AtomicU32 = AtomicU32::new(0);
    /// let pool = ply_os::process::ProcessPoolBuilder::new()
    ///     .workers(1)
    ///     .initializer(|| { READY.store(42, Ordering::Relaxed); })
    ///     .build(|(): ()| READY.load(Ordering::Relaxed))?;
    /// assert_eq!(pool.submit(&())?.join()?, 42); // set in the worker
    /// assert_eq!(READY.load(Ordering::Relaxed), 0); // not here
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn initializer(mut self, init: fn()) -> Self {
        self.initializer = Some(init);
        self
    }

    fn worker_count(&self) -> Result<usize, ProcessPoolError> {
        if self.queue_bound == 0 {
            return Err(ProcessPoolError::Options(InvalidOption::new(
                "queue_bound",
                "must be at least 1, not 0",
            )));
        }
        match self.workers {
            Some(0) => Err(ProcessPoolError::Options(InvalidOption::new(
                "workers",
                "must be at least 1, not 0",
            ))),
            Some(n) => Ok(n),
            None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    }

    /// Starts the pool: a fork server started by re-executing this program
    /// (it never has the caller's threads, nor any lock they hold), and the
    /// workers, each running `handler`. Returns once every worker is up, so
    /// [`ProcessPool::worker_pids`] is complete.
    ///
    /// `handler` is a function, or a closure that captures nothing (it
    /// coerces to a `fn`): the re-executed program finds it again by its
    /// offset in the binary. Nothing of the caller's state reaches the
    /// workers, not even what `main` set up, because `main` does not run in
    /// them. For a handler that captures state, see
    /// [`build_forking`](Self::build_forking).
    ///
    /// # Errors
    ///
    /// [`ProcessPoolError::Options`] for zero workers or queue bound, or a
    /// handler that lives in a shared library; [`ProcessPoolError::Os`] if a
    /// socket, the server or a worker could not be started.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(2).build(|name: String| format!("hello, {name}"))?;
    /// assert_eq!(pool.submit(&"ply".to_string())?.join()?, "hello, ply");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build<Req, Resp>(
        self,
        handler: fn(Req) -> Resp,
    ) -> Result<ProcessPool<Req, Resp>, ProcessPoolError>
    where
        Req: Serialize + DeserializeOwned + 'static,
        Resp: Serialize + DeserializeOwned + 'static,
    {
        let workers = self.worker_count()?;
        let entry = Entry::of(handler)
            .map_err(|why| ProcessPoolError::Options(InvalidOption::new("handler", why)))?;
        let initializer = self
            .initializer
            .map(Entry::of_init)
            .transpose()
            .map_err(|why| ProcessPoolError::Options(InvalidOption::new("initializer", why)))?;
        let setup = Setup {
            handler: entry,
            initializer,
            max_tasks: self.max_tasks_per_child,
        };
        self.launch(workers, None, Box::new(move || reexec::start(setup)))
    }

    /// A pool for [`ProcessPool::submit_fn`] only: its workers run whatever
    /// functions are submitted, with no handler of their own. As
    /// [`build`](Self::build), its fork server is a re-executed copy of the
    /// program.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build_for_functions()?;
    /// assert_eq!(pool.submit_fn(|x: u32| x * 3, &5)?.join()?, 15);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_for_functions(self) -> Result<ProcessPool<(), ()>, ProcessPoolError> {
        self.build(|(): ()| ())
    }

    /// Starts the pool with a fork server forked from the caller, for a
    /// handler that captures state (which the workers inherit, copy-on-write).
    ///
    /// The handler moves to the server as to a thread (`Send + 'static`; the
    /// caller's copy is dropped once the server is forked), and each worker
    /// has a copy it never drops. So it cannot hold a lock guard or a permit,
    /// which each copy would release (see
    /// [`fork`](crate::fork#what-the-child-is-given)).
    ///
    /// # Fork safety
    ///
    /// The server is forked from the calling process once, here; every
    /// worker is then forked from that single-threaded server. If the caller
    /// has other threads, [`threads`](Self::threads) decides: by default a
    /// worker that sits blocked on a lock one of them held at that fork is
    /// killed and its task fails with [`Failure::Stalled`](super::Failure::Stalled). Printing and
    /// allocating are always safe. Prefer [`build`](Self::build) when the
    /// handler can be a plain function.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build), and [`ProcessPoolError::ThreadsPresent`]
    /// under [`ThreadPolicy::Refuse`].
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::ProcessPoolBuilder;
    /// let greeting = String::from("hello");
    /// let pool = ProcessPoolBuilder::new().workers(1)
    ///     .build_forking(move |name: String| format!("{greeting}, {name}"))?;
    /// assert_eq!(pool.submit(&"ply".to_string())?.join()?, "hello, ply");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_forking<Req, Resp, F>(
        self,
        handler: F,
    ) -> Result<ProcessPool<Req, Resp>, ProcessPoolError>
    where
        Req: Serialize + DeserializeOwned + 'static,
        Resp: Serialize + DeserializeOwned + 'static,
        F: Fn(Req) -> Resp + Send + 'static,
    {
        let workers = self.worker_count()?;
        let stall = match self.threads.plan() {
            ForkPlan::Refuse { other_threads } => {
                return Err(ProcessPoolError::ThreadsPresent { other_threads });
            }
            ForkPlan::Fork {
                other_threads,
                watch,
            } => watch.map(|patience| (other_threads, patience)),
        };
        let config = WorkerLoop {
            max_tasks: self.max_tasks_per_child,
        };
        super::panic::install();
        let init = self.initializer;
        let start = move || -> std::io::Result<(ForkedChild, UnixStream)> {
            let (control, theirs) = UnixStream::pair()?;
            let control_fd = std::os::fd::AsRawFd::as_raw_fd(&control);
            let server = fork_child(move || {
                // SAFETY: closes this process's copy of the supervisor's end;
                // its owner lives in the parent's frames, never returned to.
                unsafe { libc::close(control_fd) };
                forkserver::serve_ready(theirs, &|stream, channel| {
                    let init = init.as_ref().map(|f| f as &dyn Fn());
                    forkserver::serve_requests(stream, channel, config, init, &|request| {
                        forkserver::answer(&handler, request, "task")
                    })
                })
            })?;
            Ok((server, control))
        };
        self.launch(workers, stall, Box::new(start))
    }

    /// Starts the supervisor thread, which starts the server with `start`,
    /// and waits until the first workers are up.
    fn launch<Req, Resp>(
        self,
        workers: usize,
        stall: Option<(usize, Duration)>,
        start: Box<dyn FnOnce() -> std::io::Result<(ForkedChild, UnixStream)> + Send>,
    ) -> Result<ProcessPool<Req, Resp>, ProcessPoolError> {
        let (waker, wake_rx) = UnixStream::pair()?;
        waker.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox {
                pids: vec![None; workers],
                lanes: (0..workers).map(|_| Lane::default()).collect(),
                ..Inbox::default()
            }),
            room: Condvar::new(),
            waker,
            queue_bound: self.queue_bound,
            wake_on_start: self.task_timeout.is_some(),
            forks_at_birth: crate::thread::forks::start_counting(),
        });
        let config = Config {
            workers,
            task_timeout: self.task_timeout,
            retry: self.retry,
            stall,
            #[cfg(test)]
            faults: supervise::NEXT_POOL_FAULTS.with(|f| f.borrow_mut().take()),
        };
        let (ready_tx, ready_rx) = channel::<Result<(), ProcessPoolError>>();
        let thread_shared = Arc::clone(&shared);
        // The supervisor thread starts the server: PR_SET_PDEATHSIG follows
        // the starting *thread*, and this one lives exactly as long as the pool.
        let supervisor = std::thread::Builder::new()
            .name("ply-process-pool".into())
            .spawn(move || {
                let (server, control) = match start() {
                    Ok(started) => started,
                    Err(e) => return drop(ready_tx.send(Err(ProcessPoolError::Os(e)))),
                };
                thread_shared.lock().server_pid = Some(server.pid());
                let mut supervisor = Supervisor::new(thread_shared, config, control, wake_rx);
                if let Err(why) = supervisor.start() {
                    let e = std::io::Error::other(format!("the fork server did not start: {why}"));
                    drop(ready_tx.send(Err(ProcessPoolError::Os(e))));
                    // Dropping the server kills and reaps it, with its workers.
                    return drop((supervisor, server));
                }
                let _ = ready_tx.send(Ok(()));
                supervisor.run(server);
            })?;
        let started = ready_rx.recv().unwrap_or_else(|_| {
            Err(ProcessPoolError::Os(std::io::Error::other(
                "the supervisor thread died",
            )))
        });
        match started {
            Ok(()) => Ok(ProcessPool {
                shared,
                supervisor: Mutex::new(Some(supervisor)),
                workers,
                _types: PhantomData,
            }),
            Err(e) => {
                let _ = supervisor.join();
                Err(e)
            }
        }
    }
}

/// A pool of worker processes, forked once, each running a handler fixed at
/// creation: `Fn(Req) -> Resp`, with requests and responses serialized
/// (serde + postcard) over a socket per worker.
///
/// - **Crash isolation**: a worker killed by a signal, aborting, exiting or
///   panicking fails only the task it held — with a [`Failure`](super::Failure) that says what
///   happened — and (unless it merely panicked, which it survives) is replaced;
///   the pool keeps going. [`retry`](ProcessPoolBuilder::retry) re-runs
///   crashed tasks.
/// - **Timeouts**: a task past [`task_timeout`](ProcessPoolBuilder::task_timeout)
///   has its worker killed and fails with [`Failure::Timeout`](super::Failure::Timeout).
/// - **Fork safety**: workers are forked by a fork server that never had the
///   caller's threads: [`build`](ProcessPoolBuilder::build) starts it by
///   re-executing the program. Only [`build_forking`](ProcessPoolBuilder::build_forking)
///   forks the caller, once, under a [`ThreadPolicy`]. See "Fork safety" in
///   the [module docs](super).
/// - **Isolation from other processes**: workers reach the pool over socket
///   pairs and shared-memory channels (unnamed `memfd`s) that the fork
///   server passes it; no other process can connect, and a stopped worker
///   or server delays only its own task.
/// - **Round trips**: a task is handed straight to an idle worker's channel
///   and its joiner reads the reply there, spinning briefly and then
///   sleeping until the worker wakes it; an idle pool sleeps. Requests and
///   replies over 16 KiB go over the socket. With no
///   worker left and the server stopped, hung or unable to fork, queued
///   tasks fail with [`PoolTaskError::NoWorker`] after 5 s (10 s for a
///   server that is not stopped) instead of waiting for it.
/// - **Lifecycle**: every child is reaped; children die with the pool (and
///   with the process, by `PR_SET_PDEATHSIG`). [`shutdown`](Self::shutdown)
///   and `Drop` finish the queued tasks and wait for the workers;
///   [`terminate`](Self::terminate) kills them and fails what is queued.
/// - **Forked copies**: a process forked from the pool's (by `fork`, say,
///   or a [`build_forking`](ProcessPoolBuilder::build_forking) pool's
///   workers) has a copy of the pool but not its supervisor. There the pool
///   takes no task ([`PoolTaskError::ShutDown`]) and never touches the
///   parent's workers; a join of one of the parent's tasks says `ShutDown`
///   at once; shutting down, terminating and dropping return at once.
///
/// # Example
///
/// ```
/// use ply_os::fork::Signal;
/// use ply_os::process::{Failure, PoolTaskError, ProcessPoolBuilder, Retry};
///
/// let pool = ProcessPoolBuilder::new().workers(2).retry(Retry::never()).build(|n: i32| {
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
///     Err(PoolTaskError::Worker { failure: Failure::Signaled { signal: Signal::ABORT, .. }, .. })
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

impl ProcessPool<(), ()> {
    /// A builder: the same as [`ProcessPoolBuilder::new`].
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPool::builder().workers(1).build(|x: u8| x * 2)?;
    /// assert_eq!(pool.submit(&4)?.join()?, 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::new()
    }
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
    /// has none). Complete right after `build`.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(2).build(|x: u8| x)?;
    /// assert_eq!(pool.worker_pids().len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker_pids(&self) -> Vec<i32> {
        self.shared.lock().pids.iter().flatten().copied().collect()
    }

    /// The fork server's pid while the pool runs (for diagnostics: it is the
    /// parent of every worker).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build(|x: u8| x)?;
    /// let server = pool.server_pid().expect("running");
    /// assert!(server > 0 && !pool.worker_pids().contains(&server));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn server_pid(&self) -> Option<i32> {
        self.shared.lock().server_pid
    }

    /// Queues a task, or hands it to an idle worker at once (then says
    /// where, for its joiner to spin on). Returns its id. While the queue is
    /// full it waits until `deadline` (`None`: for ever; a past one: not at
    /// all).
    fn enqueue(
        &self,
        request: Vec<u8>,
        reply: ReplyTo,
        deadline: Option<Instant>,
    ) -> Result<(u64, Option<Placed>), PoolTaskError> {
        if self.shared.foreign() {
            reply.disarm();
            return Err(PoolTaskError::ShutDown); // see `Shared::foreign`
        }
        let mut inbox = self.shared.lock();
        loop {
            if inbox.closed || inbox.stopped {
                drop(inbox);
                reply.disarm();
                return Err(PoolTaskError::ShutDown);
            }
            if inbox.queue.len() < self.shared.queue_bound {
                break;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                drop(inbox);
                reply.disarm();
                return Err(PoolTaskError::QueueFull);
            }
            let room = &self.shared.room;
            inbox = match left {
                None => room.wait(inbox).unwrap_or_else(|e| e.into_inner()),
                Some(left) => {
                    room.wait_timeout(inbox, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
        inbox.next_id += 1;
        let id = inbox.next_id;
        let task = Task {
            id,
            request,
            tag: reply.tag(),
            reply,
            failed_runs: 0,
        };
        match inbox.start_now(task) {
            Ok(placed) => {
                drop(inbox);
                if self.shared.wake_on_start {
                    self.shared.wake(); // it keeps the timeout
                }
                Ok((id, Some(placed)))
            }
            Err(task) => {
                inbox.queue.push_back(task);
                drop(inbox);
                self.shared.wake();
                Ok((id, None))
            }
        }
    }

    /// A task for `request`, queued; waits for room until `deadline` (see
    /// [`enqueue`](Self::enqueue)).
    fn queue<R>(
        &self,
        request: Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<TaskHandle<R>, PoolTaskError> {
        let (tx, rx) = channel();
        let route = Route::to(tx);
        let (id, placed) = self.enqueue(request, ReplyTo::new(route.clone(), 0), deadline)?;
        Ok(TaskHandle::new(
            rx,
            route,
            id,
            placed,
            Arc::clone(&self.shared),
        ))
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
    pub fn submit(&self, request: &Req) -> Result<TaskHandle<Resp>, PoolTaskError> {
        self.queue(handler_request(request)?, None)
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
    pub fn try_submit(&self, request: &Req) -> Result<TaskHandle<Resp>, PoolTaskError> {
        self.queue(handler_request(request)?, Some(Instant::now()))
    }

    /// As [`submit`](Self::submit), but waits at most `timeout` for room in a
    /// full queue (sleeping on the pool's condition variable), so a pool whose
    /// workers are all stuck cannot hold the caller for ever.
    ///
    /// # Errors
    ///
    /// As `submit` (a shutdown while waiting ends the wait at once), plus
    /// [`PoolTaskError::QueueFull`] if the queue stayed full until the deadline.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).queue_bound(1).build(|x: u8| x)?;
    /// let h = pool.submit_timeout(&7, Duration::from_secs(5))?;
    /// assert_eq!(h.join()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_timeout(
        &self,
        request: &Req,
        timeout: Duration,
    ) -> Result<TaskHandle<Resp>, PoolTaskError> {
        // Past what `Instant` can hold: wait for ever.
        let deadline = Instant::now().checked_add(timeout);
        self.queue(handler_request(request)?, deadline)
    }

    /// Runs `f(args)` on a worker of this pool: any function of the program
    /// known at compile time, with its own argument and result types, beside
    /// the pool's handler (no request enum to write). As for the handler,
    /// `f` is a `fn` (a closure that captures nothing), found again in the
    /// worker by its offset in the binary.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), and [`PoolTaskError::BadRequest`] if `f`
    /// lives in a shared library.
    ///
    /// # Example
    ///
    /// One pool, three functions:
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPool::builder().workers(2).build_for_functions()?;
    /// let len = pool.submit_fn(|s: String| s.len(), &"four".to_string())?;
    /// let sum = pool.submit_fn(|v: Vec<u64>| v.iter().sum::<u64>(), &vec![1, 2, 3])?;
    /// let pid = pool.submit_fn(|(): ()| std::process::id(), &())?;
    /// assert_eq!(len.join()?, 4);
    /// assert_eq!(sum.join()?, 6);
    /// assert_ne!(pid.join()?, std::process::id()); // ran in a worker
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_fn<A, B>(&self, f: fn(A) -> B, args: &A) -> Result<TaskHandle<B>, PoolTaskError>
    where
        A: Serialize + DeserializeOwned,
        B: Serialize + DeserializeOwned,
    {
        let entry = Entry::of(f).map_err(PoolTaskError::BadRequest)?;
        let mut request =
            frame::encode(&RequestHead::Call(entry)).map_err(PoolTaskError::Encode)?;
        request.extend(frame::encode(args).map_err(PoolTaskError::Encode)?);
        self.queue(request, None)
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
        let mut in_flight: VecDeque<Result<TaskHandle<Resp>, PoolTaskError>> = VecDeque::new();
        let window = 2 * self.workers;
        std::iter::from_fn(move || {
            while in_flight.len() < window {
                match inputs.next() {
                    Some(request) => in_flight.push_back(self.submit(request.borrow())),
                    None => break,
                }
            }
            Some(in_flight.pop_front()?.and_then(TaskHandle::join))
        })
    }

    /// The old name of [`map_unordered`](Self::map_unordered).
    ///
    /// # Example
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// let pool = ply_os::process::ProcessPool::builder().workers(1).build(|x: u8| x)?;
    /// assert_eq!(pool.as_completed([5u8]).count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[deprecated(since = "0.1.0", note = "renamed `map_unordered`, as on `ThreadPool`")]
    pub fn as_completed<I>(
        &self,
        requests: I,
    ) -> impl Iterator<Item = (usize, Result<Resp, PoolTaskError>)> + '_
    where
        I: IntoIterator,
        I::Item: Borrow<Req>,
        I::IntoIter: 'static,
    {
        self.map_unordered(requests)
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
    /// let order: Vec<usize> = pool.map_unordered([300u64, 1]).map(|(i, _)| i).collect();
    /// assert_eq!(order, [1, 0]); // the short task finished first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_unordered<I>(
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
                let queued = handler_request(request.borrow()).and_then(|bytes| {
                    self.enqueue(bytes, ReplyTo::new(Route::to(tx.clone()), i), None)
                });
                match queued {
                    Ok(_) => in_flight += 1,
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
        if self.shared.foreign() {
            return; // a forked child's copy: nothing of it runs here
        }
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
        if self.shared.foreign() {
            return; // a forked child's copy: nothing of it runs here
        }
        self.shared.lock().closed = true;
        // Submitters waiting for room return `ShutDown` now, not once the
        // (perhaps stuck) workers have finished.
        self.shared.room.notify_all();
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
        if self.shared.foreign() {
            // The supervisor is the parent's thread: its handle is a copy,
            // neither to join nor to detach here. No lock taken (the copy
            // may have been made while another thread held it).
            let handle = self.supervisor.get_mut().unwrap_or_else(|e| e.into_inner());
            std::mem::forget(handle.take());
            return;
        }
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

/// A request for the pool's handler: the head, then the argument.
fn handler_request<Req: Serialize>(request: &Req) -> Result<Vec<u8>, PoolTaskError> {
    let mut bytes = frame::encode(&RequestHead::Handler).map_err(PoolTaskError::Encode)?;
    bytes.extend(frame::encode(request).map_err(PoolTaskError::Encode)?);
    Ok(bytes)
}
