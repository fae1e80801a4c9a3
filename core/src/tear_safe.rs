//! [`TearSafe`]: the types a holder's death cannot leave invalid.
//!
//! A process killed while it writes a value leaves that value *torn*: each of
//! its bytes is the old byte or the new one (a byte store is never split), but
//! the value as a whole may be neither. A robust lock
//! ([`RobustMutex`](crate::sync::RobustMutex)) hands the data to the next
//! holder after such a death, so that data must stay a valid value however it
//! was torn. For an integer it does: any bits are an integer. For an enum with
//! fields it may not: rustc writes the tag and the fields with separate
//! stores, so a death between them pairs a new tag with old fields that do
//! not fit it (a `char` where a `u32` was, a reference where there was
//! nothing), and reading that is undefined behaviour. This trait marks the
//! types for which it cannot happen; the robust lock lets the caller see the
//! data after a death only for those, and otherwise only overwrite it.

mod impls;

/// A type for which any byte-wise mix of valid values is a valid value.
///
/// Take valid values `a`, `b`, `c`, … of `T` and build a new one whose every
/// byte is the byte at the same offset of one of them (padding bytes may be
/// anything): for a `TearSafe` type, that is a valid `T`, and its safe API
/// may be used on it without undefined behaviour. That is what a process
/// killed in the middle of writing leaves behind (its stores reached memory in
/// some order, and a single byte is never half-written), so such a value may
/// be handed to the next holder of a robust lock after its holder's death,
/// possibly meaningless but never invalid.
///
/// Implemented for:
///
/// - the integers and floats, `MaybeUninit<T>` and the atomic integers: every
///   bit pattern is valid;
/// - `bool` and `AtomicBool`: one byte, so a mix of two of them is one of
///   them;
/// - `()`, `PhantomData`, `PhantomPinned`: no bytes;
/// - arrays `[T; N]`, tuples, `Cell<T>`, `UnsafeCell<T>`, `Wrapping<T>` and
///   `Saturating<T>` of `TearSafe` types: a mix of them is a mix of each
///   element or field;
/// - your structs whose fields are all `TearSafe`, through the
///   `#[tear_safe]` marker of [`shm_safe!`](crate::shm_safe).
///
/// Not for `char` (a mix of `'\u{FFFF}'` and `'\u{10000}'` can be
/// `0x1FFFF`, no `char`), the `NonZero` integers (a mix of `0x0100` and
/// `0x0001` can be `0`), `Option` or any enum with fields (a tag with the
/// wrong fields), `Duration` (nanoseconds past a billion), references and
/// pointers.
///
/// The promise assumes that compiled code writes a value's bytes only with
/// bytes of the value it stores (no scratch bytes in between), as rustc and
/// LLVM do.
///
/// # Example
///
/// ```
/// use ply_core::TearSafe;
///
/// fn check<T: TearSafe>() {}
/// check::<u64>();
/// check::<[(bool, f32); 4]>();
/// check::<core::sync::atomic::AtomicU32>();
///
/// ply_core::shm_safe! {
///     #[tear_safe]
///     #[derive(Clone, Copy)]
///     pub struct Account {
///         pub balance: [i64; 2],
///         pub open: bool,
///     }
/// }
/// check::<Account>();
/// ```
///
/// and what it rejects:
///
/// ```compile_fail,E0277
/// fn check<T: ply_core::TearSafe>() {}
/// check::<Option<u32>>(); // the tag and the value are written separately
/// ```
///
/// # Safety
///
/// Implementing `TearSafe` for `T` promises that every value built byte-wise
/// from valid values of `T`, as described above, is a valid `T` and meets
/// every invariant that `T`'s own `unsafe` code relies on. A struct whose
/// fields are all `TearSafe` keeps the first half by construction; it keeps
/// the second unless its `unsafe` code relies on a relation between fields (a
/// length field that says how much of a `MaybeUninit` buffer is written, for
/// instance): such a type is not `TearSafe`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` may be invalid once torn by a writer's death",
    label = "not `TearSafe`",
    note = "after a holder's death only `TearSafe` data can be read: integers, floats, `bool`, atomics, and arrays, tuples and structs of them (not `char`, `NonZero*`, `Option` or enums)",
    note = "overwrite the whole value instead (`RecoveryGuard::reset`), or define a struct of `TearSafe` fields with `#[tear_safe]` inside `ply_core::shm_safe! {{ .. }}`"
)]
pub unsafe trait TearSafe {}
