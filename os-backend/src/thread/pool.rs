//! [`ThreadPool`] and its builder: workers, the injector, submit and shutdown.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, fence};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use ply_core::queue::mpmc::ArrayQueue;
use ply_core::queue::spmc::{Ring, Take};
use ply_core::sync::{Park, Semaphore};

use super::task::{TaskHandle, TaskState, task_job};
use crate::park::FutexPark;

/// The largest number of queued (not yet started) tasks a pool can hold.
pub const MAX_QUEUE_BOUND: usize = 4096;

/// Failed attempts to find a job a worker spends spinning and yielding before
/// it sleeps on the futex: a few tens of microseconds, so a steady stream of
/// tasks never pays for a wake-up system call.
const SPIN_BEFORE_SLEEP: u32 = 256;

/// Capacity of each worker's run queue and of each scope's spawn buffer.
pub(crate) const RING_CAPACITY: usize = 1024;

/// Spawn buffers for scopes opened by threads that are not workers.
const GUEST_RINGS: usize = 4;

/// Most tasks a worker steals in one go (it takes half of what it sees, up to
/// this), so one steal's cost is shared by many tasks.
const STEAL_BATCH: usize = 32;

pub(crate) use super::job::Job;

/// A worker's run queue, or a scope's spawn buffer.
pub(crate) type RunQueue = Ring<Job, RING_CAPACITY>;

thread_local! {
    /// The pool this thread works for and its index there, so a task that
    /// spawns pushes to its worker's own run queue, and a task that waits (joins
    /// a handle) runs queued tasks meanwhile instead of blocking its worker.
    static CURRENT_WORKER: std::cell::RefCell<Option<(Arc<Shared>, usize)>> =
        const { std::cell::RefCell::new(None) };

    /// Its address tells threads apart (see [`current_thread_mark`]).
    static THREAD_MARK: u8 = const { 0 };
}

/// A number unique to the calling thread while it lives: the address of a
/// thread-local. Cheaper than `thread::current().id()`.
pub(crate) fn current_thread_mark() -> usize {
    THREAD_MARK.with(|m| std::ptr::from_ref(m) as usize)
}

/// On a pool worker: runs one queued task of that pool (`Some(true)`), or finds
/// none (`Some(false)`). Elsewhere: `None`.
pub(crate) fn help_own_pool() -> Option<bool> {
    let (shared, index) = CURRENT_WORKER.with(|s| s.borrow().clone())?;
    Some(shared.run_one(Some(index)))
}

/// A scope's claim on a guest ring: the thread that opened the scope (`owner`)
/// pushes its spawns there, where workers steal them in batches. Claimed with
/// [`Shared::claim_guest`], given back with [`Shared::release_guest`].
pub(crate) struct GuestBuffer {
    owner: usize,
    index: usize,
}

/// What all handles of one pool share with its workers.
pub(crate) struct Shared {
    /// The injector: core's MPMC queue of boxed jobs, for tasks submitted from
    /// outside the pool (see the module docs).
    queue: ArrayQueue<Job, MAX_QUEUE_BOUND>,
    /// One run queue per worker (index = worker), then [`GUEST_RINGS`] spawn
    /// buffers for scopes opened outside the pool. Workers steal from all.
    rings: Box<[RunQueue]>,
    /// The configured queue bound, which also caps each ring.
    queue_bound: usize,
    /// Workers asleep, or about to sleep, on `wake_word`. A submitter pays for a
    /// wake-up only when this is non-zero.
    sleepers: AtomicU32,
    /// The futex word idle workers sleep on; bumped to wake them.
    wake_word: AtomicU32,
    /// Which guest rings a scope holds (index = ring index - workers).
    guests_taken: [AtomicBool; GUEST_RINGS],
    /// Permits = free places under the queue bound. Submitters wait on it.
    slots: Semaphore<FutexPark>,
    /// Set by `shutdown`: no new submissions.
    closed: AtomicBool,
    /// Set by `terminate` (before `closed`): every job found from now on is
    /// cancelled instead of run.
    terminating: AtomicBool,
    /// Submissions between their `closed` check and their push.
    submitting: AtomicUsize,
    workers: usize,
    /// Worker threads running (a worker lost and not replaced is not).
    pub(crate) alive: AtomicUsize,
    /// Join handles of every worker started, replacements included.
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// How to start a worker (again).
    config: WorkerConfig,
    #[cfg(test)]
    pub(crate) faults: faults::Faults,
}

