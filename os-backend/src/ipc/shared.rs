//! [`SharedValue`] and [`SharedArray`]: plain data in shared memory, locked.

use std::cell::UnsafeCell;
use std::io;
use std::ops::{Deref, DerefMut};

use ply_core::sync::{SpinMutex, SpinMutexGuard};

use crate::shm::{SharedBox, SharedSlice, ShmSafe};

/// One plain-data value shared with children forked afterwards, behind
/// ply-core's [`SpinMutex`] — Python's `multiprocessing.Value`.
///
/// `T` is [`ShmSafe`] (no pointers or references, no heap memory: a
/// `&'static str` set by a child would point into the child's memory) and
/// `Copy` (`get` returns a copy).
///
/// A spin lock because the holder is another *process*: there is no owner
/// thread the kernel could hand it to. Keep critical sections short. A process
/// killed while holding the lock leaves it held; use
/// [`LockWith::lock_with`](ply_core::sync::LockWith) on [`raw`](Self::raw)
/// with a deadline where that matters.
///
/// # Example
///
/// ```
/// use ply_os::{fork, ipc::SharedValue};
///
/// let counter = SharedValue::new(0u64)?;
/// fork::scope(|s| {
///     let children: Vec<_> = (0..3)
///         .map(|_| s.fork_child(|| {
///             for _ in 0..1000 {
///                 counter.update(|n| n + 1);
///             }
///             0
///         }))
///         .collect::<Result<_, _>>()?;
///     for c in children {
///         assert!(c.wait()?.success());
///     }
///     Ok::<(), std::io::Error>(())
/// })?;
/// assert_eq!(counter.get(), 3000); // no lost update
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedValue<T> {
    cell: SharedBox<SpinMutex<T>>,
}

impl<T: ShmSafe + Copy> SharedValue<T> {
    /// Maps a new shared value.
    ///
    /// # Errors
    ///
    /// The `mmap` error.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::ipc::SharedValue::new(1.5f64).unwrap().get(), 1.5);
    /// ```
    pub fn new(value: T) -> io::Result<Self> {
        Ok(SharedValue {
            cell: SharedBox::new(SpinMutex::new(value))?,
        })
    }

    /// A copy of the value.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::ipc::SharedValue::new('x').unwrap().get(), 'x');
    /// ```
    pub fn get(&self) -> T {
        *self.cell.lock()
    }

    /// Replaces the value.
    ///
    /// # Example
    ///
    /// ```
    /// let v = ply_os::ipc::SharedValue::new(1).unwrap();
    /// v.set(2);
    /// assert_eq!(v.get(), 2);
    /// ```
    pub fn set(&self, value: T) {
        *self.cell.lock() = value;
    }

    /// Replaces the value with `f(value)` under the lock; returns the new value.
    ///
    /// # Example
    ///
    /// ```
    /// let v = ply_os::ipc::SharedValue::new(20).unwrap();
    /// assert_eq!(v.update(|x| x + 1), 21);
    /// ```
    pub fn update(&self, f: impl FnOnce(T) -> T) -> T {
        let mut guard = self.cell.lock();
        *guard = f(*guard);
        *guard
    }

    /// The lock itself, for longer critical sections or bounded waits.
    ///
    /// # Example
    ///
    /// ```
    /// let v = ply_os::ipc::SharedValue::new([0u8; 4]).unwrap();
    /// v.raw().lock()[2] = 7;
    /// assert_eq!(v.get(), [0, 0, 7, 0]);
    /// ```
    pub fn raw(&self) -> &SpinMutex<T> {
        &self.cell
    }
}

impl<T: ShmSafe + Copy + std::fmt::Debug> std::fmt::Debug for SharedValue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedValue").field(&self.get()).finish()
    }
}

/// A cell the array's lock guards.
#[repr(transparent)]
struct Slot<T>(UnsafeCell<T>);

// SAFETY: slots are only accessed through a `SharedArrayGuard`, which holds the
// array's lock, so at most one thread (or process) touches them at a time.
unsafe impl<T: Send> Sync for Slot<T> {}
// SAFETY: a `T` in an `UnsafeCell`, nothing else; `T` is `ShmSafe`.
unsafe impl<T: ShmSafe> ShmSafe for Slot<T> {}

/// A fixed-length array of plain data shared with children forked afterwards,
/// behind one [`SpinMutex`] — Python's `multiprocessing.Array`.
///
/// `T` is [`ShmSafe`] and `Copy`, as for [`SharedValue`].
///
/// # Example
///
/// ```
/// use ply_os::{fork, ipc::SharedArray};
///
/// let histogram = SharedArray::new(4, 0u32)?;
/// let child = fork::scope(|s| s.fork_child(|| {
///     histogram.lock()[1] += 10;
///     0
/// })?.wait())?;
/// assert!(child.success());
/// histogram.lock()[3] += 1;
/// assert_eq!(&*histogram.lock(), &[0, 10, 0, 1]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedArray<T> {
    lock: SharedBox<SpinMutex<()>>,
    slots: SharedSlice<Slot<T>>,
}

impl<T: ShmSafe + Copy> SharedArray<T> {
    /// Maps `len` copies of `value`.
    ///
    /// # Errors
    ///
    /// The `mmap` error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = ply_os::ipc::SharedArray::new(3, 1u8).unwrap();
    /// assert_eq!(a.len(), 3);
    /// ```
    pub fn new(len: usize, value: T) -> io::Result<Self> {
        Ok(SharedArray {
            lock: SharedBox::new(SpinMutex::new(()))?,
            slots: SharedSlice::new(len, |_| Slot(UnsafeCell::new(value)))?,
        })
    }

    /// The number of elements.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(ply_os::ipc::SharedArray::new(0, 0u8).unwrap().is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the array has no elements.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_os::ipc::SharedArray::new(1, 0u8).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Locks the array; the guard derefs to `[T]`.
    ///
    /// # Example
    ///
    /// ```
    /// let a = ply_os::ipc::SharedArray::new(2, 0i32).unwrap();
    /// a.lock().copy_from_slice(&[4, 5]);
    /// assert_eq!(a.lock().iter().sum::<i32>(), 9);
    /// ```
    pub fn lock(&self) -> SharedArrayGuard<'_, T> {
        SharedArrayGuard {
            _guard: self.lock.lock(),
            slots: &self.slots,
        }
    }
}

/// Exclusive access to a [`SharedArray`]'s elements; unlocks on drop.
///
/// # Example
///
/// ```
/// let a = ply_os::ipc::SharedArray::new(2, 0u8).unwrap();
/// let mut g = a.lock();
/// g[0] = 1;
/// assert_eq!(&*g, &[1, 0]);
/// ```
pub struct SharedArrayGuard<'a, T> {
    _guard: SpinMutexGuard<'a, ()>,
    slots: &'a [Slot<T>],
}

impl<T> Deref for SharedArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `Slot<T>` is `UnsafeCell<T>` wrapped, so it has `T`'s layout;
        // we hold the lock, so no one else accesses the slots meanwhile.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<T>(), self.slots.len()) }
    }
}

impl<T> DerefMut for SharedArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only view from
        // this guard; `UnsafeCell` permits writing through the shared slots.
        unsafe {
            std::slice::from_raw_parts_mut(
                UnsafeCell::raw_get(self.slots.as_ptr().cast::<UnsafeCell<T>>()),
                self.slots.len(),
            )
        }
    }
}
