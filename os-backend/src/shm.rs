//! One value in memory shared with forked children.
//!
//! [`SharedBox::new`] maps an anonymous `MAP_SHARED` region with `mmap`, moves
//! the value into it, and hands out `&T`. A child forked afterwards sees the same
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
        // Page alignment from mmap covers any alignment a Rust type can ask for
        // up to the page size; larger ones are refused rather than misaligned.
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
        if align_of::<T>() > page {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "SharedBox: type alignment exceeds the page size",
            ));
        }
        let len = size_of::<T>().max(1);
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
        let ptr = NonNull::new(raw.cast::<T>()).expect("mmap returned null on success");
        // SAFETY: the mapping is fresh, writable, at least `size_of::<T>()` bytes
        // and page-aligned (checked above), so writing a `T` there is valid.
        unsafe { ptr.as_ptr().write(value) };
        Ok(SharedBox {
            ptr,
            len,
            // SAFETY: getpid cannot fail and has no preconditions.
            owner: unsafe { libc::getpid() },
        })
    }
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
        // SAFETY: getpid has no preconditions.
        if unsafe { libc::getpid() } == self.owner {
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
