//! # ply-core — the `no_std` scheduling core of ply
//!
//! Lock-free queues (and, as they land, locks and work partitioning) that need no
//! allocator and no operating system. Every type has a `const fn new()`, so it can
//! live in a `static`, and every type holds its state inline with no pointers, so
//! the *same object* works between threads of one process and between processes
//! that share a `mmap(MAP_SHARED)` region after `fork()`. Which types may be
//! placed there is checked by the compiler: they implement [`ShmSafe`].
//!
//! | module | what it holds |
//! |---|---|
//! | [`queue::spsc`] | bounded single-producer/single-consumer ring, wait-free, batch chunks |
//! | [`queue::mpmc`] | bounded multi-producer/multi-consumer queues: per-slot stamps, and SCQ (live when a participant stalls) |
//! | [`queue::spmc`] | bounded single-producer/multi-consumer run queue; consumers take half a ring with one CAS (work stealing) |
//! | [`partition`] | even, fixed, guided and cost-weighted splits of `0..len`; `shard(k, n)`; the atomic [`partition::ChunkDispenser`] |
//! | [`sync`] | spin, ticket and reader-writer locks (surviving a waiter's death); a robust lock (surviving a holder's death); semaphore, event, barrier, once/lazy; the event count; the [`sync::Park`] (with deadlines) and [`sync::Liveness`] seams |
//! | [`ShmSafe`], [`shm_safe!`] | the marker for types that may live in memory shared between processes, and a checked way to implement it |
//! | [`TearSafe`] | the marker for types that stay valid when a writer dies mid-write (what a robust lock lets you read after its holder's death) |
//!
//! ## Targets
//! The crate builds for `thumbv7em-none-eabihf` (32-bit atomics only, no allocator).
//! Counters are `usize`; nothing needs `AtomicU64`.
//!
//! ## Features
//! - `std`: implements `std::error::Error` for the error types, and lets
//!   spin-waits yield to the OS scheduler once they have backed off.
//! - `fault-injection` (tests only): hooks that stop a participant at an exact
//!   point inside a queue or lock operation, to test liveness claims (see `fault`).
//!
//! ## Verification
//! The algorithms are written against [`primitive`](self) — a private facade that
//! re-exports `core`'s atomics normally and [loom]'s under `--cfg loom` — so the code
//! that ships is the code that is model-checked (`RUSTFLAGS="--cfg loom" cargo test
//! -p ply-core --release --lib --test loom`). The unit tests also run under Miri.
//!
//! [loom]: https://docs.rs/loom
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(any(test, feature = "std", loom))]
extern crate std;

/// Marks a fault-injection point (see `fault`); nothing without the feature.
macro_rules! fault_point {
    ($point:ident) => {
        #[cfg(feature = "fault-injection")]
        $crate::fault::hit($crate::fault::Point::$point);
    };
}
pub(crate) use fault_point;

/// Expands to its items when ply-core is built without `std`, to nothing when
/// it is built with it. For ply's C ABI, which must define `#[panic_handler]`
/// exactly when no crate in the build links `std` (Cargo unifies ply-core's
/// features across a workspace build, so the C ABI cannot tell on its own).
#[doc(hidden)]
#[cfg(not(feature = "std"))]
#[macro_export]
macro_rules! __if_no_std {
    ($($item:item)*) => { $($item)* };
}

/// See the `not(feature = "std")` version.
#[doc(hidden)]
#[cfg(feature = "std")]
#[macro_export]
macro_rules! __if_no_std {
    ($($item:item)*) => {};
}

#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod partition;
mod primitive;
pub mod queue;
mod shm_safe;
pub mod sync;
mod tear_safe;

pub use shm_safe::ShmSafe;
pub use tear_safe::TearSafe;
