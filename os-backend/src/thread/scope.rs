//! [`ThreadPool::scope`]: tasks that borrow from the caller's stack.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::pool::{Job, ThreadPool};

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
    /// Spawned tasks not yet finished.
    pending: AtomicUsize,
    /// The first panic of a task, re-raised when the scope ends.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
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
        let scope = Scope {
            pool: self,
            state: ScopeState {
                pending: AtomicUsize::new(0),
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
        match (result, task_panic) {
            (Err(payload), _) | (Ok(_), Some(payload)) => resume_unwind(payload),
            (Ok(value), None) => value,
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
        // Relaxed is enough for the count: the decrement in the task is a
        // Release, and `wait_all` reads it with Acquire.
        self.state.pending.fetch_add(1, Ordering::Relaxed);
        // Borrow the scope's state rather than counting a reference per task:
        // `scope` keeps it alive until `pending` is zero, i.e. past this task.
        let state: &'scope ScopeState = &self.state;
        let job: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                state
                    .panic
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(payload);
            }
            // Release: the task's effects happen before `wait_all` returns.
            state.pending.fetch_sub(1, Ordering::Release);
        });
        // SAFETY: the job borrows only data that outlives 'scope, and `scope`
        // does not return (nor unwind past its frame) until `pending` is zero,
        // i.e. until this job has run to completion or been run inline below.
        let job: Job = unsafe {
            std::mem::transmute::<
                Box<dyn FnOnce() + Send + 'scope>,
                Box<dyn FnOnce() + Send + 'static>,
            >(job)
        };
        if let Err(job) = self.pool.submit_job(job) {
            job(); // the pool is shut down: run it here rather than lose it
        }
    }

    /// Waits until every spawned task has finished, running queued tasks
    /// meanwhile; when there is nothing to run, yields and then naps briefly
    /// (at most 1 ms) so a long wait costs little CPU.
    fn wait_all(&self) {
        let mut idle_rounds = 0u32;
        // Acquire: pairs with each task's Release decrement.
        while self.state.pending.load(Ordering::Acquire) != 0 {
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
}
