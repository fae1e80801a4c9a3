//! The size and alignment of every opaque type, as C constants.
//!
//! C allocates ply's objects itself (a `static`, the stack, shared memory), so
//! `ply.h` gives each opaque type a complete definition of exactly the Rust
//! type's size and alignment, built from these constants. They depend on the
//! target only through two numbers: the machine word and the cache-line padding
//! ply-core uses between contended counters (crossbeam's `CachePadded`: 128 bytes
//! on x86-64 and AArch64, 32 on 32-bit Arm, 64 elsewhere). `ply.h` picks the
//! right pair with the preprocessor.
//!
//! The `const` assertions at the end hold every constant to the real Rust
//! layout: a build for a target where they disagree fails to compile (CI builds
//! for x86-64, thumbv6m, thumbv7em and riscv32imac). The C tests check the same
//! constants again with `static_assert` and against `ply_layout_size`.

use core::mem::{align_of, size_of};

use crate::partition::{ply_dispenser_t, ply_schedule_t};
use crate::queue::{
    ply_array_queue_t, ply_scq_t, ply_spsc_consumer_t, ply_spsc_producer_t, ply_spsc_t,
};
use crate::sync::{
    ply_barrier_t, ply_event_t, ply_once_t, ply_rwlock_t, ply_semaphore_t, ply_spin_t, ply_ticket_t,
};

/// Bytes between contended counters (crossbeam's `CachePadded` alignment).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub const PLY_CACHE_LINE: usize = 128;
/// Bytes between contended counters (crossbeam's `CachePadded` alignment).
#[cfg(target_arch = "arm")]
pub const PLY_CACHE_LINE: usize = 32;
/// Bytes between contended counters (crossbeam's `CachePadded` alignment).
#[cfg(any(target_arch = "riscv32", target_arch = "riscv64", target_arch = "x86"))]
pub const PLY_CACHE_LINE: usize = 64;

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv32",
    target_arch = "riscv64",
    target_arch = "x86"
)))]
compile_error!("ply-capi: no C layout for this target yet; add it to layout.rs and ply.h");

/// The machine word (`size_t`), in bytes.
#[cfg(target_pointer_width = "64")]
pub const PLY_WORD: usize = 8;
/// The machine word (`size_t`), in bytes.
#[cfg(target_pointer_width = "32")]
pub const PLY_WORD: usize = 4;

