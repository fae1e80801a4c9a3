//! A pool of worker threads, shaped like Python's
//! `concurrent.futures.ThreadPoolExecutor` but for Rust: in Python threads only
//! overlap waiting; here they also run CPU-bound work in parallel.
//!
//! | capability | API |
//! |---|---|
//! | futures | [`ThreadPool::submit`] → [`TaskHandle`] (`join`, `join_timeout`, `is_finished`); panics come back as [`TaskError::Panicked`] |
//! | back-pressure | a bounded queue: `submit` blocks when full, [`ThreadPool::try_submit`] fails |
//! | ordered map | [`ThreadPool::map`]: lazy, at most `2 × workers` in flight |
//! | completion order | [`ThreadPool::map_unordered`], [`as_completed`] |
//! | borrowing | [`ThreadPool::scope`] |
//! | data parallel | [`ThreadPool::for_each_chunk`], [`for_each`](ThreadPool::for_each), [`map_slice`](ThreadPool::map_slice), [`reduce`](ThreadPool::reduce), [`reduce_slice`](ThreadPool::reduce_slice) over ply-core's [`Chunking`] strategies |
//! | lifecycle | [`ThreadPool::shutdown`] and `Drop` finish queued work and join every worker |
//!
//! # Scheduling
//!
//! One shared injector: ply-core's bounded [`ArrayQueue`] of boxed jobs, with
//! two futex-backed semaphores — jobs available (idle workers sleep on it) and
//! free slots (submitters wait on it when the queue is full). A worker that
//! finds no job spins briefly, then yields, then sleeps, so a steady stream of
//! tasks never pays for a wake-up system call and an idle pool burns no CPU.
//!
//! What one shared queue costs (measured in BENCHMARKS.md): for data-parallel
//! work it is invisible — the helpers hand out chunks through ply-core's
//! `ChunkDispenser`, not tasks, and match rayon on the primes and
//! sum-of-squares workloads. For many tiny tasks it is not: every spawn is a
//! few atomic operations on lines the workers also write, where rayon pushes to
//! the spawning worker's own deque. Per-worker deques with stealing (a bounded
//! work-stealing deque in ply-core) are the planned next step for spawn cost.
//!
//! Waiting threads help: `scope` runs queued tasks while it waits, and a worker
//! submitting to its own full pool runs the task inline — so nested use never
//! deadlocks.
//!
//! [`ArrayQueue`]: ply_core::queue::mpmc::ArrayQueue
//! [`Chunking`]: Chunking

mod iter;
mod parallel;
mod pool;
mod scope;
mod task;

pub use iter::{AsCompleted, Map, MapUnordered, as_completed};
pub use parallel::Chunking;
pub use pool::{
    MAX_QUEUE_BOUND, PoolError, SubmitError, ThreadPool, ThreadPoolBuilder, TrySubmitError,
};
pub use scope::Scope;
pub use task::{TaskError, TaskHandle};

#[cfg(test)]
mod tests;
