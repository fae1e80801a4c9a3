//! Where a queue keeps its items: inline, with a capacity fixed at compile time,
//! or in a buffer the caller provides, with a capacity chosen at run time.
//!
//! Each queue's algorithm is written once, generic over a storage trait, and
//! instantiated twice:
//!
//! | storage | capacity | for |
//! |---|---|---|
//! | [`Inline<T, N>`] | `N`, a const generic | `static`s and the const-generic queues (`spsc::Ring<T, N>`, `ScqQueue<T, N>`); the compiler sees `N` and folds the index arithmetic |
//! | [`Borrowed<'a, T>`] | the length of a `&'a mut [MaybeUninit<T>]` | buffers sized at run time: a slice of a `static` array, a stack array, a `Vec` |
//!
//! A third kind of storage lives outside this crate: ply's C ABI (`core/capi`)
//! implements [`Slots`] for slots of a run-time *byte* size in a buffer owned by C
//! code, so C gets the very same algorithms. It finds its buffer relative to its
//! own address, so a queue works in processes that map it at different
//! addresses; the traits make that possible because every access goes through
//! `&self` of the storage where it lives inside the queue.
//!
//! The trait hands out slot access through closures, as loom's `UnsafeCell`
//! does, so that under `--cfg loom` every slot read and write of the inline
//! storage is tracked by the model checker.

#[cfg(not(loom))]
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crate::primitive::UnsafeCell;

/// The value slots of a queue: how many there are, and access to each.
///
/// A queue never touches a slot except through these methods, and only in the
/// pattern its algorithm proves exclusive (one writer, then readers after a
/// release/acquire pair); the storage only has to say where the slots are.
///
/// # Safety
///
/// Implementations must guarantee, for as long as `self` is borrowed:
/// - [`capacity`](Slots::capacity) returns the same value every time, at least 1;
/// - for every `i < capacity()`, the closures receive a pointer to slot `i` that
///   is valid for reads and writes of one `Item` (or, for a slot of a run-time
///   size, of the whole slot), properly aligned, and disjoint from every other
///   slot and from the queue's own counters;
/// - the memory stays put: the same `i` always gives the same slot.
///
/// A storage should be `Sync` only if its items may move between threads (for
/// typed slots, `T: Send`): the queues are `Sync` exactly when their storage is.
///
/// # Example
///
/// The two storages that ply-core ships, behind the same trait:
///
/// ```
/// use core::mem::MaybeUninit;
/// use ply_core::queue::storage::{Borrowed, Inline, Slots};
///
/// let inline = Inline::<u32, 4>::new();
/// let mut buffer = [MaybeUninit::<u32>::uninit(); 6];
/// let borrowed = Borrowed::new(&mut buffer);
/// assert_eq!((inline.capacity(), borrowed.capacity()), (4, 6));
/// ```
pub unsafe trait Slots {
    /// What one slot holds: `MaybeUninit<T>` for typed storage (the slot is
    /// uninitialized until a push writes it), or the first byte of a slot whose
    /// size is only known at run time.
    type Item;

    /// The number of slots.
    fn capacity(&self) -> usize;

    /// Calls `f` with a pointer to slot `i`, for reading it.
    ///
    /// `i` must be below [`capacity`](Slots::capacity); implementations may
    /// panic otherwise.
    fn with_slot<R>(&self, i: usize, f: impl FnOnce(*const Self::Item) -> R) -> R;

    /// Calls `f` with a pointer to slot `i`, for writing it.
    ///
    /// `i` must be below [`capacity`](Slots::capacity); implementations may
    /// panic otherwise.
    fn with_slot_mut<R>(&self, i: usize, f: impl FnOnce(*mut Self::Item) -> R) -> R;

    /// Drops the item in slot `i` in place (nothing, for slots of plain bytes).
    ///
    /// # Safety
    ///
    /// Slot `i` must hold an initialized item that nothing will read again.
    unsafe fn drop_slot(&self, i: usize);
}

/// [`Slots`] laid out as one array: slot `i` is at `as_mut_ptr().add(i)`.
///
/// The SPSC ring's chunk API hands out slices of neighbouring slots, so it
/// needs this. (Not available under loom, whose cells are not plain memory.)
///
/// # Safety
///
/// [`as_mut_ptr`](ContiguousSlots::as_mut_ptr) must return a pointer to slot 0
/// of an array of [`capacity`](Slots::capacity) items, valid for reads and
/// writes of the whole array, with the provenance to reach all of it.
///
/// # Example
///
/// ```
/// use core::mem::MaybeUninit;
/// use ply_core::queue::storage::{ContiguousSlots, Inline};
///
/// let slots = Inline::<u8, 3>::new();
/// let first: *mut MaybeUninit<u8> = slots.as_mut_ptr();
/// assert!(!first.is_null());
/// ```
#[cfg(not(loom))]
pub unsafe trait ContiguousSlots: Slots {
    /// A pointer to slot 0.
    fn as_mut_ptr(&self) -> *mut Self::Item;
}

