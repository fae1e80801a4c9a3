//! The results of [`map_plain`](super::map_plain), left where the workers
//! wrote them, and the warm mapping they are recycled into.
//!
//! # Why the results stay in shared memory
//!
//! Workers write plain-data results into an anonymous `MAP_SHARED` mapping.
//! Copying them into a `Vec` afterwards would cost more than computing them:
//! after a `fork` every private page of the parent is write-protected, so the
//! copy takes a page fault per 4 KiB of destination, whether the `Vec` is fresh
//! or recycled by the allocator. [`SharedResults`] hands the mapping itself to
//! the caller instead, as a `&[O]`; [`SharedResults::into_vec`] copies when an
//! owned `Vec` is wanted.
//!
//! # Why the mapping is recycled
//!
//! A fresh shared page is allocated and zeroed at its first touch, a fault that
//! costs microseconds (2.4 µs a page on the VM of `BENCHMARKS.md`), and every
//! process touching it faults separately: `fork` does not copy page-table
//! entries of shared mappings. So when a `SharedResults` is dropped its
//! mapping is kept — one mapping of at most [`RESULT_CACHE_LIMIT`] bytes, in
//! the process that made it — and the next call writes into pages that exist
//! and that the parent has mapped already. A worker maps the pages of each
//! chunk it claims with one `madvise(MADV_POPULATE_READ)` (Linux 5.14+; ignored
//! where missing), where the kernel's fault-around maps resident pages sixteen
//! to a fault, instead of taking a write fault per page. [`clear_result_cache`]
//! gives the kept mapping back to the OS.
//!
//! # Forks made elsewhere
//!
//! A child forked while a `SharedResults` is alive shares its pages. Reusing
//! them would then change results that child still reads, so a `SharedResults`
//! alive across any fork other than ply's own map workers (counted by a
//! `pthread_atfork` handler) is unmapped on drop, never recycled. A cached
//! mapping inherited by a child is never reused by the child either: each
//! mapping remembers the process that made it.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering::SeqCst};

use crate::once::ForkSafeOnce;
use crate::shm::{ShmSafe, current_pid, map_shared};

/// The largest mapping kept for reuse when its [`SharedResults`] is dropped
/// (64 MiB); larger results are unmapped on drop.
///
/// # Example
///
/// ```
/// assert_eq!(ply_os::process::RESULT_CACHE_LIMIT, 64 << 20);
/// ```
pub const RESULT_CACHE_LIMIT: usize = 64 << 20;

/// `madvise` advice: populate page tables as if read (Linux 5.14+).
const MADV_POPULATE_READ: libc::c_int = 22;

/// The mapping kept for the next call (a leaked `Box<Region>`, or null).
///
/// One atomic pointer, not a lock: a lock held by another thread at a fork
/// would stay held in the child, and a child may map too. Taking is a swap
/// with null, so a mapping has one owner at a time; `SeqCst` for simplicity
/// (a few operations per map call), and it publishes the `Region`'s fields
/// with the pointer.
static CACHE: AtomicPtr<Region> = AtomicPtr::new(std::ptr::null_mut());

/// Takes the kept mapping out of the cache.
fn take_cached() -> Option<Region> {
    let ptr = CACHE.swap(std::ptr::null_mut(), SeqCst);
    // SAFETY: a non-null pointer in CACHE came from `Box::into_raw` in
    // `Region::recycle`, and the swap made this call its only owner.
    (!ptr.is_null()).then(|| *unsafe { Box::from_raw(ptr) })
}

/// Forks of this process other than map workers' (see the module doc), and
/// whether they are being counted at all.
static FOREIGN_FORKS: AtomicU64 = AtomicU64::new(0);
static COUNTING_FORKS: AtomicBool = AtomicBool::new(false);
static START_COUNTING: ForkSafeOnce = ForkSafeOnce::new();

