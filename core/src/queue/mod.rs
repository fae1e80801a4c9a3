//! Bounded, allocation-free queues.
//!
//! - [`spsc::Ring`]: one producer, one consumer. Wait-free, the fastest way to move
//!   items between two fixed parties (a thread pair, a process pair, an interrupt
//!   handler and a main loop).
//! - [`mpmc::ArrayQueue`]: any number of producers and consumers.
//! - [`spmc::Ring`]: one producer, many consumers that take batches — the run
//!   queue of a work-stealing scheduler (ply-os's thread pool uses it per worker).
//!
//! Each stores items inline in a fixed array of capacity `N` (a const generic), holds
//! no pointers, and can therefore be placed in memory shared between processes. See
//! each type's "Across processes" section for what that does and does not allow.
//!
//! The SPSC ring and the two MPMC queues also come over a buffer the caller
//! provides, with the capacity chosen at run time ([`spsc::SliceRing`],
//! [`mpmc::SliceArrayQueue`], [`mpmc::SliceScqQueue`]): the same algorithm, generic
//! over a [`storage`] trait, so the const-generic types lose nothing (the compiler
//! still sees `N`). ply's C ABI builds on the same traits.

pub mod mpmc;
pub mod spmc;
pub mod spsc;
pub mod storage;
#[cfg(all(test, not(loom)))]
mod test_items;

pub use storage::CapacityError;
