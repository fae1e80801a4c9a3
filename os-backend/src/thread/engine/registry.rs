//! The registry: every queue of one pool, its worker threads, and the loop
//! they run (the model is rayon-core's `registry.rs`).
//!
//! # Queues
//!
//! - **Run queues**: each worker owns a ply-core [`spmc::Ring`]; a task that
//!   spawns or submits pushes onto its worker's ring.
//! - **Guest rings**: a thread outside the pool that submits or spawns holds
//!   one of [`GUEST_RINGS`] guest rings (a `Lease`, kept until the thread
//!   exits or moves to another pool) and pushes there. A push onto any ring
//!   is a slot write and a `Release` store, with no read-modify-write, so an
//!   outside thread's `submit` costs about what a worker's spawn does.
//! - **The injector**: ply-core's bounded MPMC [`ArrayQueue`], for what does
//!   not fit: a ring at the queue bound, or a thread that found every guest
//!   ring held. A semaphore counts its free places (a blocking submitter
//!   waits on it).
//! - **Stealing**: an idle worker looks at its own ring, then the injector,
//!   then takes a share of another worker's ring, then of a guest ring, into
//!   its own ring (from where others can steal it back) with one CAS: a
//!   `1 / workers` share, at most [`STEAL_BATCH`] jobs, so a long queue moves
//!   in batches and a short one is dealt out in order. Threads outside the
//!   pool that help while they wait take one job at a time.
//!
//! # Idle workers
//!
//! A worker that finds no job spins a little (with growing pauses: a poll
//! reads the lines the spawners write, and polling flat out slows their
//! pushes), then sleeps ([`Sleep`]); it does not yield (see [`SPIN_ROUNDS`]),
//! except when a queue shows jobs it could not take: a thief that claimed a
//! batch holds its ring until it has copied the batch out, and if that
//! thief was preempted (a busy machine), spinning on the ring only keeps it
//! from its CPU, and sleeping would wait for a wake-up nobody sends.
//! A steady stream of tasks never pays for a wake-up system call; an idle
//! pool burns no CPU.
//!
//! # Closing
//!
//! A submitter to the injector registers in `submitting`, then checks
//! `closed`; a guest ring's holder raises the ring's `guest_busy` flag,
//! pushes, then checks `closed`. `close` sets `closed`, then waits for
//! `submitting` to drain and every busy flag to clear, and only then marks
//! the pool `drained`. It is Dekker's pattern with a fence on each side (the
//! closer's is the heavy one of an asymmetric pair, see `barrier`; a guest
//! ring's holder has the light one, an injector submitter a `SeqCst` fence):
//! either the submitter sees `closed` (and backs off, or, having pushed
//! already, runs its ring's jobs itself), or the closer sees it and waits for
//! its push. Workers exit once the pool is drained and every queue is empty,
//! so no accepted job is stranded. loom checks this (`engine::loom_models`)
//! and finds a stranded job when a submitter's or the closer's fence is
//! removed, or the holder's re-check of `closed`. (loom cannot fail without
//! the wait for busy flags: its `SeqCst` fences order more than C11's do.
//! The wait keeps the argument within C11.)
//!
//! # Lost workers
//!
//! Jobs never unwind ([`Job::run`]), so a worker can only be lost to a bug in
//! this module. If one unwinds out of its loop anyway, its [`WorkerWatch`]
//! starts a replacement on the same run queue before the thread ends. If no
//! thread can be started and no worker is left, the pool closes and cancels
//! what is queued, so no handle waits for a job that can no longer run.
//!
//! [`ArrayQueue`]: ply_core::queue::mpmc::ArrayQueue
//! [`spmc::Ring`]: ply_core::queue::spmc::Ring

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Weak, mpsc};
use std::thread::JoinHandle;

use crossbeam_utils::CachePadded;
use ply_core::queue::mpmc::ArrayQueue;
use ply_core::queue::spmc::{Ring, Take};
use ply_core::sync::{Patience, Semaphore};

