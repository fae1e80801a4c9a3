//! Every [`TearSafe`] impl of ply-core, in one place to audit.
//!
//! Each impl states why a byte-wise mix of valid values of its type is valid.

use core::cell::{Cell, UnsafeCell};
use core::marker::{PhantomData, PhantomPinned};
use core::mem::MaybeUninit;
use core::num::{Saturating, Wrapping};

use super::TearSafe;

/// `unsafe impl TearSafe` for types of which every bit pattern is a value.
macro_rules! any_bits {
    ($($(#[$cfg:meta])* $ty:ty),* $(,)?) => {
        $(
            $(#[$cfg])*
            // SAFETY: every bit pattern of this type's size is a valid value,
            // so a mix of values is one too; there is no invariant beyond it.
            unsafe impl TearSafe for $ty {}
        )*
    };
}

any_bits!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64
);

// The atomic integers are their integer in an `UnsafeCell`.
any_bits!(
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

// SAFETY: one byte, never split by a store: a mix of two `bool`s is one of
// them.
unsafe impl TearSafe for bool {}

#[cfg(target_has_atomic = "8")]
// SAFETY: a `bool` in an `UnsafeCell`; as for `bool`.
unsafe impl TearSafe for core::sync::atomic::AtomicBool {}

// SAFETY: no bytes: the only value.
unsafe impl TearSafe for () {}

// SAFETY: no bytes: the only value.
unsafe impl TearSafe for PhantomPinned {}

// SAFETY: no bytes: the only value.
unsafe impl<T: ?Sized> TearSafe for PhantomData<T> {}

// SAFETY: `MaybeUninit<T>` may hold any bytes at all, and none of its safe
// API reads them as a `T`.
unsafe impl<T> TearSafe for MaybeUninit<T> {}

// SAFETY: the elements side by side, no bytes between them: a mix of arrays
// is an array of mixes of elements, each valid as `T` is `TearSafe`.
unsafe impl<T: TearSafe, const N: usize> TearSafe for [T; N] {}

// SAFETY: a `T` with `T`'s layout; a mix of them is a mix of `T`s.
unsafe impl<T: TearSafe> TearSafe for UnsafeCell<T> {}

// SAFETY: as for `UnsafeCell`.
unsafe impl<T: TearSafe> TearSafe for Cell<T> {}

// SAFETY: as for `UnsafeCell`.
unsafe impl<T: TearSafe> TearSafe for Wrapping<T> {}

// SAFETY: as for `UnsafeCell`.
unsafe impl<T: TearSafe> TearSafe for Saturating<T> {}

/// `unsafe impl TearSafe` for tuples of `TearSafe` types.
macro_rules! tuples {
    ($(($($name:ident),+))*) => {
        $(
            // SAFETY: a tuple is its fields and padding: a mix of tuples is a
            // mix of each field (valid, as each is `TearSafe`) and padding.
            unsafe impl<$($name: TearSafe),+> TearSafe for ($($name,)+) {}
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