/// What a worker thread is started with; kept to start a replacement.
struct WorkerConfig {
    name_prefix: String,
    stack_size: Option<usize>,
    /// CPUs to pin worker `i` to (`cpus[i % len]`); empty: no pinning.
    cpus: Vec<usize>,
}

/// How a submission got its place.
enum Admission {
    Queued,
    /// The caller is a worker of this pool and the queue is full: run inline
    /// (waiting could deadlock if every worker did it).
    RunHere,
    Full,
    Closed,
}

impl Shared {
    fn admit(&self, blocking: bool) -> Admission {
        // Registering before the `closed` check (both SeqCst) means `shutdown`,
        // which sets `closed` and then waits for `submitting` to drain, never
        // misses a push in progress.
        self.submitting.fetch_add(1, SeqCst);
        if self.closed.load(SeqCst) {
            self.submitting.fetch_sub(1, SeqCst);
            return Admission::Closed;
        }
        if let Some(permit) = self.slots.try_acquire() {
            permit.forget();
            return Admission::Queued;
        }
        let admission = if !blocking {
            Admission::Full
        } else if self.is_current() {
            Admission::RunHere
        } else {
            self.slots.acquire().forget();
            if !self.closed.load(SeqCst) {
                return Admission::Queued;
            }
            // Closed while we waited (and perhaps drained to free our place):
            // a job pushed now might find no worker left.
            self.slots.release(1);
            Admission::Closed
        };
        self.submitting.fetch_sub(1, SeqCst);
        admission
    }

    /// Whether the calling thread is one of this pool's workers.
    fn is_current(&self) -> bool {
        self.worker_index().is_some()
    }

    /// The calling thread's worker index in this pool, if it is one.
    fn worker_index(&self) -> Option<usize> {
        CURRENT_WORKER.with(|s| {
            s.borrow()
                .as_ref()
                .filter(|(shared, _)| std::ptr::eq(&**shared, self))
                .map(|&(_, index)| index)
        })
    }

    /// Pushes an admitted job and wakes a sleeping worker if there is one.
    fn push(&self, mut job: Job) {
        // The slot permit guarantees room; a push can still fail for a moment
        // while a worker finishes reading the slot it reuses.
        while let Err(back) = self.queue.push(job) {
            job = back;
            std::hint::spin_loop();
        }
        self.notify();
        self.submitting.fetch_sub(1, SeqCst);
    }

    /// After publishing a job: wakes a sleeping worker, if any.
    fn notify(&self) {
        // Dekker with `worker_loop`: we publish the job, then read `sleepers`;
        // a worker registers in `sleepers`, then re-reads every queue. The
        // SeqCst fences make sure one side sees the other: no lost wake-up.
        fence(SeqCst);
        if self.sleepers.load(SeqCst) != 0 {
            self.wake_word.fetch_add(1, SeqCst);
            FutexPark.wake_one(&self.wake_word);
        }
    }

    /// A guest ring for a scope opened on this thread, unless the thread is a
    /// worker (it uses its own run queue) or all guest rings are taken.
    pub(crate) fn claim_guest(&self) -> Option<GuestBuffer> {
        if self.is_current() {
            return None;
        }
        // Acquire: pairs with the Release in `release_guest`, so the previous
        // owner's pushes happen before ours (the `push_unchecked` contract).
        let slot = self.guests_taken.iter().position(|taken| {
            taken
                .compare_exchange(false, true, Acquire, Relaxed)
                .is_ok()
        })?;
        Some(GuestBuffer {
            owner: current_thread_mark(),
            index: self.workers + slot,
        })
    }