use super::barrier;
use super::primitive::{
    AtomicBool, AtomicUsize, EnginePark, engine_park, fence, spin_loop, thread_local, yield_now,
};
use super::sleep::Sleep;
use crate::thread::job::Job;

/// The largest number of queued (not yet started) tasks a pool can hold.
#[cfg(not(loom))]
pub const MAX_QUEUE_BOUND: usize = 4096;
/// The largest number of queued tasks (loom build: small, for the models).
#[cfg(loom)]
pub const MAX_QUEUE_BOUND: usize = 4;

/// Capacity of each worker's run queue and of each guest ring.
#[cfg(not(loom))]
const RING_CAPACITY: usize = 1024;
#[cfg(loom)]
const RING_CAPACITY: usize = 4;

/// Spawn buffers for scopes opened by threads that are not workers.
const GUEST_RINGS: usize = 4;

/// Most jobs a worker steals in one go (see `steal` for the share it takes),
/// so one steal's cost is shared by many jobs.
const STEAL_BATCH: usize = 32;

/// Failed looks for a job an idle worker makes, spinning (with pauses that
/// double, 4 to 256 spin hints: a few microseconds in all), before it sleeps.
/// Short, and with no `yield` phase: on a busy machine a spinning worker
/// holds a core the thread feeding it needs, and a yield hands the core to
/// another process for a whole time slice (the scheduler pushes the yielder
/// back), during which new work waits; a sleeping worker is woken by the
/// first push, and a woken thread runs again promptly. BENCHMARKS.md has the
/// measurements that chose this. Under loom every pause is a model yield, so
/// the spin shrinks to no look at all.
#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 8;
#[cfg(loom)]
const SPIN_ROUNDS: u32 = 1;

/// A worker's run queue, or a scope's spawn buffer.
type RunQueue = Ring<Job, RING_CAPACITY>;

// The registry this thread works for and its index there, so a task that
// spawns pushes to its worker's own run queue, and a task that waits (joins a
// handle) runs queued jobs meanwhile instead of blocking its worker. And, for
// a thread outside the pool, the guest ring it holds (see `Lease`). And the
// registry whose `drain` this worker is running a job inside, if any.
#[cfg(not(loom))]
thread_local! {
    static CURRENT_WORKER: RefCell<Option<(Arc<Registry>, usize)>> =
        const { RefCell::new(None) };
    static LEASE: RefCell<Option<Lease>> = const { RefCell::new(None) };
    static DRAINING: Cell<*const Registry> = const { Cell::new(std::ptr::null()) };
}
#[cfg(loom)]
thread_local! {
    static CURRENT_WORKER: RefCell<Option<(Arc<Registry>, usize)>> = RefCell::new(None);
    static LEASE: RefCell<Option<Lease>> = RefCell::new(None);
    static DRAINING: Cell<*const Registry> = Cell::new(std::ptr::null());
}

/// On a pool worker: runs one queued job of that pool (`Some(true)`), or finds
/// none (`Some(false)`). Elsewhere: `None`.
pub(crate) fn help_own_pool() -> Option<bool> {
    let (registry, index) = CURRENT_WORKER.with(|s| s.borrow().clone())?;
    Some(registry.run_one(Some(index)))
}

/// A thread's hold on one guest ring of one registry: the thread is that
/// ring's only producer (a ring has one), so its submissions and spawns are a
/// slot write and a `Release` store, where workers steal them in batches. Taken
/// on the thread's first push to the pool, kept until the thread exits or
/// pushes to another pool (a thread holds one lease at a time), then given
/// back; jobs left in the ring are stolen as usual. The `Weak` keeps only the
/// registry's small allocation alive, not its queues.
struct Lease {
    registry: Weak<Registry>,
    /// Index into `guests_taken` / `guest_busy`; the ring is `workers + slot`.
    slot: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            // Release: our pushes happen before the next holder's (the
            // `push_unchecked` contract), which acquires in `guest_slot`.
            registry.guests_taken[self.slot].store(false, Release);
        }
    }
}

