//! [`ShmSafe`]: the types that may live in memory shared between processes.
//!
//! ply-core's types hold no pointers, so one object works between the threads
//! of a process and between processes that share a `mmap(MAP_SHARED)` region.
//! Whether *a given type* may be placed there is a property of the type, and
//! this trait lets the compiler check it: every API of ply that puts a `T` into
//! memory shared between processes requires `T: ShmSafe`.
//!
//! `Copy` is not that property: `&'static str` is `Copy`, and the string it
//! points to may exist only in the process that made it.
//!
//! The trait's documentation says what it promises, how to implement it for
//! your own types, who drops a value in shared memory, and why it is ply's own
//! trait rather than one of `bytemuck`'s or `zerocopy`'s.

mod impls;

/// A type whose values stay valid in memory shared with other processes.
///
/// A value of such a type may be placed in a `MAP_SHARED` mapping and used,
/// through its safe API, from every process that maps it, as if those processes
/// were threads of one. It holds no pointer or reference, owns no heap memory
/// or other resource, and its synchronization relies on nothing that is only
/// unique within one process.
///
/// Implemented for the primitives, the atomics (not `AtomicPtr`), arrays,
/// tuples, `Option`, cells and `MaybeUninit` of such types, crossbeam's
/// `CachePadded`, and ply-core's queues, locks, signals and chunk dispenser
/// whenever what they hold is `ShmSafe`. Not implemented for
/// [`Lazy`](crate::sync::Lazy): it holds its initializer, a function pointer
/// or a closure, which points into one process's address space (force it
/// before forking, or use [`Once`](crate::sync::Once) and give the initializer
/// at the call).
///
/// `ShmSafe` says a value may be *moved* to another process (so it implies
/// `Send`). APIs that let several processes use one value at once through
/// `&T` also require `T: Sync`, exactly as sharing between threads does: a
/// `Cell<u32>` is `ShmSafe`, but two processes must not share one.
///
/// # Implementing it for your types
///
/// For a struct or enum whose fields are all `ShmSafe`, wrap its definition in
/// [`shm_safe!`](crate::shm_safe): the macro implements the trait and checks
/// every field's type at compile time, with no `unsafe` on your side.
///
/// ```
/// use core::sync::atomic::AtomicU64;
/// use ply_core::{ShmSafe, sync::SpinMutex};
///
/// ply_core::shm_safe! {
///     /// Statistics the workers of a forked map update together.
///     #[repr(C)]
///     pub struct Stats {
///         pub items: AtomicU64,
///         pub slowest: SpinMutex<(u32, f64)>,
///     }
/// }
///
/// fn place<T: ShmSafe + Sync>(_: &T) {}
/// place(&Stats { items: AtomicU64::new(0), slowest: SpinMutex::new((0, 0.0)) });
/// ```
///
/// A field that is not `ShmSafe` is a compile error naming it:
///
/// ```compile_fail,E0277
/// ply_core::shm_safe! {
///     pub struct Job {
///         pub id: u32,
///         pub name: &'static str, // error: `&'static str` cannot be placed in memory shared between processes
///     }
/// }
/// ```
///
/// Generic types, and types whose fields are not all `ShmSafe` but which are
/// safe anyway (for instance one that holds an index it converts to nothing
/// else), need a manual `unsafe impl`, which must keep the contract of the
/// trait's `# Safety` section:
///
/// ```
/// use core::sync::atomic::AtomicU32;
/// use ply_core::ShmSafe;
///
/// #[repr(C)]
/// pub struct Slots<T, const N: usize> {
///     used: AtomicU32,
///     items: [T; N],
/// }
///
/// // SAFETY: an atomic and `N` values of `T`, which is `ShmSafe` itself: no
/// // pointer, nothing owned outside these bytes, no process-local identity.
/// unsafe impl<T: ShmSafe, const N: usize> ShmSafe for Slots<T, N> {}
/// ```
///
/// `#[repr(C)]` is not needed between forked processes, which run the same
/// binary and so agree on every layout; it is needed when another program (C
/// code through ply-core's C API, say) maps the same memory.
///
/// # Who drops a value in shared memory
///
/// Nobody. ply's shared-memory containers (`ply_os::shm::SharedBox` and
/// `SharedSlice`, and everything built on them) never run the destructor of
/// what they hold; the bytes go when the last process unmaps them. Running
/// it in one process would race with the others still using the value (a
/// queue's destructor reads its slots without atomics), and running it in each
/// process would drop the same items several times. A `ShmSafe` type owns
/// nothing outside its own bytes, so skipping its destructor leaks nothing;
/// forgetting a value is safe for every Rust type.
///
/// # Why not `bytemuck` or `zerocopy`
///
/// Their traits answer a different question, "which bit patterns are valid?",
/// and none of them answers this one:
///
/// | trait | a pointer? | `bool`, enums? | atomics? | ply's locks? | padding? | manual impls |
/// |---|---|---|---|---|---|---|
/// | bytemuck `Pod`, `AnyBitPattern` | no | no: not every byte is a valid `bool` | no: `Copy` required | no | `Pod`: no | supported |
/// | bytemuck `NoUninit` | no | yes | no: `Copy` required | no | no | supported |
/// | bytemuck `Zeroable` | **yes**: `*mut T`, `Option<&T>`, `Option<Box<T>>` | yes | yes | no | yes | supported |
/// | zerocopy `FromBytes` | no | no | yes (not `AtomicBool`) | no | yes | derive only (a hidden required method) |
/// | zerocopy `IntoBytes` | no | yes | yes | no | no: `(u8, u32)` is refused | derive only |
/// | zerocopy `Immutable` | **yes**: `&T`, `*const T` | yes | no: interior mutability | no | yes | derive only |
///
/// None excludes pointers while admitting `bool`, atomics and padded structs,
/// and none can be given to ply's locks in any case: `SpinMutex<T>` is
/// `lock_api::Mutex<RawSpinMutex, T>`, a foreign type, and the orphan rule
/// forbids implementing a foreign trait for it. A trait of ply's own can be.
///
/// # Safety
///
/// Implementing `ShmSafe` for `T` promises that, for values of `T` in memory
/// shared between processes, no use through `T`'s safe API from any of those
/// processes causes undefined behaviour. In particular:
///
/// 1. **No address-space-local values.** `T` holds no pointer or reference of
///    any kind (`&U`, `&mut U`, `*const U`, `NonNull<U>`, `Box<U>`, function
///    pointers, trait objects), directly or in any field, and no integer that
///    its code turns back into a pointer. A pointer is meaningless in another
///    address space; even in a forked child, which has the same layout, it
///    points to the child's private copy, not to what the parent sees.
/// 2. **Nothing owned outside its bytes.** `T` owns no heap memory and no
///    resource a destructor must release (a file descriptor it closes, a slot
///    in a process-local table). Its destructor may never run (see "Who drops
///    a value" above), and one process may go on using the value after another
///    is done with it.
/// 3. **No process-local identity.** `T`'s synchronization relies on nothing
///    that is unique only within one process: no thread ids, no addresses of
///    thread-locals. (`lock_api::ReentrantMutex` fails this: two processes
///    can have threads with the same id, and both would "own" the lock.)
///    Process ids, which the kernel keeps unique, are fine.
/// 4. **Every field is `ShmSafe` or meets 1–3 in the same way**, and `T` is
///    `Send`.
///
/// [`shm_safe!`](crate::shm_safe) checks 4 for a struct or enum whose fields
/// are all `ShmSafe`; 1–3 then hold by construction unless the type's own
/// `unsafe` code (an `unsafe impl Sync` reasoning from thread ids, a pointer
/// cast) relies on being in one process.
///
/// # Example
///
/// ```
/// use core::sync::atomic::AtomicU32;
/// use ply_core::{ShmSafe, queue::mpmc::ScqQueue, sync::SpinMutex};
///
/// fn check<T: ShmSafe>() {}
/// check::<u64>();
/// check::<[AtomicU32; 4]>();
/// check::<(bool, char, Option<f64>)>();
/// check::<SpinMutex<[u8; 16]>>();
/// check::<ScqQueue<(u32, u32), 64>>();
/// ```
///
/// and what it rejects:
///
/// ```compile_fail,E0277
/// fn check<T: ply_core::ShmSafe>() {}
/// check::<&'static str>(); // points into one process's memory
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be placed in memory shared between processes",
    label = "not `ShmSafe`",
    note = "memory shared between processes may hold only `ShmSafe` types: no pointers or references, no heap memory, no process-local identity",
    note = "for a struct of `ShmSafe` fields, define it inside `ply_core::shm_safe! {{ .. }}`; see the `ShmSafe` docs"
)]
pub unsafe trait ShmSafe: Send {}