/// `N` slots of `T`, stored inline: the storage of the const-generic queues.
///
/// # Example
///
/// ```
/// use ply_core::queue::storage::{Inline, Slots};
///
/// static SLOTS: Inline<u64, 8> = Inline::new();
/// assert_eq!(SLOTS.capacity(), 8);
/// ```
pub struct Inline<T, const N: usize>([UnsafeCell<MaybeUninit<T>>; N]);

impl<T, const N: usize> Inline<T, N> {
    /// `N` uninitialized slots. `const`, so it can initialize a `static`.
    ///
    /// # Example
    ///
    /// ```
    /// let slots = ply_core::queue::storage::Inline::<u8, 2>::new();
    /// # let _ = slots;
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Inline([const { UnsafeCell::new(MaybeUninit::uninit()) }; N])
    }

    /// `N` uninitialized slots (loom build: loom's cells are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Inline(core::array::from_fn(|_| {
            UnsafeCell::new(MaybeUninit::uninit())
        }))
    }
}

// SAFETY: the storage hands out raw pointers only; a queue that shares it
// between threads moves items from one thread to another, which `T: Send`
// allows. No `&T` is ever created from a shared `Inline`.
unsafe impl<T: Send, const N: usize> Sync for Inline<T, N> {}

impl<T, const N: usize> Default for Inline<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: `N` is fixed; each index below `N` names its own cell of the array,
// which lives as long as `self`.
unsafe impl<T, const N: usize> Slots for Inline<T, N> {
    type Item = MaybeUninit<T>;

    #[inline(always)]
    fn capacity(&self) -> usize {
        N
    }

    #[inline(always)]
    fn with_slot<R>(&self, i: usize, f: impl FnOnce(*const MaybeUninit<T>) -> R) -> R {
        self.0[i].with(f)
    }

    #[inline(always)]
    fn with_slot_mut<R>(&self, i: usize, f: impl FnOnce(*mut MaybeUninit<T>) -> R) -> R {
        self.0[i].with_mut(f)
    }

    unsafe fn drop_slot(&self, i: usize) {
        // SAFETY: the caller promises slot `i` holds an item no one reads again.
        self.0[i].with_mut(|p| unsafe { (*p).assume_init_drop() });
    }
}

// SAFETY: our `UnsafeCell` (and core's) is `repr(transparent)`, so the array of
// cells has the layout of `[MaybeUninit<T>; N]`; a pointer derived from the
// whole array may reach every slot, and writing through it is allowed because
// every byte it reaches is inside a cell.
#[cfg(not(loom))]
unsafe impl<T, const N: usize> ContiguousSlots for Inline<T, N> {
    #[inline(always)]
    fn as_mut_ptr(&self) -> *mut MaybeUninit<T> {
        self.0.as_ptr().cast::<MaybeUninit<T>>().cast_mut()
    }
}

/// Slots of `T` in a buffer the caller owns, for the lifetime `'a`: the storage
/// of the queues whose capacity is chosen at run time.
///
/// The buffer is borrowed mutably for `'a`, so nothing else can touch it while
/// the queue uses it. Items still in the queue when it is dropped are dropped by
/// the queue; the buffer itself is never freed here.
///
/// # Example
///
/// ```
/// use core::mem::MaybeUninit;
/// use ply_core::queue::storage::{Borrowed, Slots};
///
/// let mut buffer = [const { MaybeUninit::<String>::uninit() }; 5];
/// let slots = Borrowed::new(&mut buffer);
/// assert_eq!(slots.capacity(), 5);
/// ```
#[cfg(not(loom))]
pub struct Borrowed<'a, T> {
    /// Slot 0; derived from the whole `&'a mut` slice, so it reaches all slots.
    ptr: core::ptr::NonNull<MaybeUninit<T>>,
    len: usize,
    _buffer: PhantomData<&'a mut [MaybeUninit<T>]>,
}

#[cfg(not(loom))]
impl<'a, T> Borrowed<'a, T> {
    /// Borrows `buffer` as the slots of a queue (its contents are ignored: they
    /// are treated as uninitialized).
    ///
    /// # Example
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// let mut buffer = [MaybeUninit::<u8>::uninit(); 3];
    /// let slots = ply_core::queue::storage::Borrowed::new(&mut buffer);
    /// # let _ = slots;
    /// ```
    pub fn new(buffer: &'a mut [MaybeUninit<T>]) -> Self {
        Borrowed {
            ptr: core::ptr::NonNull::from(&mut *buffer).cast(),
            len: buffer.len(),
            _buffer: PhantomData,
        }
    }
}

// SAFETY: `Borrowed` is a unique borrow of `[MaybeUninit<T>]`, shared by the
// queue between threads only in the exclusive patterns of its algorithm; it is
// as thread-safe as `&'a mut [MaybeUninit<T>]` (the queues add `T: Send`).
#[cfg(not(loom))]
unsafe impl<T: Send> Send for Borrowed<'_, T> {}
// SAFETY: see `Send`; the queue types decide when sharing is sound.
#[cfg(not(loom))]
unsafe impl<T: Send> Sync for Borrowed<'_, T> {}