/// How a submission to the injector got its place.
pub(crate) enum Admission {
    /// A place is reserved: [`Registry::push`] the job.
    Queued,
    /// The caller is a worker of this pool and the queue is full: run inline
    /// (waiting could deadlock if every worker did it).
    RunHere,
    Full,
    Closed,
}

/// A submitter's patience while it waits for a place in a full queue: the
/// caller's (if any), and not past the pool's closing.
///
/// The wait ends at a close without a place freeing up: `close` sets
/// `closed`, then wakes every waiter (`Semaphore::release(0)`). A waiter
/// registers (the event count's `prepare_wait`, a SeqCst fence after it)
/// before it asks this patience, and the closer's heavy barrier stands
/// between its store of `closed` and its look for registered waiters: so
/// either this load sees the close, or the closer sees the waiter and wakes
/// it, and it asks again.
struct UnlessClosed<'a, 'b> {
    closed: &'a AtomicBool,
    patience: Option<&'b mut dyn Patience>,
}

impl Patience for UnlessClosed<'_, '_> {
    fn keep_waiting(&mut self) -> bool {
        !self.closed.load(Acquire) && self.patience.as_mut().is_none_or(|p| p.keep_waiting())
    }

    fn park_timeout(&mut self) -> ply_core::sync::Timeout {
        match &mut self.patience {
            Some(p) => p.park_timeout(),
            None => ply_core::sync::Timeout::Never,
        }
    }
}

/// Why [`Registry::push_local`] gave a job back.
pub(crate) enum NotPushed {
    /// The calling thread's own ring is at the queue bound (a thief may be
    /// copying out a batch it claimed, which holds its slots until done).
    Full(Job),
    /// The pool is closed, or the calling thread has no ring in it (every
    /// guest ring is held by other threads).
    NoRing(Job),
}

impl NotPushed {
    /// The job given back.
    pub(crate) fn into_job(self) -> Job {
        match self {
            NotPushed::Full(job) | NotPushed::NoRing(job) => job,
        }
    }
}

/// Why the workers did not all start (the builder reports it as a
/// `PoolError`).
#[derive(Debug)]
pub(crate) enum StartFailure {
    /// The OS refused to start a thread.
    Spawn(io::Error),
    /// Worker `worker` could not be pinned to `cpu`.
    Pin {
        worker: usize,
        cpu: usize,
        error: io::Error,
    },
}

/// What a worker thread is started with; kept to start a replacement.
pub(crate) struct WorkerConfig {
    pub(crate) name_prefix: String,
    pub(crate) stack_size: Option<usize>,
    /// CPUs to pin worker `i` to (`cpus[i % len]`); empty: no pinning.
    pub(crate) cpus: Vec<usize>,
}

/// Every queue, flag and thread of one pool (see the module docs).
pub(crate) struct Registry {
    /// The injector (see the module docs); boxed, so a thread's lease
    /// (a `Weak`) outliving the pool keeps no queue memory alive.
    queue: Box<ArrayQueue<Job, MAX_QUEUE_BOUND>>,
    /// One run queue per worker (index = worker), then [`GUEST_RINGS`] spawn
    /// buffers for scopes opened outside the pool. Workers steal from all.
    rings: Box<[RunQueue]>,
    /// The configured queue bound, which also caps each ring.
    queue_bound: usize,
    sleep: Sleep,
    /// Which guest rings a thread holds (index = ring index - workers).
    guests_taken: [AtomicBool; GUEST_RINGS],
    /// Set while a guest ring's holder pushes (see the module docs on
    /// closing): the closer waits for every one to clear.
    guest_busy: [CachePadded<AtomicBool>; GUEST_RINGS],
    /// Permits = free places under the queue bound. Submitters wait on it.
    slots: Semaphore<EnginePark>,
    /// Set by `close`: no new submissions.
    closed: AtomicBool,
    /// Set once closed and every admitted submission has pushed: workers exit
    /// when the queues are empty.
    drained: AtomicBool,
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
    config: WorkerConfig,
    /// Forks counted when the pool was built: a different count now means
    /// this is a forked child's copy, with no workers (see `forks`).
    #[cfg(not(loom))]
    forks_at_birth: u32,
    #[cfg(test)]
    pub(crate) faults: faults::Faults,
}

