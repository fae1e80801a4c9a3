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
//! | [`process`] | [`process::map`] / [`process::map_plain`] / [`process::reduce`]: fork-join over a shared chunk dispenser, plain results returned in place ([`process::SharedResults`]); [`process::ProcessPool`]: persistent workers from a fork server, crash isolation, timeouts, recycling |
//! | [`job`] | [`job::JobHost`]: run external commands as whole process trees — a process group and a cgroup v2 per job, a child subreaper sweeping re-parented descendants, pidfd waits with deadlines |
//! | [`ipc`] | framed serde messages ([`ipc::frame`], fuzzed), [`ipc::Duplex`] channels, [`ipc::ProcessQueue`] (shared memory + futex), [`ipc::SharedValue`] / [`ipc::SharedArray`] |
//! | [`shm`] | [`shm::SharedBox`] / [`shm::SharedSlice`]: values in an anonymous `MAP_SHARED` mapping, visible to children forked after it |
//! | [`fork`] | [`fork::fork_child`]: run a closure in a child process; the handle reaps it, kills it on drop |
//! | [`affinity`] | pin the calling thread to one CPU; list the CPUs this process may use |
//! | [`park`] | [`park::FutexPark`]: ply-core's `Park` seam on Linux futexes (sleeping waiters, also across processes); [`park::Until`], a deadline every futex wait honours |
//! | [`liveness`] | [`liveness::ThreadLiveness`]: ply-core's `Liveness` seam (who holds a robust lock, and whether that thread still runs) |
//!
//! Everything here is Linux-specific and built on `libc`.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

// Under `--cfg loom` (the thread pool's model checks, see `thread`) only the
// thread pool is built: the rest does not use loom's atomics.
pub mod affinity;
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
pub mod thread;
