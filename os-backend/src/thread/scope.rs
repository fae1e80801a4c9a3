//! [`ThreadPool::scope`]: tasks that borrow from the caller's stack.

use std::any::Any;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::engine::{Admission, NotPushed};
use super::job::Job;
use super::pool::ThreadPool;
use super::unwind::{drop_payload, drop_quietly};

/// Tasks spawned here may borrow anything that outlives the `scope` call;
/// `scope` returns only after every one of them has finished.
///
/// # Example
///
/// ```
/// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
/// let data = vec![1u64, 2, 3, 4];
/// let mut sums = [0u64; 2];
/// pool.scope(|s| {
///     let (left, right) = sums.split_at_mut(1);
///     s.spawn(|| left[0] = data[..2].iter().sum());
///     s.spawn(|| right[0] = data[2..].iter().sum());
/// });
/// assert_eq!(sums, [3, 7]);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'scope ThreadPool,
    state: ScopeState,
    /// Invariance over both lifetimes, as in `std::thread::Scope`.
    _marker: PhantomData<(&'scope mut &'scope (), &'env mut &'env ())>,
}

struct ScopeState {
    /// Tasks spawned so far. Written by spawners only.
    spawned: CachePadded<AtomicUsize>,
    /// Tasks finished (run or cancelled) so far. Written by the threads running
    /// them, on another cache line so spawning and finishing do not contend.
    finished: CachePadded<AtomicUsize>,
    /// Tasks cancelled unrun by [`ThreadPool::terminate`]. Counted before
    /// `finished`, so `wait_all` sees every one.
    cancelled: AtomicUsize,
    /// The first panic of a task, re-raised when the scope ends.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl ScopeState {
    /// Keeps the first task panic; drops later payloads quietly.
    fn record_panic(&self, payload: Box<dyn Any + Send>) {
        let mut first = self.panic.lock().unwrap_or_else(|e| e.into_inner());
        let extra = match *first {
            None => {
                *first = Some(payload);
                None
            }
            Some(_) => Some(payload),
        };
        drop(first);
        if let Some(extra) = extra {
            drop_payload(extra);
        }
    }
}

/// A spawned task as its job holds it: the user's closure and the scope's
/// state (borrowed, not counted: `scope` keeps it alive until every task has
/// finished). One word besides the closure, so a spawn of a closure of up to
/// three words stays inline in its job.
struct ScopeTask<'scope, F> {
    f: ManuallyDrop<F>,
    state: &'scope ScopeState,
}

impl<F: FnOnce()> ScopeTask<'_, F> {
    fn run(self) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so `f` is taken exactly once.
        let f = unsafe { ManuallyDrop::take(&mut this.f) };
        let state = this.state;
        // `f`'s captures are dropped inside the call, before the count below.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
            state.record_panic(payload);
        }
        // Release: the task's effects (its spawns included) happen before a
        // `wait_all` that acquires this count.
        state.finished.fetch_add(1, Ordering::Release);
    }
}

/// Dropped unrun: the job was cancelled by `terminate`.
impl<F> Drop for ScopeTask<'_, F> {
    fn drop(&mut self) {
        // SAFETY: `run` forgets `self`, so this is the only take of `f`.
        let f = unsafe { ManuallyDrop::take(&mut self.f) };
        // The closure first, quietly: it may borrow what the scope protects,
        // and the count below must happen even if its `Drop` panics.
        drop_quietly(f);
        self.state.cancelled.fetch_add(1, Ordering::Relaxed);
        self.state.finished.fetch_add(1, Ordering::Release);
    }
}

/// How many spawns a thread runs itself after finding its own ring full,
/// before it tries the ring again: enough that the look at the ring (a miss
/// on its `head` line, which the thieves write) is paid once per batch, not
/// once per task, yet few enough that the workers keep a full ring to take
/// from meanwhile, and that the batch takes at most about [`BUDGET`] of the
/// spawner's time (judged by the task just run), so long tasks are still
/// shared out one at a time and a scope does not end waiting for its owner.
mod run_here {
    use std::cell::Cell;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::thread::engine::Registry;

    /// At most this many spawns run here per full ring.
    const MAX_BATCH: u32 = 64;
    /// About the longest a batch run here should take.
    const BUDGET: Duration = Duration::from_micros(20);

    thread_local! {
        /// The registry (by address) whose ring this thread found full, and
        /// how many more spawns into it run here. An address reused by a
        /// later pool only makes a few of its spawns run here, which a full
        /// ring would have done too.
        static CREDIT: Cell<(usize, u32)> = const { Cell::new((0, 0)) };
    }

