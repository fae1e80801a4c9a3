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
//! | `pop` → `None`, `push` → `Err` | empty / full at an instant during the call (linearizable) | the same |
//! | a participant stalls mid-operation | `pop`/`push` wait at its slot until it resumes; `try_pop`/`try_push` return `Busy` at once | others carry on; at most that participant's one item waits |
//! | a participant dies mid-operation | the queue is wedged at that slot for good | at most one item lost and capacity reduced by one; the rest works |
//! | `force_push` (overwrite oldest) | yes | no |
//!
//! Both are linearizable: `None` from `pop` means "empty", so it is a safe
//! "drained" signal. [`ArrayQueue`] gets there by waiting, briefly, for an
//! operation in flight at its slot (as crossbeam's does); its `try_pop`/
//! `try_push` never wait, and say `Busy` instead of a false "empty"/"full".
//! [`ScqQueue`] needs no waiting at all.
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

pub use array_queue::{
    ArrayQueue, ArrayQueueBase, ArraySlot, StampedInline, StampedSlots, TryPopError, TryPushError,
};
#[cfg(not(loom))]
pub use array_queue::{SliceArrayQueue, StampedBorrowed};
#[cfg(not(loom))]
pub use index_ring::BorrowedEntries;
pub use index_ring::{Entries, InlineEntries};
#[cfg(not(loom))]
pub use scq::SliceScqQueue;
pub use scq::{ScqBase, ScqQueue};