impl Registry {
    /// A registry with no workers started yet (see [`start_workers`](Self::start_workers)).
    pub(crate) fn new(workers: usize, queue_bound: usize, config: WorkerConfig) -> Arc<Self> {
        barrier::init();
        Arc::new(Registry {
            queue: Box::new(ArrayQueue::new()),
            rings: (0..workers + GUEST_RINGS).map(|_| Ring::new()).collect(),
            queue_bound,
            sleep: Sleep::new(workers),
            guests_taken: std::array::from_fn(|_| AtomicBool::new(false)),
            guest_busy: std::array::from_fn(|_| CachePadded::new(AtomicBool::new(false))),
            slots: Semaphore::with_park(queue_bound as u32, engine_park()),
            closed: AtomicBool::new(false),
            drained: AtomicBool::new(false),
            terminating: AtomicBool::new(false),
            submitting: AtomicUsize::new(0),
            workers,
            alive: AtomicUsize::new(0),
            threads: Mutex::new(Vec::with_capacity(workers)),
            config,
            #[cfg(not(loom))]
            forks_at_birth: super::forks::start_counting(),
            #[cfg(test)]
            faults: Default::default(),
        })
    }

    /// Whether this is a forked child's copy of the pool, whose workers do
    /// not exist here (see `forks`).
    #[inline]
    pub(crate) fn is_foreign(&self) -> bool {
        #[cfg(not(loom))]
        return super::forks::count() != self.forks_at_birth;
        #[cfg(loom)]
        false
    }

    /// The configured queue bound (each ring's and the injector's).
    pub(crate) fn queue_bound(&self) -> usize {
        self.queue_bound
    }