    /// Gives a guest ring back once every job pushed to it has run.
    pub(crate) fn release_guest(&self, guest: &GuestBuffer) {
        debug_assert!(self.rings[guest.index].is_empty());
        // Release: our pushes happen before the next owner's (see `claim_guest`).
        self.guests_taken[guest.index - self.workers].store(false, Release);
    }

    /// The owner of a guest ring takes back one of its own spawns.
    pub(crate) fn pop_guest(&self, guest: &GuestBuffer) -> Option<Job> {
        self.rings[guest.index].pop()
    }

    /// The fast path of a spawn: into the scope's guest ring when called by its
    /// owner, or into the calling worker's own run queue. `Err` gives the job
    /// back when neither applies, the ring is at the bound, or the pool is shut
    /// down; the caller then takes the injector path.
    #[allow(clippy::result_large_err)]
    pub(crate) fn push_spawn(&self, job: Job, guest: Option<&GuestBuffer>) -> Result<(), Job> {
        if self.closed.load(SeqCst) {
            return Err(job);
        }
        let ring = match guest {
            Some(g) if g.owner == current_thread_mark() => &self.rings[g.index],
            _ => match self.worker_index() {
                Some(index) => &self.rings[index],
                None => return Err(job),
            },
        };
        // `guests_taken` gives each guest ring one owner at a time, handed over
        // with Release/Acquire; `worker_index` is per thread.
        // SAFETY: a guest ring is pushed to only by its owner thread (checked
        // above), a worker's ring only by that worker's thread.
        unsafe { ring.push_unchecked(job, self.queue_bound) }?;
        self.notify();
        Ok(())
    }

    /// Takes a job if one is queued.
    fn pop(&self) -> Option<Job> {
        let job = self.queue.pop()?;
        self.slots.release(1);
        Some(job)
    }