thread_local! {
    /// Set while this thread forks a map worker, which never sees a
    /// `SharedResults` (the parent hands one out only after reaping them).
    static FORKING_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs in the forking thread just before every `fork` of this process.
extern "C" fn count_fork() {
    // `try_with`: a fork during thread teardown has no flag left to read, and
    // counts as foreign (the safe side).
    if !FORKING_WORKER.try_with(|f| f.get()).unwrap_or(false) {
        // SeqCst, and before the fork rather than after: a thread that drops
        // results later and still reads the old count cannot have been
        // sharing them with the child this fork makes.
        FOREIGN_FORKS.fetch_add(1, SeqCst);
    }
}

/// Starts counting forks (once per process); returns the count so far, or
/// `None` if forks cannot be counted (then nothing is recycled).
fn foreign_forks() -> Option<u64> {
    START_COUNTING.run(|| {
        // SAFETY: registers a handler that touches only a thread-local flag
        // and an atomic, both safe to use just before a fork.
        let registered = unsafe { libc::pthread_atfork(Some(count_fork), None, None) } == 0;
        COUNTING_FORKS.store(registered, SeqCst);
    });
    COUNTING_FORKS
        .load(SeqCst)
        .then(|| FOREIGN_FORKS.load(SeqCst))
}

/// Runs `fork` as a map worker's fork: one that does not make a live
/// `SharedResults` unrecyclable.
pub(super) fn forking_worker<T>(fork: impl FnOnce() -> T) -> T {
    foreign_forks();
    FORKING_WORKER.with(|f| f.set(true));
    let out = fork();
    FORKING_WORKER.with(|f| f.set(false));
    out
}

/// An anonymous `MAP_SHARED` mapping of raw bytes, unmapped on drop.
pub(super) struct Region {
    ptr: NonNull<u8>,
    bytes: usize,
    /// The process that mapped it: the only one that may reuse it.
    owner: libc::pid_t,
}

// SAFETY: a `Region` is an owned mapping with no thread affinity; what lives
// in it is typed and guarded by its users.
unsafe impl Send for Region {}

impl Region {
    /// A mapping with room for `len` values of `O`, aligned for `O`: the
    /// cached one if it is this process's and large enough, else a fresh one.
    pub(super) fn take<O>(len: usize) -> io::Result<Region> {
        let bytes = size_of::<O>()
            .checked_mul(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "results too large"))?
            .max(1);
        // Mappings are page-aligned: enough for any alignment up to 4 KiB.
        // Larger ones are refused here, before the cache (`map_shared` would
        // refuse them too, but a cached mapping is not checked again).
        if align_of::<O>() > 4096 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "results: type alignment exceeds 4 KiB",
            ));
        }
        if let Some(region) = take_cached() {
            if region.owner == current_pid() && region.bytes >= bytes {
                return Ok(region);
            }
            // Too small, or inherited from the parent: `drop` unmaps it.
        }
        let ptr = map_shared(bytes, align_of::<O>())?;
        Ok(Region {
            ptr,
            bytes,
            owner: current_pid(),
        })
    }

    /// The start of the mapping.
    pub(super) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Maps the pages holding bytes `start..end` into this process's page
    /// table in one call, before they are written. An optimisation only:
    /// errors (an old kernel) are ignored and the writes fault as usual.
    pub(super) fn populate(&self, start: usize, end: usize) {
        const PAGE: usize = 4096;
        let first = start & !(PAGE - 1);
        let end = end.min(self.bytes);
        if end <= first + PAGE {
            return; // one page: the write's own fault is as cheap
        }
        // SAFETY: `first..end` lies inside this mapping (page-aligned start,
        // end clamped to its length); MADV_POPULATE_READ only fills page
        // tables and never changes the contents.
        unsafe {
            libc::madvise(
                self.ptr.as_ptr().add(first).cast(),
                end - first,
                MADV_POPULATE_READ,
            )
        };
    }

    /// Keeps this mapping for the next call if the slot is free and it is
    /// this process's and small enough; unmaps it otherwise.
    fn recycle(self) {
        if self.owner != current_pid() || self.bytes > RESULT_CACHE_LIMIT {
            return;
        }
        let boxed = Box::into_raw(Box::new(self));
        if CACHE
            .compare_exchange(std::ptr::null_mut(), boxed, SeqCst, SeqCst)
            .is_err()
        {
            // Another mapping is kept already: unmap this one.
            // SAFETY: `boxed` came from `Box::into_raw` just above and was not
            // published, so this is its only owner.
            drop(unsafe { Box::from_raw(boxed) });
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mapped in `take`; nothing in
        // this process refers to it any more (its `SharedResults` is gone).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}

/// Unmaps the mapping kept for reuse by [`map_plain`](super::map_plain), if
/// any; returns its size in bytes (0 if there was none).
///
/// # Example
///
/// ```
/// use ply_os::process::{MapOptions, clear_result_cache, map_plain};
/// let doubled = map_plain(&[1u64, 2, 3], |x| x * 2, &MapOptions::new().workers(1))?;
/// assert_eq!(doubled, [2, 4, 6]);
/// drop(doubled); // its mapping is kept for the next call...
/// assert!(clear_result_cache() > 0); // ...until released
/// assert_eq!(clear_result_cache(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn clear_result_cache() -> usize {
    take_cached().map_or(0, |region| region.bytes)
}

/// The results of [`map_plain`](super::map_plain): a `&[O]` (through
/// `Deref`) over the shared memory the workers wrote them into, so nothing is
/// copied. `O` is [`ShmSafe`]: a result that pointed into a worker's memory
/// would dangle. Dropping it keeps the mapping for the next call (see
/// [`clear_result_cache`]); [`into_vec`](Self::into_vec) copies the results
/// into a `Vec`.
///
/// # Example
///
/// ```
/// use ply_os::process::{MapOptions, map_plain};
/// let inputs: Vec<u32> = (0..1000).collect();
/// let squares = map_plain(&inputs, |&x| x * x, &MapOptions::new().workers(2))?;
/// assert_eq!(squares.len(), 1000);
/// assert_eq!(squares[31], 961);
/// assert_eq!(squares.iter().filter(|&&s| s % 2 == 1).count(), 500);
/// let owned: Vec<u32> = squares.into_vec();
/// assert_eq!(owned[999], 998_001);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedResults<O> {
    /// `Some` until drop.
    region: Option<Region>,
    len: usize,
    /// Foreign forks counted when the results were handed out.
    forks_at_start: Option<u64>,
    _results: PhantomData<O>,
}

