//! Mapping an iterator over a pool: ordered [`Map`], unordered [`MapUnordered`],
//! and [`AsCompleted`] over existing handles.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use super::error::TaskError;
use super::job::Job;
use super::pool::ThreadPool;
use super::task::TaskHandle;
use super::unwind::{Quiet, panic_message};

impl ThreadPool {
    /// Applies `f` to every input on the pool, yielding results **in input
    /// order**. Inputs are pulled lazily, with at most `2 × workers` in flight,
    /// so a huge (or endless) iterator is never materialized.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
    /// let squares: Vec<u64> = pool.map(1..=5u64, |x| x * x).map(Result::unwrap).collect();
    /// assert_eq!(squares, [1, 4, 9, 16, 25]);
    /// // An endless input is fine: only what is consumed is computed.
    /// let first: Vec<u64> = pool.map(0u64.., |x| x + 1).take(3).map(Result::unwrap).collect();
    /// assert_eq!(first, [1, 2, 3]);
    /// ```
    pub fn map<I, F, T>(&self, inputs: I, f: F) -> Map<'_, I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        Map {
            pool: self,
            inputs: inputs.into_iter(),
            f: Arc::new(f),
            in_flight: VecDeque::new(),
            limit: 2 * self.workers(),
        }
    }

    /// Like [`map`](Self::map), but yields `(input index, result)` **in
    /// completion order**: fast items are not held up by slow ones.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
    /// let mut got: Vec<(usize, u32)> = pool
    ///     .map_unordered([30u32, 10, 20], |x| x / 10)
    ///     .map(|(i, r)| (i, r.unwrap()))
    ///     .collect();
    /// got.sort();
    /// assert_eq!(got, [(0, 3), (1, 1), (2, 2)]);
    /// ```
    pub fn map_unordered<I, F, T>(
        &self,
        inputs: I,
        f: F,
    ) -> MapUnordered<'_, std::iter::Enumerate<I::IntoIter>, F, T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = channel();
        MapUnordered {
            pool: self,
            inputs: inputs.into_iter().enumerate(),
            f: Arc::new(f),
            tx,
            rx,
            in_flight: 0,
            limit: 2 * self.workers(),
        }
    }
}

/// Ordered results of [`ThreadPool::map`].
///
/// # Example
///
/// ```
/// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
/// let mut lengths = pool.map(["a", "bb", "ccc"], str::len);
/// assert_eq!(lengths.next(), Some(Ok(1)));
/// assert_eq!(lengths.collect::<Vec<_>>(), [Ok(2), Ok(3)]);
/// ```
#[must_use = "iterators are lazy: no input is submitted until the results are pulled"]
pub struct Map<'p, I: Iterator, F, T> {
    pool: &'p ThreadPool,
    inputs: I,
    f: Arc<F>,
    in_flight: VecDeque<TaskHandle<T>>,
    limit: usize,
}

impl<I, F, T> Iterator for Map<'_, I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = Result<T, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.in_flight.len() < self.limit {
            let Some(input) = self.inputs.next() else {
                break;
            };
            let f = Arc::clone(&self.f);
            // Shut down: this input's result is "cancelled", not lost.
            let handle = self
                .pool
                .submit(move || f(input))
                .unwrap_or_else(|_| TaskHandle::cancelled());
            self.in_flight.push_back(handle);
        }
        Some(self.in_flight.pop_front()?.join())
    }
}

/// Results of [`ThreadPool::map_unordered`], in completion order.
///
/// # Example
///
/// ```
/// let pool = ply_os::thread::ThreadPool::new(2).unwrap();
/// let mut sum = 0;
/// for (index, result) in pool.map_unordered(1..=4u32, |x| x * 10) {
///     assert_eq!(result, Ok((index as u32 + 1) * 10)); // each result keeps its index
///     sum += result.unwrap();
/// }
/// assert_eq!(sum, 100);
/// ```
#[must_use = "iterators are lazy: no input is submitted until the results are pulled"]
pub struct MapUnordered<'p, I: Iterator, F, T> {
    pool: &'p ThreadPool,
    inputs: I,
    f: Arc<F>,
    tx: Sender<Reply<T>>,
    rx: Receiver<Reply<T>>,
    in_flight: usize,
    limit: usize,
}