    /// Whether any queue or ring holds a job (a snapshot).
    fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.rings.iter().any(|r| !r.is_empty())
    }

    /// Whether workers may exit: shut down, nothing being pushed, nothing queued.
    fn finished(&self) -> bool {
        self.closed.load(SeqCst) && self.submitting.load(SeqCst) == 0 && !self.has_work()
    }

    /// The next job for worker `me` (or for a helping thread outside the pool,
    /// `None`): its own run queue first, then the injector, then a steal.
    fn find_job(&self, me: Option<usize>) -> Option<Job> {
        if let Some(index) = me
            && let Some(job) = self.rings[index].pop()
        {
            return Some(job);
        }
        if let Some(job) = self.pop() {
            return Some(job);
        }
        self.steal(me)
    }

    /// Takes jobs from another ring. A worker takes a batch into its own run
    /// queue (where others can steal them back) and returns the first; a helper
    /// outside the pool takes one.
    fn steal(&self, me: Option<usize>) -> Option<Job> {
        let rings = self.rings.len();
        // Start after our own index so workers spread over different victims.
        let start = me.map_or(0, |i| i + 1);
        for k in 0..rings {
            let victim = (start + k) % rings;
            if Some(victim) == me {
                continue;
            }
            let ring = &self.rings[victim];
            let Some(index) = me else {
                if let Some(job) = ring.pop() {
                    return Some(job);
                }
                continue;
            };
            let own = &self.rings[index];
            let mut overflow = Vec::new();
            let taken = ring.take_batch(STEAL_BATCH, |job| {
                // SAFETY: only worker `index` (this thread) pushes to its ring.
                if let Err(job) = unsafe { own.push_unchecked(job, RING_CAPACITY) } {
                    overflow.push(job); // not expected: our ring was just empty
                }
            });
            if let Take::Items(_) = taken {
                for job in overflow {
                    job.run();
                }
                return own.pop();
            }
        }
        None
    }

    /// Runs one queued job on the calling thread, if there is one.
    pub(crate) fn help(&self) -> bool {
        self.run_one(self.worker_index())
    }

    /// Runs one job found for worker `me` (or a helper, `None`), if any.
    fn run_one(&self, me: Option<usize>) -> bool {
        match self.find_job(me) {
            Some(job) => {
                self.execute(job);
                true
            }
            None => false,
        }
    }

    /// Runs a job taken from a queue, or cancels it (drops it unrun) once
    /// `terminate` has begun. Never unwinds (see [`Job::run`]).
    pub(crate) fn execute(&self, job: Job) {
        if self.terminating.load(Relaxed) {
            drop(job);
        } else {
            job.run();
        }
    }

    /// Cancels every queued job until no submission is in flight: what
    /// `terminate` does, and what happens when the last worker is lost and
    /// none can be started. Helps submitters blocked on a full queue: each
    /// cancelled injector job frees a place, and they then see `closed`.
    fn cancel_queued(&self) {
        loop {
            while let Some(job) = self.find_job(None) {
                drop(job);
            }
            if self.submitting.load(SeqCst) == 0 && !self.has_work() {
                break;
            }
            std::thread::yield_now();
        }
    }

    /// Wakes every sleeping worker (to see `closed`, or new work).
    fn wake_all(&self) {
        self.wake_word.fetch_add(1, SeqCst);
        FutexPark.wake_all(&self.wake_word);
    }

    fn lock_threads(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the thread of worker `index`. `ready` hears whether pinning
    /// worked (for `build`; a replacement passes `None`).
    fn spawn_worker(
        self: &Arc<Self>,
        index: usize,
        ready: Option<mpsc::Sender<Result<(), PoolError>>>,
    ) -> io::Result<JoinHandle<()>> {
        #[cfg(test)]
        if faults::take(&self.faults.fail_spawns) {
            return Err(io::Error::other("injected spawn failure"));
        }
        let config = &self.config;
        let mut builder =
            std::thread::Builder::new().name(format!("{}-{index}", config.name_prefix));
        if let Some(bytes) = config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let cpu = (!config.cpus.is_empty()).then(|| config.cpus[index % config.cpus.len()]);
        let shared = Arc::clone(self);
        builder.spawn(move || {
            let pinned = match cpu {
                Some(cpu) => {
                    crate::affinity::pin_current_thread(cpu).map_err(|error| PoolError::Pin {
                        worker: index,
                        cpu,
                        error,
                    })
                }
                None => Ok(()),
            };
            if let Some(ready) = ready {
                // A worker that could not be pinned still serves until
                // shutdown (`build` shuts the pool down), so the pool's exit
                // protocol stays simple.
                let _ = ready.send(pinned);
            }
            let watch = WorkerWatch {
                shared: &shared,
                index,
            };
            worker_loop(&shared, index);
            std::mem::forget(watch);
            CURRENT_WORKER.with(|s| s.borrow_mut().take());
            shared.alive.fetch_sub(1, SeqCst);
        })
    }

    /// Worker `index` is unwinding out of its loop (a panic outside any task:
    /// tasks cannot cause one, see [`Job::run`]). Starts a replacement, unless
    /// the pool is finished; if none can be started and no worker is left,
    /// closes the pool and cancels what is queued, so no handle waits forever.
    /// Runs on the dying thread, before it ends: `shutdown` joins that thread,
    /// then finds the replacement's handle.
    fn replace_worker(self: &Arc<Self>, index: usize) {
        if !self.finished() {
            if let Ok(handle) = self.spawn_worker(index, None) {
                self.lock_threads().push(handle);
                return; // the replacement takes over this thread's `alive` count
            }
        }
        if self.alive.fetch_sub(1, SeqCst) == 1 && !self.finished() {
            self.closed.store(true, SeqCst);
            self.terminating.store(true, SeqCst);
            self.cancel_queued();
            self.wake_all();
        }
    }
}

