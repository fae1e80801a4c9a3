//! A pool of worker threads, shaped like Python's
//! `concurrent.futures.ThreadPoolExecutor` but for Rust: in Python threads only
//! overlap waiting; here they also run CPU-bound work in parallel.
//!
//! | capability | API |
//! |---|---|
//! | futures | [`ThreadPool::submit`] → [`TaskHandle`] (`join`, `join_timeout`, `is_finished`); panics come back as [`TaskError::Panicked`] |
//! | back-pressure | a bounded queue: `submit` blocks when full, [`ThreadPool::try_submit`] fails, [`ThreadPool::submit_timeout`] waits until a deadline |
//! | ordered map | [`ThreadPool::map`]: lazy, at most `2 × workers` in flight |
//! | completion order | [`ThreadPool::map_unordered`], [`as_completed`], [`wait`] (first completed, first error, or all, with a deadline) |
//! | callbacks | [`TaskHandle::on_complete`] |
//! | borrowing | [`ThreadPool::scope`] |
//! | data parallel | [`ThreadPool::for_each_chunk`], [`for_each`](ThreadPool::for_each), [`map_slice`](ThreadPool::map_slice), [`reduce`](ThreadPool::reduce), [`reduce_slice`](ThreadPool::reduce_slice) over ply-core's partition schedules, chosen with a [`Chunking`] (the same choice as the process map's) |
//! | cancelling | [`TaskHandle::cancel`]: a queued task never runs; [`ThreadPool::terminate`] cancels everything queued |
//! | lifecycle | [`ThreadPool::shutdown`] and `Drop` finish queued work and join every worker |
//!
//! # Tasks cannot take the pool down
//!
//! A worker survives anything a task does short of aborting the process: a
//! panic fails only its task ([`TaskError::Panicked`]), and a panicking `Drop`
//! of anything the task leaves behind — its panic payload, a result whose
//! handle was dropped, the captured values of a task that never runs — is
//! contained where it happens (the panic hook still reports it). A worker lost
//! anyway (a bug in the pool itself) is replaced; if no thread can be started
//! and none is left, the pool shuts down and cancels what was queued, so no
//! handle waits for a task that can no longer run. A task that never returns
//! still holds its worker: threads cannot be killed (the process pool can kill
//! its workers).
//!
//! # Layout
//!
//! The same shape as [`process`](crate::process): the public API and its
//! builder in `pool.rs` (with `scope.rs`, `iter.rs` and `parallel.rs` adding
//! methods to [`ThreadPool`]), task handles in `task.rs`, errors in
//! `error.rs`, and the engine in `engine/`: the registry of queues and worker
//! threads (injector, per-worker run queues, batch stealing, the worker loop)
//! and the sleep/wake protocol, model-checked with loom. Every task is a
//! `Job` (`job.rs`): a closure of up to four words stored inline, so a spawn
//! allocates nothing. Data-parallel helpers hand out chunks through
//! ply-core's `ChunkDispenser`, not tasks.
//!
//! Waiting threads help: `scope` runs queued tasks while it waits, and a worker
//! joining a handle or submitting to its own full pool runs tasks itself — so
//! nested use never deadlocks.
//!
//! [`Chunking`]: ply_core::partition::Chunking

mod engine;
mod error;
mod iter;
mod job;
mod parallel;
mod pool;
mod scope;
mod task;
mod unwind;

pub use crate::completion::WaitFor;
pub use engine::MAX_QUEUE_BOUND;
/// Which process a pool belongs to (the process pool asks too).
#[cfg(not(loom))]
pub(crate) use engine::forks;
pub use error::{PoolError, SubmitError, TaskError, TrySubmitError};
pub use iter::{AsCompleted, Map, MapUnordered, as_completed, wait};
pub use pool::{ThreadPool, ThreadPoolBuilder};
pub use scope::Scope;
pub use task::TaskHandle;
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use unwind::{drop_payload, panic_message};

#[cfg(all(test, not(loom)))]
mod tests;
