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
//! # What may be placed here
//!
//! Only values of [`ShmSafe`] types, which the compiler checks: no pointers or
//! references (a `&'static str` written by a child means nothing to its
//! parent), no heap ownership (a `String` assigned in a child leaves the
//! parent with a pointer into the child's heap), no process-local identity.
//! Primitives, atomics, arrays and tuples of them, and ply-core's queues,
//! locks, signals and dispenser over such types qualify; for your own structs
//! use [`shm_safe!`] (checked, no `unsafe`) or an `unsafe impl ShmSafe`. Since
//! every process that maps the value may use it at once through `&T`, `T` must
//! also be `Sync`, as between threads.
//!
//! ```compile_fail,E0277
//! // A `String` owns memory in one process's heap: refused.
//! let name = ply_os::shm::SharedBox::new(ply_core::sync::SpinMutex::new(String::new()));
//! ```
//!
//! # Dropping
//!
//! The value is never dropped: dropping a `SharedBox` (or `SharedSlice`) only
//! unmaps this process's view, and the pages go when the last process that
//! maps them does. Running the destructor in one process would race with
//! another process still using the value; running it in each would drop the
//! same contents several times. A `ShmSafe` type owns nothing outside its own
//! bytes, so nothing leaks; a `Drop` impl of your own on such a type simply
//! does not run for values left here.
//!
//! # Claims on shared memory across `fork`
//!
//! `fork` copies everything the parent holds, including handles that stand
//! for a *claim* on shared memory: a lock guard, a semaphore permit, a
//! queue's producer role. A child given such a handle while the parent
//! keeps (and later drops) its own copy would have two processes holding
//! one claim. ply's fork APIs refuse this at compile time: what they run in
//! a child must be `Send`, and those handles are not (see [`fork`] on what
//! the child is given). Take the lock, or the role, inside the child:
//!
//! ```compile_fail,E0277
//! use ply_core::sync::SpinMutex;
//! let counter = ply_os::shm::SharedBox::new(SpinMutex::new(0u64)).unwrap();
//! let mut guard = counter.lock();
//! ply_os::fork::scope(|s| {
//!     // Refused: the parent's copy of `guard` would unlock meanwhile.
//!     let child = s.fork_child(move || { *guard += 1; 0 });
//! });
//! ```
//!
//! What the compiler cannot see is listed in [`fork`]: a `&mut` into shared
//! memory kept behind a process-local lock, and guards stashed in statics or
//! thread-locals.
//!
//! [`fork`]: crate::fork#what-the-child-is-given

use std::io;
use std::mem::{align_of, size_of};
use std::ops::Deref;
use std::ptr::NonNull;

pub use ply_core::{ShmSafe, shm_safe};

use crate::park::FutexPark;

/// A `T` in an anonymous `MAP_SHARED` mapping, shared with children forked later.
///
/// `T` must be [`ShmSafe`] and `Sync` (see the [module docs](self)); the value
/// is never dropped, only unmapped.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::ArrayQueue;
/// use ply_os::{fork, shm::SharedBox};
///
/// let queue = SharedBox::new(ArrayQueue::<u64, 16>::new())?;
/// let exit = fork::scope(|s| {
///     s.fork_child(|| {
///         queue.push(42).unwrap();
///         0
///     })?
///     .wait()
/// })?;
/// assert!(exit.success());
/// assert_eq!(queue.pop(), Some(42)); // pushed by the child, popped by the parent
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedBox<T> {
    ptr: NonNull<T>,
    /// Bytes mapped (the size of `T` rounded up to at least one byte).
    len: usize,
}

// SAFETY: a `SharedBox<T>` gives out only `&T`, so sharing or sending it between
// threads is exactly as safe as sharing `&T`, which requires `T: Sync`.
unsafe impl<T: Sync> Sync for SharedBox<T> {}
// SAFETY: as above; moving the handle moves no `T` (it is never dropped),
// but `T: Send` keeps this as strict as sending a `Box<T>`.
unsafe impl<T: Sync + Send> Send for SharedBox<T> {}

impl<T: ShmSafe + Sync> SharedBox<T> {
    /// Maps a shared region and moves `value` into it.
    ///
    /// `T: ShmSafe` keeps pointers and heap memory out of shared memory;
    /// `T: Sync` because every process that maps the value uses it through
    /// `&T` at once.
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
        Ok(SharedBox { ptr, len })
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
        // The value is not dropped: other processes may still be using it
        // (see the module docs). Only this process's view goes.
        // SAFETY: unmapping exactly the region `new` mapped, which nothing
        // references any more in this process (no `&T` outlives `self`).
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
/// `T` is [`ShmSafe`] and `Sync`, and the values are never dropped, only
/// unmapped.
///
/// # Example
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use ply_os::{fork, shm::SharedSlice};
///
/// let hits = SharedSlice::new(4, |_| AtomicU64::new(0))?;
/// let exit = fork::scope(|s| {
///     s.fork_child(|| {
///         hits[2].fetch_add(1, Ordering::Relaxed);
///         0
///     })?
///     .wait()
/// })?;
/// assert!(exit.success());
/// assert_eq!(hits[2].load(Ordering::Relaxed), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedSlice<T> {
    ptr: NonNull<T>,
    len: usize,
    bytes: usize,
}