/// Replaces its worker if dropped: armed while the worker loop runs, forgotten
/// when the loop returns, so only an unwinding loop drops it.
struct WorkerWatch<'a> {
    shared: &'a Arc<Shared>,
    index: usize,
}

impl Drop for WorkerWatch<'_> {
    fn drop(&mut self) {
        CURRENT_WORKER.with(|s| s.borrow_mut().take());
        self.shared.replace_worker(self.index);
    }
}

fn worker_loop(shared: &Arc<Shared>, index: usize) {
    CURRENT_WORKER.with(|s| *s.borrow_mut() = Some((Arc::clone(shared), index)));
    let mut idle = 0u32;
    loop {
        #[cfg(test)]
        faults::at(&shared.faults.die_between_jobs);
        if let Some(job) = shared.find_job(Some(index)) {
            idle = 0;
            #[cfg(test)]
            faults::at(&shared.faults.die_holding_job); // drops `job` unrun
            shared.execute(job); // never unwinds
            continue;
        }
        if shared.finished() {
            break;
        }
        // Nothing queued: spin, then yield, then sleep. A steady stream of tasks
        // is picked up without ever paying for a wake-up system call.
        idle += 1;
        if idle < 64 {
            // Exponential pause between polls: a poll reads the lines the
            // spawners write, and polling flat out slows every push down.
            for _ in 0..1u32 << idle.min(7) {
                std::hint::spin_loop();
            }
            continue;
        }
        if idle < SPIN_BEFORE_SLEEP {
            std::thread::yield_now();
            continue;
        }
        // Sleep: read the wake word, register, re-check (see `push`), wait.
        let seen = shared.wake_word.load(SeqCst);
        shared.sleepers.fetch_add(1, SeqCst);
        fence(SeqCst);
        if shared.has_work() || shared.finished() {
            shared.sleepers.fetch_sub(1, SeqCst);
            continue;
        }
        // Returns at once if a wake-up bumped the word since `seen`.
        FutexPark.wait(&shared.wake_word, seen);
        shared.sleepers.fetch_sub(1, SeqCst);
        idle = 0;
    }
}

/// Test-only hooks that make a worker die outside any task, as a bug in the
/// pool itself would, to test that it is replaced.
#[cfg(test)]
pub(crate) mod faults {
    use std::sync::atomic::AtomicU32;
    use std::sync::atomic::Ordering::SeqCst;

    /// Each counter: how many more times the fault fires.
    #[derive(Default)]
    pub(crate) struct Faults {
        /// A worker panics at the top of its loop.
        pub(crate) die_between_jobs: AtomicU32,
        /// A worker panics after taking a job, before running it.
        pub(crate) die_holding_job: AtomicU32,
        /// Starting a worker thread fails.
        pub(crate) fail_spawns: AtomicU32,
    }

    /// Takes one firing of `counter`, if any is left.
    pub(crate) fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Panics if `counter` has a firing left.
    pub(crate) fn at(counter: &AtomicU32) {
        if take(counter) {
            panic!("injected worker fault");
        }
    }
}

/// Why a pool could not be built.
///
/// # Example
///
/// ```
/// use ply_os::thread::{PoolError, ThreadPool};
/// assert!(matches!(ThreadPool::new(0), Err(PoolError::ZeroWorkers)));
/// ```
#[derive(Debug)]
pub enum PoolError {
    /// A pool needs at least one worker.
    ZeroWorkers,
    /// The queue bound must be between 1 and [`MAX_QUEUE_BOUND`].
    QueueBound(usize),
    /// The OS refused to start a worker thread.
    Spawn(io::Error),
    /// A worker could not be pinned to its CPU.
    Pin {
        /// The worker.
        worker: usize,
        /// The CPU it was to be pinned to.
        cpu: usize,
        /// The `sched_setaffinity` error.
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
            PoolError::Spawn(e) => write!(f, "could not start a worker thread: {e}"),
            PoolError::Pin { worker, cpu, error } => {
                write!(f, "could not pin worker {worker} to CPU {cpu}: {error}")
            }
        }
    }
}

