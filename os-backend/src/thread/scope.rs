//! [`ThreadPool::scope`]: tasks that borrow from the caller's stack.

use std::any::Any;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::engine::Admission;
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
        // The calling thread's own queue (its run queue, or its guest ring);
        // else the injector, if it has room; else run it right here: a scope
        // never blocks on a full queue, and a shut-down pool still runs it.
        let registry = &self.pool.registry;
        if let Err(job) = registry.push_local(job) {
            match registry.admit(false) {
                Admission::Queued => registry.push(job),
                Admission::Full | Admission::RunHere | Admission::Closed => job.run(),
            }
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
