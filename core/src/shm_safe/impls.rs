//! Every [`ShmSafe`] impl of ply-core, in one place to audit.
//!
//! Each impl states why its type meets the trait's contract: no pointer, nothing
//! owned outside its own bytes, no process-local identity. The impls for
//! ply-core's own types list the fields they rely on; a field added to one of
//! those types must keep to the same rules, or the impl here must go.

use core::cell::{Cell, UnsafeCell};
use core::marker::{PhantomData, PhantomPinned};
use core::mem::{ManuallyDrop, MaybeUninit};
use core::num::{
    NonZeroI8, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI128, NonZeroIsize, NonZeroU8,
    NonZeroU16, NonZeroU32, NonZeroU64, NonZeroU128, NonZeroUsize, Saturating, Wrapping,
};
use core::time::Duration;

use crossbeam_utils::CachePadded;

use super::ShmSafe;

/// `unsafe impl ShmSafe` for types that hold only their own value bits.
macro_rules! plain {
    ($($(#[$cfg:meta])* $ty:ty),* $(,)?) => {
        $(
            $(#[$cfg])*
            // SAFETY: a value of this type is its bits and nothing else: no
            // pointer, nothing owned, no identity.
            unsafe impl ShmSafe for $ty {}
        )*
    };
}

plain!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    NonZeroU8,
    NonZeroU16,
    NonZeroU32,
    NonZeroU64,
    NonZeroU128,
    NonZeroUsize,
    NonZeroI8,
    NonZeroI16,
    NonZeroI32,
    NonZeroI64,
    NonZeroI128,
    NonZeroIsize,
    Duration,
    PhantomPinned,
);

// The atomics are their integer in an `UnsafeCell`, and their operations are
// single instructions on the shared bytes, which is exactly what makes them
// work between processes. `AtomicPtr` is left out: it holds a pointer.
plain!(
    #[cfg(target_has_atomic = "8")]
    core::sync::atomic::AtomicBool,
    #[cfg(target_has_atomic = "8")]
    core::sync::atomic::AtomicU8,
    #[cfg(target_has_atomic = "8")]
    core::sync::atomic::AtomicI8,
    #[cfg(target_has_atomic = "16")]
    core::sync::atomic::AtomicU16,
    #[cfg(target_has_atomic = "16")]
    core::sync::atomic::AtomicI16,
    #[cfg(target_has_atomic = "32")]
    core::sync::atomic::AtomicU32,
    #[cfg(target_has_atomic = "32")]
    core::sync::atomic::AtomicI32,
    #[cfg(target_has_atomic = "64")]
    core::sync::atomic::AtomicU64,
    #[cfg(target_has_atomic = "64")]
    core::sync::atomic::AtomicI64,
    #[cfg(target_has_atomic = "ptr")]
    core::sync::atomic::AtomicUsize,
    #[cfg(target_has_atomic = "ptr")]
    core::sync::atomic::AtomicIsize,
);

/// `unsafe impl<T: ShmSafe> ShmSafe` for wrappers that hold a `T` and nothing
/// else.
macro_rules! wrapper {
    ($($wrapper:ident),* $(,)?) => {
        $(
            // SAFETY: the wrapper holds one `T` (maybe uninitialized, maybe in
            // a cell) and adds no pointer, ownership or identity; `T` is
            // `ShmSafe`.
            unsafe impl<T: ShmSafe> ShmSafe for $wrapper<T> {}
        )*
    };
}

wrapper!(
    Option,
    Wrapping,
    Saturating,
    MaybeUninit,
    ManuallyDrop,
    UnsafeCell,
    Cell,
    CachePadded,
);

// SAFETY: `N` values of a `ShmSafe` type, side by side.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}

// SAFETY: holds nothing; it stands for a `T` that is itself `ShmSafe`.
unsafe impl<T: ?Sized + ShmSafe> ShmSafe for PhantomData<T> {}

/// `unsafe impl ShmSafe` for tuples of `ShmSafe` types.
macro_rules! tuples {
    ($(($($name:ident),+))*) => {
        $(
            // SAFETY: a tuple is its fields side by side; each is `ShmSafe`.
            unsafe impl<$($name: ShmSafe),+> ShmSafe for ($($name,)+) {}
        )*
    };
}

tuples! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
    (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H)
    (A, B, C, D, E, F, G, H, I)
    (A, B, C, D, E, F, G, H, I, J)
    (A, B, C, D, E, F, G, H, I, J, K)
    (A, B, C, D, E, F, G, H, I, J, K, L)
}

// SAFETY: `lock_api::Mutex` is the raw lock beside the data in an
// `UnsafeCell`; both are `ShmSafe`, and the guard (which holds a pointer) is
// made in each process, never stored in the mutex.
unsafe impl<R: lock_api::RawMutex + ShmSafe, T: ShmSafe> ShmSafe for lock_api::Mutex<R, T> {}

// SAFETY: as for `Mutex`: the raw lock and the data, nothing else.
unsafe impl<R: lock_api::RawRwLock + ShmSafe, T: ShmSafe> ShmSafe for lock_api::RwLock<R, T> {}

// SAFETY: `spin::Once` is an atomic status byte and the value in an
// `UnsafeCell<MaybeUninit<T>>`; `R` is a zero-sized relax strategy in a
// `PhantomData`. Whichever process runs the initializer writes the value into
// the shared bytes, and the status publishes it to the others.
unsafe impl<T: ShmSafe, R: spin::RelaxStrategy + Send> ShmSafe for spin::once::Once<T, R> {}

// ply-core's own types. Under loom their atomics are loom's (which point into
// the model checker's state), so the impls exist only in real builds.
#[cfg(not(loom))]
mod own {
    use super::ShmSafe;
    use crate::partition::{ChunkDispenser, Chunking, Even, Fixed, Guided, Plan};
    use crate::queue::{mpmc, spmc, spsc};
    use crate::sync::{
        Barrier, Event, EventCount, Liveness, Park, RawRobustMutex, RawRwLock, RawSpinMutex,
        RawTicketMutex, RobustMutex, Semaphore, SpinPark,
    };

    // SAFETY: `locked: AtomicBool`.
    unsafe impl ShmSafe for RawSpinMutex {}
    // SAFETY: `next`, `serving`: `CachePadded<AtomicUsize>` tickets; the
    // holder is whoever claimed the turn being served, which names no process.
    unsafe impl ShmSafe for RawTicketMutex {}
    // SAFETY: `state`: one `CachePadded<AtomicUsize>` (writer bit, lease,
    // reader count).
    unsafe impl ShmSafe for RawRwLock {}
    // SAFETY: `word`, `state`: `AtomicU32`; the holder's token comes from `L`,
    // whose tokens must name owners across the processes sharing the lock
    // (ply-os's are thread ids of the PID namespace); `L` and `P` are
    // `ShmSafe` themselves.
    unsafe impl<L: Liveness + ShmSafe, P: Park + ShmSafe> ShmSafe for RawRobustMutex<L, P> {}
    // SAFETY: the raw lock above and the data in an `UnsafeCell`; the guard,
    // which holds a reference, is made in each process.
    unsafe impl<T: ShmSafe, L: Liveness + ShmSafe, P: Park + ShmSafe> ShmSafe for RobustMutex<T, L, P> {}
    // SAFETY: zero-sized; it spins on the word it is given.
    unsafe impl ShmSafe for SpinPark {}

    // SAFETY: `permits`: `AtomicU32`; `released`: an `EventCount<P>`.
    unsafe impl<P: Park + ShmSafe> ShmSafe for Semaphore<P> {}
    // SAFETY: `epoch`, `waiters`: `AtomicU32`; `park: P`, `ShmSafe`.
    unsafe impl<P: Park + ShmSafe> ShmSafe for EventCount<P> {}
    // SAFETY: `flag`, `waiters`: `AtomicU32`; `park: P`, `ShmSafe`.
    unsafe impl<P: Park + ShmSafe> ShmSafe for Event<P> {}
    // SAFETY: `parties: u32`, `arrived`, `generation`: `AtomicU32`; `park: P`.
    unsafe impl<P: Park + ShmSafe> ShmSafe for Barrier<P> {}

    // SAFETY: `head`, `tail`: `CachePadded<AtomicUsize>`; `slots`:
    // `[UnsafeCell<MaybeUninit<T>>; N]`. The `Producer`/`Consumer` handles,
    // which hold a reference, are made in each process, not stored here.
    unsafe impl<T: ShmSafe, const N: usize> ShmSafe for spsc::Ring<T, N> {}
    // SAFETY: as `spsc::Ring`, plus `producing: AtomicBool`, the flag that
    // makes the producer unique (across processes too: it is in the shared
    // bytes).
    unsafe impl<T: ShmSafe, const N: usize> ShmSafe for spmc::Ring<T, N> {}
    // SAFETY: `head`, `tail`: `CachePadded<AtomicUsize>`; `slots`: per slot an
    // `AtomicUsize` stamp and an `UnsafeCell<MaybeUninit<T>>`.
    unsafe impl<T: ShmSafe, const N: usize> ShmSafe for mpmc::ArrayQueue<T, N> {}
    // SAFETY: two index rings (`CachePadded<AtomicUsize>`/`AtomicIsize`
    // counters and `[[AtomicUsize; 2]; N]` entries) and
    // `[UnsafeCell<MaybeUninit<T>>; N]`.
    unsafe impl<T: ShmSafe, const N: usize> ShmSafe for mpmc::ScqQueue<T, N> {}

    // SAFETY: `next`, `pending`: `CachePadded<AtomicUsize>`; `held`,
    // `returned`: arrays of `AtomicUsize` chunk indices. Worker ids are the
    // caller's numbering, not thread or process identities.
    unsafe impl<const W: usize> ShmSafe for ChunkDispenser<W> {}
    // SAFETY: plain integers (lengths, sizes, counts).
    unsafe impl ShmSafe for Even {}
    // SAFETY: plain integers.
    unsafe impl ShmSafe for Fixed {}
    // SAFETY: plain integers.
    unsafe impl ShmSafe for Guided {}
    // SAFETY: a fieldless choice or one integer per variant.
    unsafe impl ShmSafe for Chunking {}
    // SAFETY: one of the three schedules above, and a count.
    unsafe impl ShmSafe for Plan {}
}