impl std::error::Error for PoolError {}

/// Why [`ThreadPool::submit`] refused a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The pool was shut down.
    ShutDown,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the thread pool is shut down and takes no new tasks")
    }
}

impl std::error::Error for SubmitError {}

/// Why [`ThreadPool::try_submit`] refused a task; the task comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
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
    /// assert_eq!(TrySubmitError::Full(7).into_inner(), 7);
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

/// Configures a [`ThreadPool`].
///
/// # Example
///
/// ```
/// use ply_os::thread::ThreadPool;
///
/// let pool = ThreadPool::builder()
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
    /// The number of workers (default: the available parallelism).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Worker threads are named `<prefix>-<i>` (default `ply-worker`).
    pub fn name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = prefix.into();
        self
    }

    /// Each worker's stack size in bytes (default: Rust's default, 2 MiB).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Pin worker `i` to the `i`-th allowed CPU (modulo their number).
    pub fn pin_workers(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// At most this many tasks wait in the queue (default 1024, at most
    /// [`MAX_QUEUE_BOUND`]); beyond it `submit` blocks and `try_submit` fails.
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
    pub fn build(self) -> Result<ThreadPool, PoolError> {
        let workers = match self.workers {
            Some(0) => return Err(PoolError::ZeroWorkers),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if self.queue_bound == 0 || self.queue_bound > MAX_QUEUE_BOUND {
            return Err(PoolError::QueueBound(self.queue_bound));
        }
        let cpus = if self.pin {
            crate::affinity::allowed_cpus().map_err(PoolError::Spawn)?
        } else {
            Vec::new()
        };
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(),
            rings: (0..workers + GUEST_RINGS).map(|_| Ring::new()).collect(),
            queue_bound: self.queue_bound,
            guests_taken: [const { AtomicBool::new(false) }; GUEST_RINGS],
            sleepers: AtomicU32::new(0),
            wake_word: AtomicU32::new(0),
            slots: Semaphore::with_park(self.queue_bound as u32, FutexPark),
            closed: AtomicBool::new(false),
            terminating: AtomicBool::new(false),
            submitting: AtomicUsize::new(0),
            workers,
            alive: AtomicUsize::new(0),
            threads: Mutex::new(Vec::with_capacity(workers)),
            config: WorkerConfig {
                name_prefix: self.name_prefix,
                stack_size: self.stack_size,
                cpus,
            },
            #[cfg(test)]
            faults: Default::default(),
        });
        let pool = ThreadPool { shared };
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), PoolError>>();
        for i in 0..workers {
            // Counted before the thread starts: it uncounts itself on exit.
            pool.shared.alive.fetch_add(1, SeqCst);
            match pool.shared.spawn_worker(i, Some(ready_tx.clone())) {
                Ok(handle) => pool.shared.lock_threads().push(handle),
                Err(e) => {
                    pool.shared.alive.fetch_sub(1, SeqCst);
                    return Err(PoolError::Spawn(e)); // drop shuts down the rest
                }
            }
        }
        drop(ready_tx);
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => break,
            }
        }
        Ok(pool)
    }
}