    /// The number of workers the pool was built with.
    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    /// Whether the pool takes no new tasks.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Acquire) || self.is_foreign()
    }

    /// Starts every worker thread and waits until each is running (pinned, if
    /// asked). On an error the started workers keep running until the caller
    /// shuts the registry down.
    pub(crate) fn start_workers(self: &Arc<Self>) -> Result<(), StartFailure> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), StartFailure>>();
        for i in 0..self.workers {
            // Counted before the thread starts: it uncounts itself on exit.
            self.alive.fetch_add(1, SeqCst);
            match self.spawn_worker(i, Some(ready_tx.clone())) {
                Ok(handle) => self.lock_threads().push(handle),
                Err(e) => {
                    self.alive.fetch_sub(1, SeqCst);
                    return Err(StartFailure::Spawn(e));
                }
            }
        }
        drop(ready_tx);
        for _ in 0..self.workers {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Asks for a place in the injector (see the module docs on closing).
    /// `blocking`: wait while the queue is full (a worker of this pool is told
    /// to run the job itself instead).
    pub(crate) fn admit(&self, blocking: bool) -> Admission {
        self.admit_with(blocking, None)
    }

    /// As [`admit`](Self::admit); with `patience`, a blocking wait for a
    /// place gives up ([`Admission::Full`]) when it runs out. A blocking wait
    /// also ends, [`Admission::Closed`], as soon as the pool closes: every
    /// worker may be stuck, and no place would ever free up (see
    /// [`UnlessClosed`]).
    pub(crate) fn admit_with(
        &self,
        blocking: bool,
        patience: Option<&mut dyn Patience>,
    ) -> Admission {
        self.submitting.fetch_add(1, Relaxed);
        // The submitter's fence (see the module docs on closing).
        fence(SeqCst);
        if self.closed.load(Acquire) || self.is_foreign() {
            self.submitting.fetch_sub(1, Release);
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
            let permit = self.slots.acquire_with(UnlessClosed {
                closed: &self.closed,
                patience,
            });
            match permit {
                // Out of patience: a pool closed meanwhile says so.
                None if self.closed.load(Acquire) => Admission::Closed,
                None => Admission::Full,
                Some(permit) => {
                    permit.forget();
                    if !self.closed.load(Acquire) {
                        return Admission::Queued;
                    }
                    // Closed while we waited (perhaps drained to free our
                    // place): a job pushed now might find no worker left.
                    self.slots.release(1);
                    Admission::Closed
                }
            }
        };
        self.submitting.fetch_sub(1, Release);
        admission
    }

    /// Pushes a job admitted with [`Admission::Queued`] and wakes a sleeping
    /// worker if there is one.
    pub(crate) fn push(&self, job: Job) {
        // The reserved place guarantees room: the injector holds at most
        // `queue_bound` jobs (a place is given back only after its pop), and
        // its capacity is at least that. `push` fails only on a full queue;
        // it waits itself while a pop is still reading the slot it reuses.
        // Were it ever refused, dropping the job cancels it: its handle
        // hears so, and nothing is lost silently.
        if let Err(job) = self.queue.push(job) {
            debug_assert!(false, "the injector refused a reserved place");
            drop(job);
        }
        self.sleep.notify_one();
        // Release: `close` acquires this count, so the push happens before
        // the pool is marked drained.
        self.submitting.fetch_sub(1, Release);
    }

    /// Queues `job` for the pool: onto the calling thread's own queue (see
    /// [`push_local`](Self::push_local)), else into the injector, blocking
    /// while it is full (a worker of this pool runs the job inline instead).
    /// `Err` gives the job back if the pool is closed.
    #[allow(clippy::result_large_err)] // the job is four words
    pub(crate) fn submit(self: &Arc<Self>, job: Job) -> Result<(), Job> {
        let job = match self.push_local(job) {
            Ok(()) => return Ok(()),
            Err(not_pushed) => not_pushed.into_job(),
        };
        match self.admit(true) {
            Admission::Queued => {
                self.push(job);
                Ok(())
            }
            Admission::RunHere => {
                self.execute(job);
                Ok(())
            }
            Admission::Closed | Admission::Full => Err(job),
        }
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
                .filter(|(registry, _)| std::ptr::eq(&**registry, self))
                .map(|&(_, index)| index)
        })
    }

    /// The guest ring slot the calling thread holds in this registry; if it
    /// holds none here and `claim`, takes a free one (giving back a ring held
    /// in another pool). `None` on a worker of this pool (it has its own run
    /// queue) or when every guest ring is held.
    fn guest_slot(self: &Arc<Self>, claim: bool) -> Option<usize> {
        if self.is_current() {
            return None;
        }
        let me = Arc::as_ptr(self);
        LEASE.with(|lease| {
            let mut lease = lease.try_borrow_mut().ok()?;
            // A live `Weak` pins its allocation, so an equal address is this
            // registry, not a new one at a freed one's address.
            if let Some(held) = &*lease
                && held.registry.as_ptr() == me
            {
                return Some(held.slot);
            }
            if !claim {
                return None;
            }
            // Acquire: pairs with the Release in `Lease::drop`, so the
            // previous holder's pushes happen before ours.
            let slot = self.guests_taken.iter().position(|taken| {
                taken
                    .compare_exchange(false, true, Acquire, Relaxed)
                    .is_ok()
            })?;
            let old = lease.replace(Lease {
                registry: Arc::downgrade(self),
                slot,
            });
            drop(lease);
            drop(old); // gives back a ring held in another pool
            Some(slot)
        })
    }

    /// Pushes `job` onto the calling thread's own queue: its run queue if it
    /// is a worker, else its guest ring (see `Lease`). `Err` gives the job
    /// back, saying whether the ring is at the queue bound ([`NotPushed::Full`])
    /// or the pool is closed or the thread has no ring here
    /// ([`NotPushed::NoRing`]); the caller then takes another path.
    pub(crate) fn push_local(self: &Arc<Self>, job: Job) -> Result<(), NotPushed> {
        if self.closed.load(Relaxed) || self.is_foreign() {
            return Err(NotPushed::NoRing(job));
        }
        if let Some(index) = self.worker_index() {
            // A worker drains its own ring before it exits, so a push that
            // races `close` is run (or cancelled) by the worker itself.
            // SAFETY: only worker `index` (this thread) pushes to its ring.
            unsafe { self.rings[index].push_unchecked(job, self.queue_bound) }
                .map_err(NotPushed::Full)?;
            self.sleep.notify_one();
            return Ok(());
        }
        let Some(slot) = self.guest_slot(true) else {
            return Err(NotPushed::NoRing(job));
        };
        let busy = &self.guest_busy[slot];
        busy.store(true, Relaxed);
        let ring = &self.rings[self.workers + slot];
        // SAFETY: this thread holds the lease on the ring (`guest_slot`), and
        // leases change hands with Release/Acquire.
        if let Err(job) = unsafe { ring.push_unchecked(job, self.queue_bound) } {
            busy.store(false, Release);
            return Err(NotPushed::Full(job));
        }
        // Its fence is also the holder's side of closing (module docs).
        self.sleep.notify_one();
        if self.closed.load(Relaxed) {
            // `close` may have looked at `busy` before we set it, and workers
            // may have exited: run (or, terminating, cancel) our ring's jobs
            // ourselves. They were all accepted.
            while let Some(job) = ring.pop() {
                self.execute(job);
            }
        }
        // Release: `close` acquires the flag, so our push is in the ring
        // before the pool is marked drained.
        busy.store(false, Release);
        Ok(())
    }

    /// One job from the calling thread's guest ring, if it holds one here:
    /// a scope waiting for its tasks runs its own spawns first.
    pub(crate) fn pop_guest(self: &Arc<Self>) -> Option<Job> {
        if self.is_foreign() {
            return None; // the parent's jobs (see `find_job`)
        }
        let slot = self.guest_slot(false)?;
        self.rings[self.workers + slot].pop()
    }

    /// Takes a job from the injector, if one is queued.
    fn pop(&self) -> Option<Job> {
        let job = self.queue.pop()?;
        self.slots.release(1);
        Some(job)
    }

    /// Whether any queue or ring holds a job (a snapshot).
    pub(crate) fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.rings.iter().any(|r| !r.is_empty())
    }

    /// Whether workers may exit: drained (see the module docs) and no job left.
    fn finished(&self) -> bool {
        self.drained.load(Acquire) && !self.has_work()
    }

    /// The next job for worker `me` (or for a helping thread outside the pool,
    /// `None`): its own run queue first, then the injector, then a steal.
    fn find_job(&self, me: Option<usize>) -> Option<Job> {
        if self.is_foreign() {
            return None; // the parent's jobs: not ours to run (see `forks`)
        }
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

    /// Takes jobs from another ring: other workers' rings first (they hold
    /// batches stolen earlier, so older jobs than the guest rings), starting
    /// after our own index so thieves spread over victims; then the guest
    /// rings. A worker takes a batch into its own run queue (where others can
    /// steal them back) and returns the first; a helper outside the pool takes
    /// one.
    ///
    /// A batch is at most a `1 / workers` share of what the victim holds (and
    /// at most [`STEAL_BATCH`]): a long queue goes in batches, a short one is
    /// dealt out a job at a time, in order. So when tasks block, the first
    /// ones submitted are the ones running, not held in the ring of a worker
    /// that blocked on an earlier one.
    fn steal(&self, me: Option<usize>) -> Option<Job> {
        let workers = self.workers;
        let start = me.map_or(0, |i| i + 1);
        let other_workers = (0..workers)
            .map(|k| (start + k) % workers)
            .filter(|&victim| Some(victim) != me);
        for victim in other_workers.chain(workers..self.rings.len()) {
            let ring = &self.rings[victim];
            let Some(index) = me else {
                if let Some(job) = ring.pop() {
                    return Some(job);
                }
                continue;
            };
            let share = ring.len().div_ceil(workers).clamp(1, STEAL_BATCH);
            let own = &self.rings[index];
            let mut overflow = Vec::new();
            let taken = ring.take_batch(share, |job| {
                // SAFETY: only worker `index` (this thread) pushes to its ring.
                if let Err(job) = unsafe { own.push_unchecked(job, RING_CAPACITY) } {
                    overflow.push(job); // not expected: our ring was just empty
                }
            });
            if let Take::Items(_) = taken {
                for job in overflow {
                    self.execute(job);
                }
                return own.pop();
            }
        }
        None
    }

    /// Runs one queued job on the calling thread, if there is one (used while
    /// waiting, so waiting threads help instead of idling).
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

    /// Closes the pool to new submissions (see the module docs). Returns
    /// whether this call closed it.
    fn close(&self) -> bool {
        let first = !self.closed.swap(true, AcqRel);
        // The closer's fence (see the module docs on closing): the heavy
        // side, as a guest ring's holder has only a light one.
        barrier::heavy();
        // Wakes every submitter asleep on a full queue to see the close
        // (`UnlessClosed`): releasing no permit notifies all waiters.
        self.slots.release(0);
        first
    }

    /// Marks the pool drained once every admitted submission has pushed, and
    /// wakes every sleeper to see it.
    ///
    /// A submitter blocked on the full injector counts in `submitting` until
    /// a place frees up, which only a worker taking a queued job does. A
    /// closer that is itself a worker (a task shutting down its pool) may be
    /// the only one free to, so it runs queued jobs while it waits; else it
    /// would wait for ever for a submitter that waits for it. (Shutting down
    /// runs every queued job anyway.) A closer outside the pool leaves the
    /// jobs to the workers: a job it ran could itself wait for the workers
    /// to exit, which they do only once this drain is done. A job the
    /// closing worker runs here that shuts the pool down too does not wait
    /// for them (`DRAINING`; see `join_workers`).
    fn drain(&self) {
        let worker = self.worker_index();
        // Acquire: pairs with `push`'s Release, so every admitted job is in a
        // queue before `drained` says so.
        while self.submitting.load(Acquire) != 0
            || self.guest_busy.iter().any(|busy| busy.load(Acquire))
        {
            let helped = worker.is_some() && {
                DRAINING.with(|d| d.set(self));
                let ran = self.run_one(worker);
                DRAINING.with(|d| d.set(std::ptr::null()));
                ran
            };
            if !helped {
                yield_now();
            }
        }
        self.drained.store(true, Release);
        self.sleep.notify_all();
    }

    /// Stops taking tasks; workers finish every queued job, then exit. Does
    /// not wait for them ([`join_workers`](Self::join_workers) does).
    pub(crate) fn shutdown(&self) {
        if self.is_foreign() {
            return; // nobody here to wait for or to stop (see `forks`)
        }
        if self.close() {
            self.drain();
        }
    }

    /// Stops now: takes no new tasks and cancels every queued job, here and in
    /// every worker or helper that finds one from now on. Running jobs finish.
    pub(crate) fn terminate(&self) {
        if self.is_foreign() {
            return;
        }
        self.terminating.store(true, Release);
        self.close();
        self.cancel_queued();
        self.drain();
    }

    /// Cancels every queued job until no submission is in flight. Helps
    /// submitters blocked on a full queue: each cancelled injector job frees a
    /// place, and they then see `closed`.
    fn cancel_queued(&self) {
        loop {
            while let Some(job) = self.find_job(None) {
                drop(job);
            }
            if self.submitting.load(Acquire) == 0 && !self.has_work() {
                break;
            }
            yield_now();
        }
    }

    fn lock_threads(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins every worker thread, replacements started meanwhile included (a
    /// dying worker registers its replacement before it ends). A worker
    /// calling this (shutdown from inside a task) skips itself: it exits on
    /// its own once the pool is finished.
    pub(crate) fn join_workers(&self) {
        if self.is_foreign() {
            return; // the workers are the parent's threads
        }
        if DRAINING.with(|d| std::ptr::eq(d.get(), self)) {
            // A job run by a closing worker, inside its `drain`: the other
            // workers exit only once that drain is done, so waiting for them
            // here would wait for ever. The shutdown that drains joins them.
            return;
        }
        let me = std::thread::current().id();
        loop {
            let threads: Vec<JoinHandle<()>> = self.lock_threads().drain(..).collect();
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

    /// Starts the thread of worker `index`. `ready` hears whether pinning
    /// worked (for `start_workers`; a replacement passes `None`).
    fn spawn_worker(
        self: &Arc<Self>,
        index: usize,
        ready: Option<mpsc::Sender<Result<(), StartFailure>>>,
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
        let registry = Arc::clone(self);
        builder.spawn(move || {
            let pinned = match cpu {
                Some(cpu) => {
                    crate::affinity::pin_current_thread(cpu).map_err(|error| StartFailure::Pin {
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
            registry.run_worker(index);
            registry.alive.fetch_sub(1, SeqCst);
        })
    }

    /// The body of worker `index`'s thread: the worker loop, watched.
    pub(crate) fn run_worker(self: &Arc<Self>, index: usize) {
        let watch = WorkerWatch {
            registry: self,
            index,
        };
        CURRENT_WORKER.with(|s| *s.borrow_mut() = Some((Arc::clone(self), index)));
        self.worker_loop(index);
        CURRENT_WORKER.with(|s| s.borrow_mut().take());
        std::mem::forget(watch);
    }

    fn worker_loop(&self, index: usize) {
        let mut idle = 0u32;
        loop {
            #[cfg(test)]
            faults::at(&self.faults.die_between_jobs);
            if let Some(job) = self.find_job(Some(index)) {
                idle = 0;
                #[cfg(test)]
                faults::at(&self.faults.die_holding_job); // drops `job` unrun
                self.execute(job); // never unwinds
                continue;
            }
            if self.finished() {
                break;
            }
            // Nothing queued: spin, then sleep (module docs).
            idle += 1;
            if idle < SPIN_ROUNDS {
                for _ in 0..2u32 << idle {
                    spin_loop();
                }
            } else if self.has_work() {
                // Queued, yet not ours to take: a thief copying out a batch
                // it claimed holds that ring, for a whole time slice if it
                // was preempted (module docs). Give it the CPU, and look
                // again without spinning.
                yield_now();
                idle = SPIN_ROUNDS - 1;
            } else {
                self.sleep
                    .sleep(index, || self.has_work() || self.drained.load(Acquire));
                idle = 0;
            }
        }
    }

    /// Worker `index` is unwinding out of its loop. Starts a replacement,
    /// unless the pool is finished; if none can be started and no worker is
    /// left, closes the pool and cancels what is queued. Runs on the dying
    /// thread, before it ends: `join_workers` joins that thread, then finds
    /// the replacement's handle.
    fn replace_worker(self: &Arc<Self>, index: usize) {
        if !self.finished()
            && let Ok(handle) = self.spawn_worker(index, None)
        {
            self.lock_threads().push(handle);
            return; // the replacement takes over this thread's `alive` count
        }
        if self.alive.fetch_sub(1, SeqCst) == 1 && !self.finished() {
            self.terminate();
        }
    }
}

/// Replaces its worker if dropped: armed while the worker loop runs, forgotten
/// when the loop returns, so only an unwinding loop drops it.
struct WorkerWatch<'a> {
    registry: &'a Arc<Registry>,
    index: usize,
}

impl Drop for WorkerWatch<'_> {
    fn drop(&mut self) {
        CURRENT_WORKER.with(|s| s.borrow_mut().take());
        self.registry.replace_worker(self.index);
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