    /// How many of the next spawns run here, when the task just run here
    /// took `took`: at most a sixteenth of the ring, and about [`BUDGET`].
    pub(super) fn batch(queue_bound: usize, took: Duration) -> u32 {
        let by_ring = (queue_bound / 16).clamp(1, MAX_BATCH as usize) as u32;
        let by_time = BUDGET.as_nanos() / took.as_nanos().max(1);
        by_ring.min(by_time.min(u128::from(MAX_BATCH)) as u32)
    }

    /// The thread found its ring in `registry` full and ran a task here,
    /// which took `took`: some of its next spawns there run here too.
    pub(super) fn grant(registry: &Arc<Registry>, took: Duration) {
        let left = batch(registry.queue_bound(), took);
        CREDIT.with(|c| c.set((Arc::as_ptr(registry) as usize, left)));
    }

    /// Whether this spawn into `registry` runs here (and uses up one).
    #[inline]
    pub(super) fn take(registry: &Arc<Registry>) -> bool {
        CREDIT.with(|c| {
            let (owner, left) = c.get();
            let mine = left > 0 && owner == Arc::as_ptr(registry) as usize;
            if mine {
                c.set((owner, left - 1));
            }
            mine
        })
    }
}

/// What a scope does when [`ThreadPool::terminate`] cancelled some of its tasks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnCancel {
    /// Panic when the scope ends: the caller's work is incomplete.
    Panic,
    /// Nothing: the caller covers the work itself (the data-parallel helpers,
    /// whose calling thread claims every chunk no helper claimed).
    Ignore,
}