/// An input's index and result, on its way to [`MapUnordered`]. Dropped
/// quietly if the iterator is gone (see [`Quiet`]).
type Reply<T> = Quiet<(usize, Result<T, TaskError>)>;

/// Sends `Cancelled` for its index if dropped before sending a result.
struct SendOnDrop<T> {
    index: usize,
    tx: Option<Sender<Reply<T>>>,
}

impl<T> Drop for SendOnDrop<T> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Quiet::new((self.index, Err(TaskError::Cancelled))));
        }
    }
}

impl<I, X, F, T> Iterator for MapUnordered<'_, I, F, T>
where
    I: Iterator<Item = (usize, X)>,
    X: Send + 'static,
    F: Fn(X) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = (usize, Result<T, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        while self.in_flight < self.limit {
            let Some((index, input)) = self.inputs.next() else {
                break;
            };
            let f = Arc::clone(&self.f);
            let mut reply = SendOnDrop {
                index,
                tx: Some(self.tx.clone()),
            };
            let job = move || {
                let result = catch_unwind(AssertUnwindSafe(|| f(input)))
                    .map_err(|payload| TaskError::Panicked(panic_message(&*payload)));
                if let Some(tx) = reply.tx.take() {
                    let _ = tx.send(Quiet::new((index, result))); // may be gone
                }
            };
            // On shutdown the job is dropped, and its guard reports Cancelled.
            let _ = self.pool.submit_job(Job::new(job));
            self.in_flight += 1;
        }
        if self.in_flight == 0 {
            return None;
        }
        self.in_flight -= 1;
        // Every job in flight sends exactly once (result or Cancelled), and we
        // hold a sender, so this cannot block forever.
        self.rx.recv().ok().map(Quiet::into_inner)
    }
}

/// Yields `(index, result)` for handles as their tasks finish (from
/// [`as_completed`]).
///
/// # Example
///
/// ```
/// use ply_os::thread::{ThreadPool, as_completed};
///
/// let pool = ThreadPool::new(2).unwrap();
/// let handles = (0..3).map(|i| pool.submit(move || i * i).unwrap());
/// let mut results: Vec<(usize, i32)> =
///     as_completed(handles).map(|(i, r)| (i, r.unwrap())).collect();
/// results.sort();
/// assert_eq!(results, [(0, 0), (1, 1), (2, 4)]);
/// ```
#[must_use = "dropping it drops the handles; their results are discarded"]
pub struct AsCompleted<T> {
    handles: HashMap<usize, TaskHandle<T>>,
    rx: Receiver<usize>,
}

/// Waits on many handles at once, yielding `(position, result)` in the order
/// the tasks finish (Python's `concurrent.futures.as_completed`).
///
/// # Example
///
/// ```
/// use std::sync::mpsc::channel;
/// use ply_os::thread::{ThreadPool, as_completed};
///
/// let pool = ThreadPool::new(3).unwrap();
/// // Three tasks that finish when told to, in the order 1, 2, 0.
/// let (gates, handles): (Vec<_>, Vec<_>) = (0..3)
///     .map(|i| {
///         let (go, wait) = channel::<()>();
///         (go, pool.submit(move || { wait.recv().unwrap(); i * 10 }).unwrap())
///     })
///     .unzip();
/// let mut done = as_completed(handles);
/// for i in [1, 2, 0] {
///     gates[i].send(()).unwrap();
///     assert_eq!(done.next(), Some((i, Ok(i * 10))));
/// }
/// assert_eq!(done.next(), None);
/// ```
pub fn as_completed<T>(handles: impl IntoIterator<Item = TaskHandle<T>>) -> AsCompleted<T> {
    let (tx, rx) = channel();
    let handles = handles
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            h.notify_on_finish(i, tx.clone());
            (i, h)
        })
        .collect();
    AsCompleted { handles, rx }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = (usize, Result<T, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.handles.is_empty() {
            return None;
        }
        let index = self.rx.recv().ok()?;
        let handle = self.handles.remove(&index)?;
        Some((index, handle.join()))
    }
}
