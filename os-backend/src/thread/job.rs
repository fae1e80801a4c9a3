//! [`Job`]: a type-erased `FnOnce()` that stores small closures inline.
//!
//! Every task the pool runs is a `Job`. A `Box<dyn FnOnce()>` would cost one
//! heap allocation per task, made by the spawning thread and freed by the
//! worker that runs it — a cross-thread pattern glibc's allocator handles
//! slowly, and the largest cost of a spawn when closures were boxed
//! (BENCHMARKS.md, thread pool). So a job keeps closures of up to
//! [`INLINE_WORDS`] words (pointer-aligned) in place, next to one function
//! pointer that runs or drops them; larger or over-aligned closures are boxed.
//! This is the small-buffer optimisation of C++'s `std::function` and of the
//! `smallbox` crate, which we cannot use directly: calling a boxed `dyn FnOnce`
//! by value needs compiler support that only `Box` has on stable Rust.
//!
//! A job never unwinds out of [`Job::run`] or its `Drop` (see `unwind`), so
//! whatever runs it — a worker, a waiting thread that helps — lives on.

use std::mem::{ManuallyDrop, MaybeUninit, align_of, size_of};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use super::unwind::drop_payload;

/// Pointer-sized words of closure state a job holds without allocating. A
/// scope's wrapper (the user closure plus one reference) fits when the user
/// closure captures up to three references.
pub(crate) const INLINE_WORDS: usize = 4;

type Storage = MaybeUninit<[usize; INLINE_WORDS]>;

/// A closure ready to run once, on any thread.
pub(crate) struct Job {
    /// Consumes the closure in `storage`: runs it (`true`) or drops it.
    consume: unsafe fn(*mut Storage, bool),
    storage: Storage,
}

// SAFETY: a `Job` is only made from `F: Send` closures (see `new_unchecked`).
unsafe impl Send for Job {}

impl Job {
    /// Wraps `f`.
    pub(crate) fn new<F: FnOnce() + Send + 'static>(f: F) -> Job {
        // SAFETY: `f` is 'static, so it borrows nothing that could expire.
        unsafe { Job::new_unchecked(f) }
    }

    /// Wraps `f`, which may borrow data with a limited lifetime.
    ///
    /// # Safety
    ///
    /// The job must be run or dropped before anything `f` borrows goes away.
    pub(crate) unsafe fn new_unchecked<'a, F: FnOnce() + Send + 'a>(f: F) -> Job {
        let mut storage = Storage::uninit();
        let consume: unsafe fn(*mut Storage, bool) =
            if size_of::<F>() <= size_of::<Storage>() && align_of::<F>() <= align_of::<Storage>() {
                // SAFETY: `F` fits the storage in size and alignment (checked).
                unsafe { ptr::write(storage.as_mut_ptr().cast::<F>(), f) };
                consume_inline::<F>
            } else {
                let boxed: *mut F = Box::into_raw(Box::new(f));
                // SAFETY: a thin pointer fits the first word of the storage.
                unsafe { ptr::write(storage.as_mut_ptr().cast::<*mut F>(), boxed) };
                consume_boxed::<F>
            };
        Job { consume, storage }
    }

    /// Runs the closure. Never unwinds: a panic that escapes the closure (the
    /// task wrappers catch the task's own) is caught and its payload dropped
    /// quietly, so the thread running the job lives on.
    pub(crate) fn run(self) {
        let mut this = ManuallyDrop::new(self);
        let consumed = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `storage` holds the closure `consume` was made for; `this`
            // is never used or dropped again (even if this call unwinds: the
            // closure was read out first), so it is consumed exactly once.
            unsafe { (this.consume)(&mut this.storage, true) }
        }));
        if let Err(payload) = consumed {
            drop_payload(payload);
        }
    }
}

/// Dropping a job unrun drops the closure, which cancels the task it wraps
/// (each wrapper's guard says how). Never unwinds: a panicking `Drop` of a
/// captured value is contained as in [`Job::run`].
impl Drop for Job {
    fn drop(&mut self) {
        let consumed = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: as in `run`: the job is being dropped, never used again.
            unsafe { (self.consume)(&mut self.storage, false) }
        }));
        if let Err(payload) = consumed {
            drop_payload(payload);
        }
    }
}

/// # Safety
/// `storage` holds an `F` written by `new_unchecked`, consumed here once.
unsafe fn consume_inline<F: FnOnce()>(storage: *mut Storage, run: bool) {
    // SAFETY: per the contract, an initialized `F` that nobody else will read.
    let f = unsafe { ptr::read(storage.cast::<F>()) };
    if run {
        f();
    }
}

/// # Safety
/// `storage` holds a `Box<F>` pointer written by `new_unchecked`, consumed once.
unsafe fn consume_boxed<F: FnOnce()>(storage: *mut Storage, run: bool) {
    // SAFETY: per the contract, the pointer came from `Box::into_raw` and is
    // turned back into a box exactly once.
    let f = unsafe { Box::from_raw(ptr::read(storage.cast::<*mut F>())) };
    if run {
        f();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    /// Runs or drops jobs of small, large and over-aligned closures and checks
    /// each captured value is dropped exactly once and each run happens once.
    #[test]
    fn runs_or_drops_every_size_exactly_once() {
        #[repr(align(64))]
        struct Aligned(#[allow(dead_code)] u8);
        let runs = Arc::new(AtomicUsize::new(0));
        let make = |kind: usize| {
            let runs = Arc::clone(&runs);
            match kind {
                0 => Job::new(move || {
                    runs.fetch_add(1, SeqCst);
                }),
                1 => {
                    let big = [7u64; 16];
                    Job::new(move || {
                        assert_eq!(big.iter().sum::<u64>(), 112);
                        runs.fetch_add(1, SeqCst);
                    })
                }
                _ => {
                    let aligned = Aligned(1);
                    Job::new(move || {
                        assert_eq!(std::ptr::from_ref(&aligned) as usize % 64, 0);
                        runs.fetch_add(1, SeqCst);
                    })
                }
            }
        };
        for kind in 0..3 {
            make(kind).run();
            drop(make(kind));
            // Moved between threads before running.
            let job = make(kind);
            std::thread::spawn(move || job.run()).join().unwrap();
        }
        assert_eq!(runs.load(SeqCst), 6);
        // Every job released its clone of `runs`: only ours is left.
        assert_eq!(Arc::strong_count(&runs), 1);
    }
}
