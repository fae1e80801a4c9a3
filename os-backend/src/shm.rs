//! Values and slices in memory shared with forked children.
//!
//! [`SharedBox::new`] (one value) and [`SharedSlice::new`] (a run of them) map
//! an anonymous `MAP_SHARED` region with `mmap`, move the values into it, and
//! hand out `&T` (or `&[T]`). A child forked afterwards sees the same
//! physical pages at the same address, so `&T` means the same object in parent
//! and child. That is what ply-core's types are built for: they hold no pointers,
//! so a queue or lock placed here works between processes exactly as between
//! threads.
//!
//! The value is dropped only by the process that created the box (children
//! inherit a copy of the handle; when a child's copy is dropped it only unmaps
//! the child's view). Values that own heap memory or pointers are unsound to use
//! from a child in any way that follows those pointers: keep to plain data.

use std::io;
use std::mem::{align_of, size_of};
use std::ops::Deref;
use std::ptr::NonNull;

/// A `T` in an anonymous `MAP_SHARED` mapping, shared with children forked later.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::ArrayQueue;
/// use ply_os::{fork::fork_child, shm::SharedBox};
///
/// let queue = SharedBox::new(ArrayQueue::<u64, 16>::new())?;
/// let child = fork_child(|| {
///     queue.push(42).unwrap();
///     0
/// })?;
/// assert!(child.wait()?.success());
/// assert_eq!(queue.pop(), Some(42)); // pushed by the child, popped by the parent
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedBox<T> {
    ptr: NonNull<T>,
    /// Bytes mapped (the size of `T` rounded up to at least one byte).
    len: usize,
    /// The process that created the value and is the one to drop it.
    owner: libc::pid_t,
}

// SAFETY: a `SharedBox<T>` gives out only `&T`, so sharing or sending it between
// threads is exactly as safe as sharing `&T`, which requires `T: Sync`.
unsafe impl<T: Sync> Sync for SharedBox<T> {}
// SAFETY: as above; dropping `T` on another thread also needs `T: Send`.
unsafe impl<T: Sync + Send> Send for SharedBox<T> {}

impl<T> SharedBox<T> {
    /// Maps a shared region and moves `value` into it.
    ///
    /// # Errors
    ///
    /// The `mmap` error (for example `ENOMEM`), if the mapping fails.
    ///
    /// # Example
    ///
    /// ```
    /// let n = ply_os::shm::SharedBox::new(5u32)?;
    /// assert_eq!(*n, 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(value: T) -> io::Result<Self> {
        let len = size_of::<T>().max(1);
        let raw = map_shared(len, align_of::<T>())?;
        let ptr = raw.cast::<T>();
        // SAFETY: the mapping is fresh, writable, at least `size_of::<T>()` bytes
        // and page-aligned (checked above), so writing a `T` there is valid.
        unsafe { ptr.as_ptr().write(value) };
        Ok(SharedBox {
            ptr,
            len,
            owner: current_pid(),
        })
    }
}

/// Maps `len` fresh, zeroed, writable `MAP_SHARED` bytes, page-aligned.
pub(crate) fn map_shared(len: usize, align: usize) -> io::Result<NonNull<u8>> {
    // Page alignment from mmap covers any alignment a Rust type can ask for
    // up to the page size; larger ones are refused rather than misaligned.
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    if align > page {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "shared memory: type alignment exceeds the page size",
        ));
    }
    // SAFETY: an anonymous mapping with a null hint has no preconditions; the
    // result is checked against MAP_FAILED below.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(NonNull::new(raw.cast::<u8>()).expect("mmap returned null on success"))
}

/// The calling process's id.
pub(crate) fn current_pid() -> libc::pid_t {
    // SAFETY: getpid cannot fail and has no preconditions.
    unsafe { libc::getpid() }
}

impl<T> Deref for SharedBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the value was initialized in `new` and stays mapped until drop;
        // only shared references are handed out.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for SharedBox<T> {
    fn drop(&mut self) {
        if current_pid() == self.owner {
            // SAFETY: the creating process owns the value and drops it once; no
            // `&T` outlives `self`.
            unsafe { self.ptr.as_ptr().drop_in_place() };
        }
        // SAFETY: unmapping exactly the region `new` mapped, which nothing
        // references any more in this process.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for SharedBox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedBox").field(&**self).finish()
    }
}

/// `len` values of `T` in one anonymous `MAP_SHARED` mapping, shared with
/// children forked later — the slice form of [`SharedBox`], with the same rules:
/// plain data, dropped by the creating process only.
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use ply_os::{fork::fork_child, shm::SharedSlice};
///
/// let hits = SharedSlice::new(4, |_| AtomicU64::new(0))?;
/// let child = fork_child(|| {
///     hits[2].fetch_add(1, Ordering::Relaxed);
///     0
/// })?;
/// assert!(child.wait()?.success());
/// assert_eq!(hits[2].load(Ordering::Relaxed), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedSlice<T> {
    ptr: NonNull<T>,
    len: usize,
    bytes: usize,
    owner: libc::pid_t,
}

// SAFETY: as for `SharedBox`: only `&[T]` is handed out.
unsafe impl<T: Sync> Sync for SharedSlice<T> {}
// SAFETY: as for `SharedBox`.
unsafe impl<T: Sync + Send> Send for SharedSlice<T> {}

impl<T> SharedSlice<T> {
    /// Maps room for `len` values and fills slot `i` with `init(i)`.
    ///
    /// # Errors
    ///
    /// The `mmap` error, or `InvalidInput` if `len` values overflow `usize`.
    ///
    /// # Example
    ///
    /// ```
    /// let squares = ply_os::shm::SharedSlice::new(4, |i| (i * i) as u32)?;
    /// assert_eq!(&*squares, &[0, 1, 4, 9]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(len: usize, mut init: impl FnMut(usize) -> T) -> io::Result<Self> {
        let bytes = size_of::<T>()
            .checked_mul(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "slice too large"))?
            .max(1);
        let ptr = map_shared(bytes, align_of::<T>())?.cast::<T>();
        let slice = SharedSlice {
            ptr,
            len: 0,
            bytes,
            owner: current_pid(),
        };
        let mut slice = slice;
        for i in 0..len {
            // SAFETY: the mapping holds `len` aligned slots; slot `i` is fresh.
            unsafe { ptr.as_ptr().add(i).write(init(i)) };
            // Counted as we go, so a panicking `init` drops only what was made.
            slice.len = i + 1;
        }
        Ok(slice)
    }
}

impl<T> Deref for SharedSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` slots were initialized in `new` and stay mapped until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for SharedSlice<T> {
    fn drop(&mut self) {
        if current_pid() == self.owner {
            // SAFETY: the creator drops the initialized slots once.
            unsafe {
                std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len).drop_in_place()
            };
        }
        // SAFETY: unmapping exactly the region `new` mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for SharedSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedSlice").field(&&**self).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn child_writes_are_seen_by_parent() {
        let counter = SharedBox::new(AtomicU64::new(0)).unwrap();
        let child = crate::fork::fork_child(|| {
            counter.fetch_add(7, Ordering::SeqCst);
            0
        })
        .unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(counter.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn value_dropped_once_by_owner() {
        use std::sync::Arc;
        let marker = Arc::new(());
        let shared = SharedBox::new(marker.clone()).unwrap();
        assert_eq!(Arc::strong_count(&marker), 2);
        drop(shared);
        assert_eq!(Arc::strong_count(&marker), 1);
    }

    #[test]
    fn zero_sized_value() {
        let unit = SharedBox::new(()).unwrap();
        assert_eq!(*unit, ());
    }
}