/// Defines a struct or enum and implements [`ShmSafe`] for it, checking at
/// compile time that every field's type is `ShmSafe` — no `unsafe` needed.
///
/// Wrap the definition as you would write it, attributes and doc comments
/// included. Structs with named fields, tuple structs, unit structs and enums
/// (with any kind of variants) are accepted; generic types are not (write the
/// `unsafe impl` by hand, see [`ShmSafe`]). The check cannot see `unsafe` code
/// of the type's own: a type whose `unsafe impl Sync` reasons from thread ids,
/// for example, must not be declared `ShmSafe` this way.
///
/// With `#[tear_safe]` as its first attribute, a struct is also declared
/// [`TearSafe`](crate::TearSafe) (a writer's death cannot leave it invalid, so
/// a robust lock lets it be read after one), checking that every field's type
/// is `TearSafe`. An enum never is, and is refused. Do not use it for a struct
/// whose own `unsafe` code relies on a relation between its fields.
///
/// # Example
///
/// ```
/// use core::sync::atomic::{AtomicBool, AtomicU32};
/// use ply_core::{ShmSafe, sync::Event};
///
/// ply_core::shm_safe! {
///     /// Where a worker is, in a page the supervisor reads.
///     #[derive(Debug)]
///     #[repr(C)]
///     pub struct Progress {
///         pub done: AtomicU32,
///         pub failed: AtomicBool,
///         finished: Event,
///     }
/// }
///
/// ply_core::shm_safe! {
///     #[derive(Clone, Copy, Debug, PartialEq)]
///     pub struct Point(pub f32, pub f32);
/// }
///
/// ply_core::shm_safe! {
///     #[derive(Clone, Copy, Debug, PartialEq)]
///     #[repr(u8)]
///     pub enum Reply {
///         Idle,
///         Done { item: u32, value: f64 },
///         Failed(i32),
///     }
/// }
///
/// ply_core::shm_safe! {
///     #[tear_safe]
///     #[derive(Clone, Copy, Debug, PartialEq)]
///     pub struct Totals { pub count: u64, pub sum: f64, pub open: bool }
/// }
///
/// fn check<T: ShmSafe>() {}
/// check::<Progress>();
/// check::<[Point; 3]>();
/// check::<Reply>();
/// fn check_tear<T: ShmSafe + ply_core::TearSafe>() {}
/// check_tear::<Totals>();
/// ```
///
/// A field that is not `TearSafe` is refused:
///
/// ```compile_fail,E0277
/// ply_core::shm_safe! {
///     #[tear_safe]
///     pub struct Last { pub key: char } // error: `char` may be invalid once torn
/// }
/// ```
#[macro_export]
macro_rules! shm_safe {
    (
        #[tear_safe]
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $crate::shm_safe! {
            $(#[$meta])*
            $vis struct $name {
                $( $(#[$fmeta])* $fvis $field : $fty ),*
            }
        }
        $crate::__tear_safe_impl!($name; $($fty),*);
    };
    (
        #[tear_safe]
        $(#[$meta:meta])*
        $vis:vis struct $name:ident ( $( $(#[$fmeta:meta])* $fvis:vis $fty:ty ),* $(,)? );
    ) => {
        $crate::shm_safe! {
            $(#[$meta])*
            $vis struct $name ( $( $(#[$fmeta])* $fvis $fty ),* );
        }
        $crate::__tear_safe_impl!($name; $($fty),*);
    };
    (
        #[tear_safe]
        $(#[$meta:meta])*
        $vis:vis struct $name:ident;
    ) => {
        $crate::shm_safe! {
            $(#[$meta])*
            $vis struct $name;
        }
        $crate::__tear_safe_impl!($name;);
    };
    (
        #[tear_safe]
        $(#[$meta:meta])*
        $vis:vis enum $($rest:tt)*
    ) => {
        ::core::compile_error!(
            "an enum is never `TearSafe`: a writer that dies between storing the tag and the fields leaves a tag with the wrong fields; store its tag and fields as integers in a struct instead"
        );
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $fty ),*
        }
        $crate::__shm_safe_impl!($name; $($fty),*);
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident ( $( $(#[$fmeta:meta])* $fvis:vis $fty:ty ),* $(,)? );
    ) => {
        $(#[$meta])*
        $vis struct $name ( $( $(#[$fmeta])* $fvis $fty ),* );
        $crate::__shm_safe_impl!($name; $($fty),*);
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident;
    ) => {
        $(#[$meta])*
        $vis struct $name;
        $crate::__shm_safe_impl!($name;);
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident
                $( ( $( $(#[$tmeta:meta])* $tty:ty ),* $(,)? ) )?
                $( { $( $(#[$nmeta:meta])* $nfield:ident : $nty:ty ),* $(,)? } )?
                $( = $disc:expr )?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant
                $( ( $( $(#[$tmeta])* $tty ),* ) )?
                $( { $( $(#[$nmeta])* $nfield : $nty ),* } )?
                $( = $disc )?
            ),*
        }
        $crate::__shm_safe_impl!($name; $( $( $($tty,)* )? $( $($nty,)* )? )*);
    };
}

/// The `TearSafe` impl and field checks behind `#[tear_safe]` in
/// [`shm_safe!`]; not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __tear_safe_impl {
    ($name:ident; $($fty:ty),* $(,)?) => {
        // Every field type must be `TearSafe`: a field that is not fails to
        // compile here, naming its type.
        const _: () = {
            #[allow(dead_code)]
            const fn field_is_tear_safe<T: $crate::TearSafe>() {}
            $( field_is_tear_safe::<$fty>(); )*
        };
        // SAFETY: a struct is its fields and padding, and every field's type
        // is `TearSafe` (checked just above): a byte-wise mix of values of the
        // struct is a mix of each field, each valid. The macro's docs exclude
        // structs whose own `unsafe` code relies on a relation between fields.
        unsafe impl $crate::TearSafe for $name {}
    };
}

/// The impl and the field checks behind [`shm_safe!`]; not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __shm_safe_impl {
    ($name:ident; $($fty:ty),* $(,)?) => {
        // Every field type must be `ShmSafe`: a field that is not fails to
        // compile here, naming its type.
        const _: () = {
            #[allow(dead_code)]
            const fn field_is_shm_safe<T: ?Sized + $crate::ShmSafe>() {}
            $( field_is_shm_safe::<$fty>(); )*
        };
        // SAFETY: every field's type is `ShmSafe` (checked just above), so the
        // type holds no pointer, owns nothing outside its bytes and has no
        // process-local identity, which is the whole contract.
        unsafe impl $crate::ShmSafe for $name {}
    };
}
