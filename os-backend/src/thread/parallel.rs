//! Data-parallel helpers: split an index range or a slice into chunks
//! (ply-core's partitioning, chosen with a [`Chunking`]) and hand them to
//! workers through a [`ChunkDispenser`].

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Mutex;

use ply_core::partition::{ChunkDispenser, Chunking, Schedule};

use super::pool::ThreadPool;
use super::scope::OnCancel;

/// Most parallel loops a helper runs at once (the dispenser's worker slots).
const MAX_LOOPS: usize = 64;

/// A raw pointer that may cross to the worker threads (the helpers guarantee
/// that each element is written by exactly one of them).
struct SendPtr<T>(*mut T);
// SAFETY: only used to write disjoint elements of a buffer that outlives the
// scope in which the workers use it.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above; sharing the pointer value itself is harmless.
unsafe impl<T: Send> Sync for SendPtr<T> {}

impl ThreadPool {
    /// Runs `body` over chunks of `range` on the pool (and the calling thread),
    /// each chunk handed to whichever worker asks next.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use ply_core::partition::Chunking;
    /// use ply_os::thread::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let total = AtomicU64::new(0);
    /// pool.for_each_chunk(0..100, Chunking::Fixed(7), |chunk| {
    ///     total.fetch_add(chunk.map(|i| i as u64).sum(), Ordering::Relaxed);
    /// });
    /// assert_eq!(total.into_inner(), 4950);
    /// ```
    pub fn for_each_chunk<F>(&self, range: Range<usize>, chunking: Chunking, body: F)
    where
        F: Fn(Range<usize>) + Sync,
    {
        let len = range.end.saturating_sub(range.start);
        let schedule = chunking.schedule(len, self.workers());
        let loops = self.workers().min(schedule.chunks()).clamp(1, MAX_LOOPS);
        let offset = range.start;
        let run = |dispenser: &ChunkDispenser<MAX_LOOPS>, id: usize| {
            while let Some(claim) = dispenser.claim(id, &schedule) {
                body(claim.range.start + offset..claim.range.end + offset);
            }
        };
        if loops == 1 {
            // One loop: no point in handing it to another thread.
            let dispenser = ChunkDispenser::<MAX_LOOPS>::new();
            run(&dispenser, 0);
            return;
        }
        let dispenser = Box::new(ChunkDispenser::<MAX_LOOPS>::new());
        let (dispenser, run) = (&*dispenser, &run);
        // Helper loops cancelled by `terminate` are harmless: the calling
        // thread's loop claims every chunk no helper claimed.
        self.scope_with(OnCancel::Ignore, |s| {
            for id in 1..loops {
                s.spawn(move || run(dispenser, id));
            }
            run(dispenser, 0); // the caller works too
        });
    }

    /// Calls `f` on every item of `items`, in parallel.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
    /// let seen = AtomicUsize::new(0);
    /// pool.for_each(&[1, 2, 3], |_| { seen.fetch_add(1, Ordering::Relaxed); });
    /// assert_eq!(seen.into_inner(), 3);
    /// ```
    pub fn for_each<T: Sync>(&self, items: &[T], f: impl Fn(&T) + Sync) {
        self.for_each_chunk(0..items.len(), Chunking::Auto, |chunk| {
            items[chunk].iter().for_each(&f);
        });
    }

    /// Maps every item of `items` through `f` in parallel, collecting the
    /// results in order.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.map_slice(&[1, 2, 3], |x| x * 10), [10, 20, 30]);
    /// ```
    pub fn map_slice<T: Sync, U: Send>(&self, items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
        let mut out: Vec<MaybeUninit<U>> = Vec::with_capacity(items.len());
        // SAFETY: `MaybeUninit` needs no initialization.
        unsafe { out.set_len(items.len()) };
        let dst = SendPtr(out.as_mut_ptr());
        let dst = &dst;
        self.for_each_chunk(0..items.len(), Chunking::Auto, |chunk| {
            for i in chunk {
                // SAFETY: `i < items.len() == out.len()`, and the dispenser gives
                // each index to exactly one chunk, so each element is written once
                // and by one thread, while `out` outlives the scope.
                unsafe { dst.0.add(i).write(MaybeUninit::new(f(&items[i]))) };
            }
        });
        // Every element was written (a panic would have unwound past here,
        // leaking the written ones — never reading unwritten ones).
        let mut out = std::mem::ManuallyDrop::new(out);
        // SAFETY: all `len` elements are initialized, and `MaybeUninit<U>` has
        // the layout of `U`; the allocation is handed over unchanged.
        unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<U>(), out.len(), out.capacity()) }
    }

    /// Maps each index of `range` through `map` and combines the results with
    /// `reduce`, starting each worker from `identity()`. `reduce` must be
    /// associative and commutative (chunks finish in any order).
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::Chunking;
    /// use ply_os::thread::ThreadPool;
    /// let pool = ThreadPool::new(2).unwrap();
    /// let sum_sq = pool.reduce(0..1000, Chunking::Auto, || 0u64, |i| (i * i) as u64, |a, b| a + b);
    /// assert_eq!(sum_sq, (0..1000u64).map(|i| i * i).sum());
    /// ```
    pub fn reduce<U, I, M, R>(
        &self,
        range: Range<usize>,
        chunking: Chunking,
        identity: I,
        map: M,
        reduce: R,
    ) -> U
    where
        U: Send,
        I: Fn() -> U + Sync,
        M: Fn(usize) -> U + Sync,
        R: Fn(U, U) -> U + Sync,
    {
        self.fold_chunks(range, chunking, &identity, &reduce, |chunk| {
            chunk.fold(identity(), |acc, i| reduce(acc, map(i)))
        })
    }

    /// Like [`reduce`](Self::reduce) over the items of a slice: each chunk is
    /// folded as a slice (no per-item bounds checks, so the compiler can
    /// vectorize `map`). `reduce` must be associative and commutative.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::partition::Chunking;
    /// use ply_os::thread::ThreadPool;
    /// let pool = ThreadPool::new(2).unwrap();
    /// let data: Vec<u64> = (1..=100).collect();
    /// let sum_sq = pool.reduce_slice(&data, Chunking::Auto, || 0, |x| x * x, |a, b| a + b);
    /// assert_eq!(sum_sq, 338_350);
    /// ```
    pub fn reduce_slice<T, U, I, M, R>(
        &self,
        items: &[T],
        chunking: Chunking,
        identity: I,
        map: M,
        reduce: R,
    ) -> U
    where
        T: Sync,
        U: Send,
        I: Fn() -> U + Sync,
        M: Fn(&T) -> U + Sync,
        R: Fn(U, U) -> U + Sync,
    {
        self.fold_chunks(0..items.len(), chunking, &identity, &reduce, |chunk| {
            items[chunk]
                .iter()
                .fold(identity(), |acc, x| reduce(acc, map(x)))
        })
    }

    /// Folds every chunk of `range` with `fold_chunk`, then combines the
    /// per-chunk results with `reduce` (in no particular order).
    fn fold_chunks<U, I, R>(
        &self,
        range: Range<usize>,
        chunking: Chunking,
        identity: &I,
        reduce: &R,
        fold_chunk: impl Fn(Range<usize>) -> U + Sync,
    ) -> U
    where
        U: Send,
        I: Fn() -> U + Sync,
        R: Fn(U, U) -> U + Sync,
    {
        let partials = Mutex::new(Vec::new());
        self.for_each_chunk(range, chunking, |chunk| {
            let part = fold_chunk(chunk);
            partials
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(part);
        });
        partials
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .fold(identity(), reduce)
    }
}