/// A pool of worker threads running submitted closures.
///
/// Dropping the pool finishes the queued tasks and joins every worker — so it
/// waits for running tasks too: a task blocked forever blocks the drop (threads
/// cannot be killed; the process pool can kill its workers).
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
    pub(crate) shared: Arc<Shared>,
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
        ThreadPoolBuilder::default().workers(workers).build()
    }

    /// A builder for a configured pool.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::builder().workers(1).build().unwrap();
    /// # drop(pool);
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// The number of worker threads.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::thread::ThreadPool::new(3).unwrap().workers(), 3);
    /// ```
    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// Queues `job`, blocking while the queue is full (a worker of this pool
    /// runs it inline instead). `Err` gives the job back if the pool is shut down.
    #[allow(clippy::result_large_err)]
    pub(crate) fn submit_job(&self, job: Job) -> Result<(), Job> {
        // From a worker: onto its own run queue, as a nested spawn.
        let job = match self.shared.push_spawn(job, None) {
            Ok(()) => return Ok(()),
            Err(job) => job,
        };
        match self.shared.admit(true) {
            Admission::Queued => {
                self.shared.push(job);
                Ok(())
            }
            Admission::RunHere => {
                self.shared.execute(job);
                Ok(())
            }
            Admission::Closed | Admission::Full => Err(job),
        }
    }

    /// Submits `f` and returns a handle to its result. Blocks while the queue
    /// is at its bound (back-pressure); a task of this pool submitting to a full
    /// queue runs the new task itself instead, so nested submission cannot
    /// deadlock.
    ///
    /// # Errors
    ///
    /// [`SubmitError::ShutDown`] after [`shutdown`](Self::shutdown).
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
        let state = TaskState::new();
        match self.submit_job(task_job(f, Arc::clone(&state))) {
            Ok(()) => Ok(TaskHandle { state }),
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
    /// assert!(pool.try_submit(|| ()).is_ok()); // the one queue slot
    /// assert!(matches!(pool.try_submit(|| ()), Err(TrySubmitError::Full(_))));
    /// release.send(()).unwrap();
    /// busy.join().unwrap();
    /// ```
    pub fn try_submit<F, T>(&self, f: F) -> Result<TaskHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.shared.admit(false) {
            Admission::Queued => {
                let state = TaskState::new();
                self.shared.push(task_job(f, Arc::clone(&state)));
                Ok(TaskHandle { state })
            }
            Admission::Full | Admission::RunHere => Err(TrySubmitError::Full(f)),
            Admission::Closed => Err(TrySubmitError::ShutDown(f)),
        }
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
        let shared = &self.shared;
        if !shared.closed.swap(true, SeqCst) {
            // Let submissions already past their `closed` check finish pushing.
            while shared.submitting.load(SeqCst) != 0 {
                std::thread::yield_now();
            }
            // Wake every sleeper: each sees `finished()` once the queue is empty.
            shared.wake_all();
        }
        self.join_workers();
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
        let shared = &self.shared;
        // Before `closed`: a worker or helper that sees the pool closed also
        // cancels, rather than runs, what it finds.
        shared.terminating.store(true, SeqCst);
        shared.closed.store(true, SeqCst);
        shared.cancel_queued();
        shared.wake_all();
        self.join_workers();
    }

    /// Joins every worker thread, replacements started meanwhile included (a
    /// dying worker registers its replacement before it ends). A worker
    /// calling this (shutdown from inside a task) skips itself: it exits on
    /// its own once the pool is finished.
    fn join_workers(&self) {
        let me = std::thread::current().id();
        loop {
            let threads: Vec<JoinHandle<()>> = self.shared.lock_threads().drain(..).collect();
            let mut joined = false;
            for t in threads {
                if t.thread().id() != me {
                    let _ = t.join();
                    joined = true;
                }
            }
            if !joined {
                break;
            }
        }
    }

    /// Tasks waiting in the queue now (a snapshot; for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn shared_queue_len(&self) -> usize {
        self.shared.queue.len()
    }

    /// Runs one queued task on the calling thread, if there is one (used while
    /// waiting, so waiting threads help instead of idling).
    pub(crate) fn help(&self) -> bool {
        self.shared.help()
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
            .field("workers", &self.shared.workers)
            .field("shut_down", &self.shared.closed.load(SeqCst))
            .finish()
    }
}