// SAFETY: a `SharedResults<O>` owns its `O`s like a `Vec<O>` (no worker that
// wrote them is alive; only `&O` is handed out), so it is `Send`/`Sync`
// exactly when `O` is.
unsafe impl<O: Send> Send for SharedResults<O> {}
// SAFETY: as above.
unsafe impl<O: Sync> Sync for SharedResults<O> {}

impl<O: ShmSafe + Copy> SharedResults<O> {
    /// Wraps `region`, whose first `len` slots of `O` the caller has written.
    ///
    /// # Safety
    ///
    /// Slots `0..len` of `region` hold initialized `O`s and no other process
    /// writes them any more.
    pub(super) unsafe fn new(region: Region, len: usize) -> Self {
        SharedResults {
            region: Some(region),
            len,
            forks_at_start: foreign_forks(),
            _results: PhantomData,
        }
    }

    /// Copies the results into a `Vec` (and recycles the mapping).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{MapOptions, map_plain};
    /// let v: Vec<u8> = map_plain(&[1u8, 2], |x| x + 1, &MapOptions::new().workers(1))?.into_vec();
    /// assert_eq!(v, vec![2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_vec(self) -> Vec<O> {
        self.to_vec()
    }
}

impl<O> Deref for SharedResults<O> {
    type Target = [O];
    fn deref(&self) -> &[O] {
        let region = self.region.as_ref().expect("present until drop");
        // SAFETY: page-aligned (so aligned for `O`), `len` initialized `O`s
        // (`new`'s contract), mapped while `self` lives, and never written
        // meanwhile (`Drop` does not recycle what a foreign fork may read).
        unsafe { std::slice::from_raw_parts(region.as_ptr().cast::<O>(), self.len) }
    }
}

impl<O> Drop for SharedResults<O> {
    fn drop(&mut self) {
        let Some(region) = self.region.take() else {
            return;
        };
        if self.forks_at_start.is_some() && foreign_forks() == self.forks_at_start {
            region.recycle();
        }
    }
}

impl<O> AsRef<[O]> for SharedResults<O> {
    fn as_ref(&self) -> &[O] {
        self
    }
}

impl<'a, O> IntoIterator for &'a SharedResults<O> {
    type Item = &'a O;
    type IntoIter = std::slice::Iter<'a, O>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<O: fmt::Debug> fmt::Debug for SharedResults<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<O: PartialEq, T: AsRef<[O]> + ?Sized> PartialEq<T> for SharedResults<O> {
    fn eq(&self, other: &T) -> bool {
        **self == *other.as_ref()
    }
}