impl ThreadPool {
    /// Runs `f` with a [`Scope`] for spawning borrowing tasks, waits for all of
    /// them, and returns `f`'s result. While waiting, the calling thread runs
    /// queued tasks itself, so a scope inside a task (nesting) cannot deadlock.
    ///
    /// # Panics
    ///
    /// If `f` or a spawned task panics, the panic is re-raised here after every
    /// task has finished.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
    /// let words = ["a", "bb", "ccc"];
    /// let total = std::sync::atomic::AtomicUsize::new(0);
    /// pool.scope(|s| {
    ///     for w in &words {
    ///         let total = &total;
    ///         s.spawn(move || {
    ///             total.fetch_add(w.len(), std::sync::atomic::Ordering::Relaxed);
    ///         });
    ///     }
    /// });
    /// assert_eq!(total.into_inner(), 6);
    /// ```
    pub fn scope<'env, F, R>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        self.scope_with(OnCancel::Panic, f)
    }

    /// [`scope`](Self::scope), choosing what cancelled tasks mean.
    pub(crate) fn scope_with<'env, F, R>(&self, on_cancel: OnCancel, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        let scope = Scope {
            pool: self,
            state: ScopeState {
                spawned: CachePadded::new(AtomicUsize::new(0)),
                finished: CachePadded::new(AtomicUsize::new(0)),
                cancelled: AtomicUsize::new(0),
                panic: Mutex::new(None),
            },
            _marker: PhantomData,
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
        scope.wait_all();
        let task_panic = scope
            .state
            .panic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let cancelled = scope.state.cancelled.load(Ordering::Relaxed);
        match (result, task_panic) {
            (Err(payload), other) => {
                if let Some(other) = other {
                    drop_payload(other);
                }
                resume_unwind(payload)
            }
            (Ok(_), Some(payload)) => resume_unwind(payload),
            (Ok(value), None) => {
                if cancelled > 0 && on_cancel == OnCancel::Panic {
                    drop_quietly(value);
                    panic!(
                        "{cancelled} task(s) spawned in this scope were cancelled: \
                         the pool was terminated"
                    );
                }
                value
            }
        }
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Runs `f` on the pool. It may borrow from outside the `scope` call.
    ///
    /// When the calling thread's own queue is full (the workers are behind),
    /// `f` runs on the calling thread before `spawn` returns, and so do the
    /// next few spawns, up to about 20 µs of work: a caller that keeps
    /// spawning shares the work instead of waiting for room.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(1).unwrap();
    /// let mut x = 0;
    /// pool.scope(|s| s.spawn(|| x += 1));
    /// assert_eq!(x, 1);
    /// ```
    pub fn spawn<F>(&'scope self, f: F)
    where
        F: FnOnce() + Send + 'scope,
    {
        let registry = &self.pool.registry;
        if run_here::take(registry) {
            // This thread's ring was full a moment ago: run the task here,
            // uncounted (it finishes before `spawn` returns, so `wait_all`
            // needs no count of it), without touching the ring's lines or
            // the shared counters.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                self.state.record_panic(payload);
            }
            return;
        }
        // Relaxed: see `wait_all` for why the counts need no more.
        self.state.spawned.fetch_add(1, Ordering::Relaxed);
        // Borrow the scope's state rather than counting a reference per task:
        // `scope` keeps it alive until every spawned task has finished.
        let task = ScopeTask {
            f: ManuallyDrop::new(f),
            state: &self.state,
        };
        let task = move || task.run();
        // SAFETY: the task borrows only data that outlives 'scope, and `scope`
        // does not return (nor unwind past its frame) until every spawned task,
        // this one included, has been counted as finished: by `run` after the
        // closure returned, or by `drop` after the closure was dropped unrun.
        let job = unsafe { Job::new_unchecked(task) };
        // The calling thread's own queue (its run queue, or its guest ring).
        // When that is full, the spawner runs the task right here, and the
        // next few it spawns (`run_here`), as a work-stealing owner runs its
        // own deque: the workers are behind (or off their CPUs on a busy
        // machine) with a full ring to take from, and running a task costs
        // less than the injector's admission (a `SeqCst` fence and three
        // shared read-modify-writes) or another look at the full ring (a
        // line the thieves write), which under load took half the spawner's
        // time (BENCHMARKS.md). A thread without a ring here (every guest
        // ring held) uses the injector if it has room. A scope never blocks
        // on a full queue, and a shut-down pool still runs it.
        match registry.push_local(job) {
            Ok(()) => {}
            Err(NotPushed::Full(job)) => {
                let start = Instant::now();
                job.run();
                run_here::grant(registry, start.elapsed());
            }
            Err(NotPushed::NoRing(job)) => match registry.admit(false) {
                Admission::Queued => registry.push(job),
                Admission::Full | Admission::RunHere | Admission::Closed => job.run(),
            },
        }
    }

    /// Waits until every spawned task has finished, running queued tasks
    /// meanwhile; when there is nothing to run, yields and then naps briefly
    /// (at most 1 ms) so a long wait costs little CPU.
    fn wait_all(&self) {
        let mut idle_rounds = 0u32;
        while !self.all_finished() {
            let registry = &self.pool.registry;
            if let Some(job) = registry.pop_guest() {
                registry.execute(job);
                idle_rounds = 0;
                continue;
            }
            if self.pool.help() {
                idle_rounds = 0;
                continue;
            }
            idle_rounds += 1;
            if idle_rounds < 64 {
                std::hint::spin_loop();
            } else if idle_rounds < 128 {
                std::thread::yield_now();
            } else {
                let nap = (idle_rounds - 127).min(20) as u64 * 50;
                std::thread::sleep(Duration::from_micros(nap));
            }
        }
    }

    /// Whether every task spawned so far has finished.
    ///
    /// `finished` is read first, with Acquire: it pairs with the Release
    /// increments, so the `spawned` read after it sees every spawn made by the
    /// finished tasks (and all of ours). If the two are equal, the finished
    /// tasks are exactly the spawned ones, children included — a task's spawns
    /// precede its own finish — so nothing is left running.
    fn all_finished(&self) -> bool {
        let finished = self.state.finished.load(Ordering::Acquire);
        finished == self.state.spawned.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::panic::catch_unwind;
    use std::thread::current;

    #[test]
    fn a_batch_run_here_is_a_sixteenth_of_the_ring_and_about_the_budget() {
        let fast = Duration::from_nanos(5);
        assert_eq!(run_here::batch(1024, fast), 64);
        assert_eq!(run_here::batch(4096, fast), 64);
        assert_eq!(run_here::batch(160, fast), 10);
        assert_eq!(run_here::batch(1, fast), 1);
        assert_eq!(run_here::batch(1024, Duration::ZERO), 64);
        assert_eq!(run_here::batch(1024, Duration::from_micros(1)), 20);
        assert_eq!(run_here::batch(1024, Duration::from_micros(20)), 1);
        assert_eq!(run_here::batch(1024, Duration::from_micros(100)), 0);
    }

    #[test]
    fn spawns_on_credit_run_here_once_each_and_a_panic_is_re_raised() {
        let pool = ThreadPool::new(1).unwrap();
        let me = current().id();
        let runs: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        let on_spawner = AtomicUsize::new(0);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                // As if this thread had just found its ring full.
                run_here::grant(&pool.registry, Duration::ZERO);
                for i in 0..3 {
                    let (runs, on_spawner) = (&runs, &on_spawner);
                    s.spawn(move || {
                        runs[i].fetch_add(1, Ordering::SeqCst);
                        if current().id() == me {
                            on_spawner.fetch_add(1, Ordering::SeqCst);
                        }
                        if i == 1 {
                            panic!("task 1");
                        }
                    });
                }
                // Each ran before its `spawn` returned.
                assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));
            })
        }));
        let payload = caught.expect_err("the task's panic is re-raised");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"task 1"));
        assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));
        assert_eq!(on_spawner.load(Ordering::SeqCst), 3);
        // Credit for one pool is not spent on another's spawns.
        let other = ThreadPool::new(1).unwrap();
        run_here::grant(&pool.registry, Duration::ZERO);
        assert!(!run_here::take(&other.registry));
        assert!(run_here::take(&pool.registry));
    }
}
