//! # ply-os — the Linux backend of ply
//!
//! The pieces of ply that need an operating system: a thread pool, memory
//! shared between processes, forked children that are always reaped, futex
//! waiting, and CPU pinning. A process pool and IPC are to come, on top of these.
//!
//! | module | what it holds |
//! |---|---|
//! | [`shm`] | [`shm::SharedBox`]: one value in an anonymous `MAP_SHARED` mapping, visible to children forked after it |
//! | [`fork`] | [`fork::fork_child`]: run a closure in a child process; the handle reaps it, kills it on drop |
//! | [`affinity`] | pin the calling thread to one CPU; list the CPUs this process may use |
//! | [`thread`] | [`thread::ThreadPool`]: futures, back-pressure, ordered/unordered map, scope, data-parallel helpers |
//! | [`park`] | [`park::FutexPark`]: ply-core's `Park` seam on Linux futexes (sleeping waiters, also across processes) |
//!
//! Everything here is Linux-specific and built on `libc`.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod affinity;
pub mod fork;
pub mod ipc;
pub mod park;
pub mod process;
pub mod shm;
pub mod thread;