// SAFETY: `len` is fixed at construction; slot `i < len` is element `i` of the
// borrowed slice, which outlives `self` and is reachable from `ptr`.
#[cfg(not(loom))]
unsafe impl<T> Slots for Borrowed<'_, T> {
    type Item = MaybeUninit<T>;

    #[inline(always)]
    fn capacity(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn with_slot<R>(&self, i: usize, f: impl FnOnce(*const MaybeUninit<T>) -> R) -> R {
        assert!(i < self.len);
        // SAFETY: `i < len`, so the pointer stays inside the borrowed slice.
        f(unsafe { self.ptr.as_ptr().add(i) })
    }

    #[inline(always)]
    fn with_slot_mut<R>(&self, i: usize, f: impl FnOnce(*mut MaybeUninit<T>) -> R) -> R {
        assert!(i < self.len);
        // SAFETY: as in `with_slot`.
        f(unsafe { self.ptr.as_ptr().add(i) })
    }

    unsafe fn drop_slot(&self, i: usize) {
        // SAFETY: the caller promises slot `i` holds an item no one reads again.
        self.with_slot_mut(i, |p| unsafe { (*p).assume_init_drop() });
    }
}

// SAFETY: `ptr` is slot 0 of the borrowed slice, derived from the whole slice.
#[cfg(not(loom))]
unsafe impl<T> ContiguousSlots for Borrowed<'_, T> {
    #[inline(always)]
    fn as_mut_ptr(&self) -> *mut MaybeUninit<T> {
        self.ptr.as_ptr()
    }
}

/// Drops the items of `len` consecutive slots from `index` (wrapping at the
/// capacity), for a queue being dropped.
///
/// # Safety
///
/// Those slots must hold initialized items that nothing will read again.
pub(crate) unsafe fn drop_slots<S: Slots>(slots: &S, mut index: usize, mut len: usize) {
    let capacity = slots.capacity();
    drop_each(|| {
        if len == 0 {
            return false;
        }
        let slot = index;
        index += 1;
        if index == capacity {
            index = 0;
        }
        len -= 1;
        // SAFETY: the caller's promise, slot by slot; the slot is counted
        // out above before its item is dropped, so none is dropped twice.
        unsafe { slots.drop_slot(slot) };
        true
    });
}

/// Calls `drop_next` until it returns `false`: the destructor loop of a queue,
/// where each call drops one item (after marking it gone) and, once none is
/// left, keeps returning `false`. If an item's destructor panics, the
/// remaining items are still dropped while the panic unwinds, as `Vec` and
/// `VecDeque` do; a second panic aborts.
pub(crate) fn drop_each(drop_next: impl FnMut() -> bool) {
    /// Finishes the loop when dropped: during a panic's unwinding, the rest;
    /// on the normal path, nothing (`drop_next` is done).
    struct Finish<F: FnMut() -> bool>(F);
    impl<F: FnMut() -> bool> Drop for Finish<F> {
        fn drop(&mut self) {
            while (self.0)() {}
        }
    }
    let mut finish = Finish(drop_next);
    while (finish.0)() {}
}

/// Why a queue could not be made over the storage it was given.
///
/// # Example
///
/// ```
/// use core::mem::MaybeUninit;
/// use ply_core::queue::CapacityError;
/// use ply_core::queue::spsc::SliceRing;
///
/// let mut empty: [MaybeUninit<u8>; 0] = [];
/// assert_eq!(SliceRing::new(&mut empty).err(), Some(CapacityError::Zero));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapacityError {
    /// The storage has no slots: a queue must hold at least one item.
    Zero,
    /// More slots than the queue's position arithmetic can count.
    TooLarge {
        /// Slots given.
        capacity: usize,
        /// The largest capacity this queue supports.
        max: usize,
    },
    /// The queue needs a power-of-two capacity (`ScqQueue`).
    NotPowerOfTwo {
        /// Slots given.
        capacity: usize,
    },
    /// The index-ring entries given do not match the capacity (`ScqQueue`
    /// needs `2 * capacity` per ring, `4 * capacity` in all).
    EntryCount {
        /// Entries needed.
        expected: usize,
        /// Entries given.
        got: usize,
    },
}

impl core::fmt::Display for CapacityError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CapacityError::Zero => {
                write!(
                    f,
                    "a queue needs at least one slot; give it a non-empty buffer"
                )
            }
            CapacityError::TooLarge { capacity, max } => write!(
                f,
                "{capacity} slots is more than this queue can count; use at most {max}"
            ),
            CapacityError::NotPowerOfTwo { capacity } => write!(
                f,
                "{capacity} slots is not a power of two; this queue needs 1, 2, 4, 8, ... slots"
            ),
            CapacityError::EntryCount { expected, got } => write!(
                f,
                "{got} index-ring entries given, but this capacity needs {expected}"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CapacityError {}
