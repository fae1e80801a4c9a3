//! Bounded multi-producer/multi-consumer queues.
//!
//! Two designs, with the same interface (`push` → `Result<(), T>`, `pop` →
//! `Option<T>`, `const fn new()`, no allocation, no pointers):
//!
//! | | [`ArrayQueue`] | [`ScqQueue`] |
//! |---|---|---|
//! | algorithm | Vyukov's per-slot stamps | Nikolaev's SCQ (DISC 2019), fetch-and-add |
//! | capacity `N` | any `N ≥ 1` | a power of two |
//! | memory | `N` slots + one stamp each | `N` slots + two index rings of `2N` words |
//! | a participant stalls mid-operation | others see a hole: `pop` reports `None`, `push` full, until it resumes | others carry on; at most that participant's one item waits |
//! | a participant dies mid-operation | the queue is wedged at the hole for good | at most one item lost and capacity reduced by one; the rest works |
//! | `force_push` (overwrite oldest) | yes | no |
//!
//! Use [`ArrayQueue`] between threads of one process, where a preempted thread
//! always resumes soon. Use [`ScqQueue`] where a participant can be stopped or
//! killed — processes sharing memory — or where strict lock-freedom matters
//! (interrupt handlers that may preempt a producer on the same core).

mod array_queue;
mod index_ring;
mod scq;
#[cfg(all(test, not(loom)))]
mod stress;

pub use array_queue::ArrayQueue;
#[cfg(not(loom))]
pub use index_ring::BorrowedEntries;
pub use index_ring::{Entries, InlineEntries};
#[cfg(not(loom))]
pub use scq::SliceScqQueue;
pub use scq::{ScqBase, ScqQueue};
