//! The queues for C: ply-core's SPSC ring, array queue and SCQ queue over C
//! buffers, with the element size and capacity chosen at run time.
//!
//! Each is ply-core's generic queue (`RingBase`, `ArrayQueueBase`, `ScqBase`)
//! instantiated with the byte storage of [`crate::bytes`]; the functions here
//! check C's arguments, then call the same `push_in_place`/`pop_in_place` the
//! Rust types use. Each control block finds its buffer relative to itself
//! (`src/place.rs`), so it works wherever each process maps it.

mod array_queue;
mod scq;
mod spsc;

pub use array_queue::*;
pub use scq::*;
pub use spsc::*;

/// `capacity * elem_size`, or `None` if it overflows what a buffer can be.
fn bytes_for(capacity: usize, elem_size: usize) -> Option<usize> {
    capacity
        .checked_mul(elem_size)
        .filter(|&bytes| bytes <= isize::MAX as usize)
}