/// Size of a `ply_spsc_t`: two padded positions and the slot descriptor.
pub const PLY_SPSC_SIZE: usize = 3 * PLY_CACHE_LINE;
/// Alignment of a `ply_spsc_t`.
pub const PLY_SPSC_ALIGN: usize = PLY_CACHE_LINE;
/// Size of a `ply_spsc_producer_t` or `ply_spsc_consumer_t`: a check word,
/// the ring, a position and a cached position.
pub const PLY_SPSC_HANDLE_SIZE: usize = 4 * PLY_WORD;
/// Alignment of a `ply_spsc_producer_t` or `ply_spsc_consumer_t`.
pub const PLY_SPSC_HANDLE_ALIGN: usize = PLY_WORD;
/// Size of a `ply_array_queue_t`: two padded positions and the cell
/// descriptor.
pub const PLY_ARRAY_QUEUE_SIZE: usize = 3 * PLY_CACHE_LINE;
/// Alignment of a `ply_array_queue_t`.
pub const PLY_ARRAY_QUEUE_ALIGN: usize = PLY_CACHE_LINE;
/// Size of a `ply_scq_t`: two index rings of three padded counters each, and
/// the slot and entry descriptors.
pub const PLY_SCQ_SIZE: usize = 9 * PLY_CACHE_LINE;
/// Alignment of a `ply_scq_t`.
pub const PLY_SCQ_ALIGN: usize = PLY_CACHE_LINE;
/// Size of a `ply_spin_t`: one byte.
pub const PLY_SPIN_SIZE: usize = 1;
/// Alignment of a `ply_spin_t`.
pub const PLY_SPIN_ALIGN: usize = 1;
/// Size of a `ply_ticket_t`: two padded counters.
pub const PLY_TICKET_SIZE: usize = 2 * PLY_CACHE_LINE;
/// Alignment of a `ply_ticket_t`.
pub const PLY_TICKET_ALIGN: usize = PLY_CACHE_LINE;
/// Size of a `ply_rwlock_t`: one padded word.
pub const PLY_RWLOCK_SIZE: usize = PLY_CACHE_LINE;
/// Alignment of a `ply_rwlock_t`.
pub const PLY_RWLOCK_ALIGN: usize = PLY_CACHE_LINE;
/// Size of a `ply_semaphore_t`: three 32-bit words (the permits and an event
/// count).
pub const PLY_SEMAPHORE_SIZE: usize = 12;
/// Alignment of a `ply_semaphore_t`.
pub const PLY_SEMAPHORE_ALIGN: usize = 4;
/// Size of a `ply_event_t`: two 32-bit words.
pub const PLY_EVENT_SIZE: usize = 8;
/// Alignment of a `ply_event_t`.
pub const PLY_EVENT_ALIGN: usize = 4;
/// Size of a `ply_barrier_t`: three 32-bit words.
pub const PLY_BARRIER_SIZE: usize = 12;
/// Alignment of a `ply_barrier_t`.
pub const PLY_BARRIER_ALIGN: usize = 4;
/// Size of a `ply_once_t`: one byte.
pub const PLY_ONCE_SIZE: usize = 1;
/// Alignment of a `ply_once_t`.
pub const PLY_ONCE_ALIGN: usize = 1;
/// Size of a `ply_schedule_t`: a tag and three words.
pub const PLY_SCHEDULE_SIZE: usize = 4 * PLY_WORD;
/// Alignment of a `ply_schedule_t`.
pub const PLY_SCHEDULE_ALIGN: usize = PLY_WORD;
/// Size of a `ply_dispenser_t`: two padded counters and the slot descriptor
/// (the workers' slots are in the caller's buffer).
pub const PLY_DISPENSER_SIZE: usize = 3 * PLY_CACHE_LINE;
/// Alignment of a `ply_dispenser_t`.
pub const PLY_DISPENSER_ALIGN: usize = PLY_CACHE_LINE;

/// Holds `$t` to `($size, $align)` at compile time.
macro_rules! holds {
    ($($t:ty => $size:expr, $align:expr;)*) => {
        $(
            const _: () = assert!(
                size_of::<$t>() == $size && align_of::<$t>() == $align,
                concat!("the C layout constants of ", stringify!($t), " are wrong for this target")
            );
        )*
    };
}

holds! {
    ply_spsc_t => PLY_SPSC_SIZE, PLY_SPSC_ALIGN;
    ply_spsc_producer_t => PLY_SPSC_HANDLE_SIZE, PLY_SPSC_HANDLE_ALIGN;
    ply_spsc_consumer_t => PLY_SPSC_HANDLE_SIZE, PLY_SPSC_HANDLE_ALIGN;
    ply_array_queue_t => PLY_ARRAY_QUEUE_SIZE, PLY_ARRAY_QUEUE_ALIGN;
    ply_scq_t => PLY_SCQ_SIZE, PLY_SCQ_ALIGN;
    ply_spin_t => PLY_SPIN_SIZE, PLY_SPIN_ALIGN;
    ply_ticket_t => PLY_TICKET_SIZE, PLY_TICKET_ALIGN;
    ply_rwlock_t => PLY_RWLOCK_SIZE, PLY_RWLOCK_ALIGN;
    ply_semaphore_t => PLY_SEMAPHORE_SIZE, PLY_SEMAPHORE_ALIGN;
    ply_event_t => PLY_EVENT_SIZE, PLY_EVENT_ALIGN;
    ply_barrier_t => PLY_BARRIER_SIZE, PLY_BARRIER_ALIGN;
    ply_once_t => PLY_ONCE_SIZE, PLY_ONCE_ALIGN;
    ply_schedule_t => PLY_SCHEDULE_SIZE, PLY_SCHEDULE_ALIGN;
    ply_dispenser_t => PLY_DISPENSER_SIZE, PLY_DISPENSER_ALIGN;
}

