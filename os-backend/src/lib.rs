//! # ply-os — the Linux backend of ply
//!
//! The pieces of ply that need an operating system: a thread pool, process
//! parallelism (a fork-join map and a crash-proof process pool), IPC, memory
//! shared between processes, forked children that are always reaped, futex
//! waiting, and CPU pinning.
//!
//! | module | what it holds |
//! |---|---|
//! | [`thread`] | [`thread::ThreadPool`]: futures, back-pressure, ordered/unordered map, scope, data-parallel helpers; per-worker run queues with batch stealing |
//! | [`process`] | [`process::map_slice`] / [`process::map_slice_plain`] / [`process::reduce`]: fork-join over a shared chunk dispenser, plain results returned in place ([`process::SharedResults`]); [`process::ProcessPool`]: persistent workers from a fork server, crash isolation, timeouts, recycling |
//! | [`job`] | [`job::JobHost`]: run external commands as whole process trees — a process group and a cgroup v2 per job, a child subreaper sweeping re-parented descendants, pidfd waits with deadlines |
//! | [`ipc`] | framed serde messages ([`ipc::frame`], fuzzed), [`ipc::Duplex`] channels, [`ipc::ProcessQueue`] (shared memory + futex), [`ipc::SharedValue`] / [`ipc::SharedArray`] |
//! | [`shm`] | [`shm::SharedBox`] / [`shm::SharedSlice`]: values in an anonymous `MAP_SHARED` mapping, visible to children forked after it |
//! | [`fork`] | [`fork::fork_child`]: run a closure in a child process; the handle reaps it, kills it on drop |
//! | [`affinity`] | pin the calling thread to one CPU; list the CPUs this process may use |
//! | [`park`] | [`park::FutexPark`]: ply-core's `Park` seam on Linux futexes (sleeping waiters, also across processes); [`park::Until`], a deadline every futex wait honours |
//! | [`liveness`] | [`liveness::ThreadLiveness`]: ply-core's `Liveness` seam (who holds a robust lock, and whether that thread still runs) |
//!
//! Everything here is Linux-specific and built on `libc`.
//!
//! # One API for threads and processes
//!
//! A user who knows one pool can guess the other. The same call has the same
//! name, argument order and handle shape on both sides:
//!
//! | what | threads ([`thread`]) | processes ([`process`]) |
//! |---|---|---|
//! | a pool, configured | `ThreadPool::builder()` = `ThreadPoolBuilder::new()` | `ProcessPool::builder()` = `ProcessPoolBuilder::new()` |
//! | one task | `submit` / `try_submit` / `submit_timeout` → [`thread::TaskHandle`] | `submit` / `try_submit` / `submit_timeout` / `submit_fn` → [`process::TaskHandle`] |
//! | a handle | `join`, `join_timeout`, `is_finished`, `cancel`, `on_complete` | the same |
//! | many inputs, lazily | `pool.map(inputs, f)`, `pool.map_unordered(inputs, f)` | `pool.map(requests)`, `pool.map_unordered(requests)` |
//! | many handles | [`thread::as_completed`]`(handles)`, [`thread::wait`]`(handles, WaitFor::…, timeout)` | [`process::as_completed`]`(handles)`, [`process::wait`]`(handles, WaitFor::…, timeout)` |
//! | a whole slice, in order | `pool.map_slice(&items, f)` | [`process::map_slice`]`(&items, f, &options)`; plain data back in place: [`process::map_slice_plain`] |
//! | a fold over a range | `pool.reduce(range, identity, map, combine, chunking)` | [`process::reduce`]`(range, identity, map, combine, &options)` |
//! | chunks | [`Chunking`](ply_core::partition::Chunking) (ply-core's schedules) | the same type, in [`process::MapOptions::chunking`] |
//! | stop | `shutdown` (finish queued work), `terminate` (drop it) | the same (and running tasks are killed) |
//!
//! The conventions behind the table:
//!
//! - **Arguments**: the data first, then the closures, then the options
//!   (`Chunking` or `&MapOptions`). An identity is a closure, `|| 0`, called
//!   once per chunk (rayon's convention), so it need not be `Clone`.
//! - **Handles** are `TaskHandle` in each module, `#[must_use]`; waiting
//!   without a limit is `join`, with one `join_timeout` (giving the handle
//!   back on timeout).
//! - **Verbs by kind**: ply-core's lock-free queues `push`/`pop` and never
//!   sleep; anything that can block on another thread or process is a
//!   channel and says `send`/`recv` ([`ipc::ProcessQueue`], [`ipc::channel`],
//!   [`ipc::Duplex`]). Every blocking call has a `try_` form that never
//!   waits and a `_timeout` form with a deadline.
//! - **Errors** are `#[non_exhaustive]` enums; bad options are reported as
//!   an `Err` when the pool is built or the call starts, never as a panic.
//! - **Messages** between processes are serde types. serde is re-exported
//!   as [`ply_os::serde`](crate::serde), so a program derives through ply
//!   without depending on serde itself:
//!
//! ```
//! use ply_os::serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! #[serde(crate = "ply_os::serde")]
//! struct Order {
//!     id: u32,
//!     items: Vec<String>,
//! }
//!
//! let pool = ply_os::process::ProcessPool::builder()
//!     .workers(1)
//!     .build(|o: Order| o.items.len() as u32 + o.id)?;
//! let order = Order { id: 40, items: vec!["a".into(), "b".into()] };
//! assert_eq!(pool.submit(&order)?.join()?, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Under `--cfg loom` (the thread pool's model checks, see `thread`) only the
// thread pool is built: the rest does not use loom's atomics.
pub mod affinity;
mod completion;
mod options;

pub use options::InvalidOption;
#[cfg(not(loom))]
pub mod fork;
#[cfg(not(loom))]
pub mod ipc;
#[cfg(not(loom))]
pub mod job;
#[cfg(not(loom))]
pub mod liveness;
#[cfg(not(loom))]
mod once;
#[cfg(not(loom))]
pub mod park;
#[cfg(not(loom))]
pub mod process;
#[cfg(not(loom))]
pub mod shm;
#[cfg(test)]
mod test_support;
pub mod thread;

/// serde, re-exported with its derive macros: derive `Serialize` and
/// `Deserialize` for the messages of [`process`] and [`ipc`] with
/// `#[serde(crate = "ply_os::serde")]` (see the crate docs), no serde
/// dependency of your own needed.
pub use serde;
