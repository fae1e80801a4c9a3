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
//! # Scheduling
//!
//! Two kinds of queue, picked by measurement:
//!
//! - **The injector**: ply-core's bounded [`ArrayQueue`] for tasks submitted from
//!   outside the pool, with a futex-backed semaphore of free slots (submitters
//!   wait on it when the queue is full).
//! - **Run queues with stealing**: each worker owns a ply-core [`spmc::Ring`]; a
//!   task that spawns or submits pushes onto its worker's ring, and a `scope`
//!   opened by a thread outside the pool borrows one of four *guest* rings for
//!   its spawns. Pushing is a slot write and a `Release` store — no
//!   read-modify-write. An idle worker looks at its own ring, then the
//!   injector, then steals **half** of another ring (up to 32 tasks) with one
//!   CAS into its own ring, from where others can steal them back.
//!
//! Tasks are jobs that keep closures of up to four words inline, so a
//! spawn allocates nothing. Both changes came from profiles of a million empty
//! `scope.spawn`s: with one shared queue and boxed closures, a spawn cost
//! 200–600 ns (as much as rayon's); `malloc`/`free` of the boxes — allocated by
//! the spawner, freed by a worker — took 40% of the cycles, and the shared
//! queue's atomics most of the rest. With both, a spawn costs 40–65 ns
//! (BENCHMARKS.md). Data-parallel helpers hand out chunks through ply-core's
//! `ChunkDispenser`, not tasks, so they were never queue-bound.
//!
//! A worker that finds no job anywhere spins briefly, then yields, then sleeps
//! on a futex, so a steady stream of tasks never pays for a wake-up system call
//! and an idle pool burns no CPU. Before sleeping it re-checks every queue, and
//! every push checks for sleepers after publishing (a Dekker pair of `SeqCst`
//! fences), so no wake-up is lost.
//!
//! Waiting threads help: `scope` runs queued tasks while it waits, and a worker
//! submitting to its own full pool runs the task inline — so nested use never
//! deadlocks.
//!
//! [`ArrayQueue`]: ply_core::queue::mpmc::ArrayQueue
//! [`spmc::Ring`]: ply_core::queue::spmc::Ring
//! [`Chunking`]: Chunking

mod iter;
mod job;
mod parallel;
mod pool;
mod scope;
mod task;
mod unwind;

pub use iter::{AsCompleted, Map, MapUnordered, as_completed};
pub use parallel::Chunking;
pub(crate) use parallel::CountedSchedule;
pub use pool::{
    MAX_QUEUE_BOUND, PoolError, SubmitError, ThreadPool, ThreadPoolBuilder, TrySubmitError,
};
pub use scope::Scope;
pub use task::{TaskError, TaskHandle};
pub(crate) use unwind::panic_message;

#[cfg(test)]
mod tests;