/// The opaque types, for `ply_layout_size` and `ply_layout_align`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ply_type {
    /// `ply_spsc_t`
    PLY_TYPE_SPSC,
    /// `ply_spsc_producer_t` and `ply_spsc_consumer_t`
    PLY_TYPE_SPSC_HANDLE,
    /// `ply_scq_t`
    PLY_TYPE_SCQ,
    /// `ply_spin_t`
    PLY_TYPE_SPIN,
    /// `ply_ticket_t`
    PLY_TYPE_TICKET,
    /// `ply_rwlock_t`
    PLY_TYPE_RWLOCK,
    /// `ply_semaphore_t`
    PLY_TYPE_SEMAPHORE,
    /// `ply_event_t`
    PLY_TYPE_EVENT,
    /// `ply_barrier_t`
    PLY_TYPE_BARRIER,
    /// `ply_once_t`
    PLY_TYPE_ONCE,
    /// `ply_schedule_t`
    PLY_TYPE_SCHEDULE,
    /// `ply_dispenser_t`
    PLY_TYPE_DISPENSER,
    /// `ply_array_queue_t`
    PLY_TYPE_ARRAY_QUEUE,
}

/// `(size, align)` of the Rust type behind `ty` (a `ply_type` value), or
/// `(0, 0)` for any other number.
fn layout_of(ty: i32) -> (usize, usize) {
    type Layout = fn() -> (usize, usize);
    fn of<T>() -> (usize, usize) {
        (size_of::<T>(), align_of::<T>())
    }
    const TYPES: [(ply_type, Layout); 13] = [
        (ply_type::PLY_TYPE_SPSC, of::<ply_spsc_t>),
        (ply_type::PLY_TYPE_SPSC_HANDLE, of::<ply_spsc_producer_t>),
        (ply_type::PLY_TYPE_SCQ, of::<ply_scq_t>),
        (ply_type::PLY_TYPE_SPIN, of::<ply_spin_t>),
        (ply_type::PLY_TYPE_TICKET, of::<ply_ticket_t>),
        (ply_type::PLY_TYPE_RWLOCK, of::<ply_rwlock_t>),
        (ply_type::PLY_TYPE_SEMAPHORE, of::<ply_semaphore_t>),
        (ply_type::PLY_TYPE_EVENT, of::<ply_event_t>),
        (ply_type::PLY_TYPE_BARRIER, of::<ply_barrier_t>),
        (ply_type::PLY_TYPE_ONCE, of::<ply_once_t>),
        (ply_type::PLY_TYPE_SCHEDULE, of::<ply_schedule_t>),
        (ply_type::PLY_TYPE_DISPENSER, of::<ply_dispenser_t>),
        (ply_type::PLY_TYPE_ARRAY_QUEUE, of::<ply_array_queue_t>),
    ];
    TYPES
        .iter()
        .find(|(t, _)| *t as i32 == ty)
        .map_or((0, 0), |(_, layout)| layout())
}

/// The size in bytes of the opaque type `ty` (a `ply_type` value) as this
/// library was built: a C program can check at start-up that it was compiled
/// with a matching `ply.h` (`sizeof(ply_spsc_t) ==
/// ply_layout_size(PLY_TYPE_SPSC)`).
///
/// Thread safety: a pure function.
///
/// Returns the size, or 0 for an unknown `ty`.
#[unsafe(no_mangle)]
pub extern "C" fn ply_layout_size(ty: i32) -> usize {
    layout_of(ty).0
}

/// The alignment in bytes of the opaque type `ty` (a `ply_type` value) as this
/// library was built (see `ply_layout_size`).
///
/// Thread safety: a pure function.
///
/// Returns the alignment, or 0 for an unknown `ty`.
#[unsafe(no_mangle)]
pub extern "C" fn ply_layout_align(ty: i32) -> usize {
    layout_of(ty).1
}