// SAFETY: as for `SharedBox`: only `&[T]` is handed out.
unsafe impl<T: Sync> Sync for SharedSlice<T> {}
// SAFETY: as for `SharedBox`.
unsafe impl<T: Sync + Send> Send for SharedSlice<T> {}

impl<T: ShmSafe + Sync> SharedSlice<T> {
    /// Maps room for `len` values and fills slot `i` with `init(i)`.
    ///
    /// If `init` panics, the mapping is unmapped and the values made so far
    /// are not dropped (as always here).
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
        // Made before the slots are filled, so a panicking `init` unmaps.
        let mut slice = SharedSlice { ptr, len: 0, bytes };
        for i in 0..len {
            // SAFETY: the mapping holds `len` aligned slots; slot `i` is fresh.
            unsafe { ptr.as_ptr().add(i).write(init(i)) };
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
        // As for `SharedBox`: the values are not dropped, only unmapped here.
        // SAFETY: unmapping exactly the region `new` mapped; no `&[T]`
        // outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}

// SAFETY: zero-sized; it passes the address of a word to the kernel, which
// keys a shared futex by the physical page, so a wait in one process is woken
// by a wake in another.
unsafe impl ShmSafe for FutexPark {}

impl<T: std::fmt::Debug> std::fmt::Debug for SharedSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SharedSlice").field(&&**self).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
    use std::time::{Duration, Instant};

    use ply_core::queue::mpmc::ArrayQueue;
    use ply_core::sync::SpinMutex;

    #[test]
    fn child_writes_are_seen_by_parent() {
        let counter = SharedBox::new(AtomicU64::new(0)).unwrap();
        crate::fork::scope(|s| {
            let child = s
                .fork_child(|| {
                    counter.fetch_add(7, SeqCst);
                    0
                })
                .unwrap();
            assert!(child.wait().unwrap().success());
        });
        assert_eq!(counter.load(SeqCst), 7);
    }

    /// What the issue's `SpinMutex<String>` wanted, with a type that can
    /// cross: a value assigned in the child is read whole by the parent.
    #[test]
    fn a_locked_value_assigned_in_a_child_is_read_by_the_parent() {
        let name = SharedBox::new(SpinMutex::new((0usize, [0u8; 32]))).unwrap();
        crate::fork::scope(|s| {
            let child = s
                .fork_child(|| {
                    let text = b"written by the child";
                    let mut guard = name.lock();
                    guard.1[..text.len()].copy_from_slice(text);
                    guard.0 = text.len();
                    0
                })
                .unwrap();
            assert!(child.wait().unwrap().success());
        });
        let (len, bytes) = *name.lock();
        assert_eq!(&bytes[..len], b"written by the child");
    }

    /// Drops counted in this process: a `ShmSafe` type may have a `Drop` of
    /// its own, which the containers never run.
    static DROPS: AtomicUsize = AtomicUsize::new(0);

    ply_core::shm_safe! {
        struct Noisy(u32);
    }

    impl Drop for Noisy {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
        }
    }

    #[test]
    fn values_in_shared_memory_are_never_dropped() {
        let one = SharedBox::new(Noisy(1)).unwrap();
        let many = SharedSlice::new(3, |i| Noisy(i as u32)).unwrap();
        assert_eq!(many[2].0, 2);
        drop(one);
        drop(many);
        assert_eq!(DROPS.load(SeqCst), 0);
    }

    /// The parent drops its box while a child still uses the value: only the
    /// parent's view goes, and the child finds the value intact. (Moved into
    /// the child's closure, the box is dropped in the parent at the fork.)
    #[test]
    fn a_child_keeps_using_a_value_its_parent_dropped() {
        let go = SharedBox::new(AtomicBool::new(false)).unwrap();
        let queue = SharedBox::new(ArrayQueue::<u64, 4>::new()).unwrap();
        queue.push(41).unwrap();
        crate::fork::scope(|s| {
            let go = &go;
            let child = s
                .fork_child(move || {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !go.load(SeqCst) {
                        if Instant::now() > deadline {
                            return 2;
                        }
                        std::thread::yield_now();
                    }
                    let ok = queue.pop() == Some(41)
                        && queue.push(42).is_ok()
                        && queue.pop() == Some(42);
                    if ok { 0 } else { 1 }
                })
                .unwrap();
            go.store(true, SeqCst);
            assert!(child.wait().unwrap().success());
        });
    }

    #[test]
    fn zero_sized_value() {
        let unit = SharedBox::new(()).unwrap();
        assert_eq!(*unit, ());
        let none = SharedSlice::new(0, |_| 0u8).unwrap();
        assert!(none.is_empty());
    }
}
