//! Bounded, allocation-free queues.
//!
//! - [`spsc::Ring`]: one producer, one consumer. Wait-free, the fastest way to move
//!   items between two fixed parties (a thread pair, a process pair, an interrupt
//!   handler and a main loop).
//! - [`mpmc::ArrayQueue`]: any number of producers and consumers.
//! - [`spmc::Ring`]: one producer, many consumers that take batches — the run
//!   queue of a work-stealing scheduler (ply-os's thread pool uses it per worker).
//!
//! Both store items inline in a fixed array of capacity `N` (a const generic), hold
//! no pointers, and can therefore be placed in memory shared between processes. See
//! each type's "Across processes" section for what that does and does not allow.

pub mod mpmc;
pub mod spmc;
pub mod spsc;
