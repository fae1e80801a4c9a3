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

use crate::place::{Kind, Tag};
use crate::{PLY_ERR_ALIGN, PLY_ERR_NULL, PLY_ERR_OVERLAP, PLY_ERR_UNINIT, ply_status};

/// `capacity * elem_size`, or `None` if it overflows what a buffer can be.
fn bytes_for(capacity: usize, elem_size: usize) -> Option<usize> {
    capacity
        .checked_mul(elem_size)
        .filter(|&bytes| bytes <= isize::MAX as usize)
}

/// `PLY_ERR_OVERLAP` if the `len` bytes of `buffer` overlap the control block
/// at `object`.
fn apart<T>(object: *const T, buffer: *const u8, len: usize) -> Result<(), ply_status> {
    if crate::place::overlaps(object, size_of::<T>(), buffer, len) {
        Err(PLY_ERR_OVERLAP)
    } else {
        Ok(())
    }
}

/// `&*object` for a call on an initialized object of `kind`: its tag, read
/// through `tag`, names `kind`. Otherwise the status to return:
/// `PLY_ERR_NULL`, `PLY_ERR_ALIGN` or `PLY_ERR_UNINIT`.
///
/// # Safety
///
/// `object` must be NULL or point to readable memory of a `T`'s size (the
/// types here are atomics and integers, for which any bytes are a value).
#[inline(always)]
unsafe fn published<'a, T>(
    object: *const T,
    kind: Kind,
    tag: impl FnOnce(&T) -> &Tag,
) -> Result<&'a T, ply_status> {
    if object.is_null() {
        return Err(PLY_ERR_NULL);
    }
    if !object.is_aligned() {
        return Err(PLY_ERR_ALIGN);
    }
    // SAFETY: non-null, aligned, readable (the caller's promise).
    let object = unsafe { &*object };
    if tag(object).is(kind) {
        Ok(object)
    } else {
        Err(PLY_ERR_UNINIT)
    }
}

/// Unwraps a `Result<T, ply_status>`, returning the status from the calling
/// function on `Err`.
macro_rules! or_return {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(status) => return status,
        }
    };
}
use or_return;
