//! [`ProcessQueue`]: a blocking multi-process queue in shared memory.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use ply_core::queue::mpmc::ScqQueue;
use ply_core::sync::Park;

use crate::park::FutexPark;
use crate::shm::{SharedBox, ShmSafe};

/// Spins on an empty (or full) queue before sleeping: a busy producer/consumer
/// pair never pays for a system call.
const SPINS_BEFORE_SLEEP: u32 = 100;

struct State<T, const N: usize> {
    queue: ScqQueue<T, N>,
    /// Bumped after every put: getters sleep on it.
    puts: AtomicU32,
    /// Bumped after every get: putters sleep on it.
    gets: AtomicU32,
    /// Getters asleep (or about to be) on `puts`; a putter wakes one if any.
    get_sleepers: AtomicU32,
    /// Putters asleep (or about to be) on `gets`.
    put_sleepers: AtomicU32,
}

// SAFETY: ply-core's `ScqQueue` of `ShmSafe` items and four `AtomicU32`s.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for State<T, N> {}

/// A bounded FIFO queue of plain-data items shared by a process and the
/// children it forks afterwards — Python's `multiprocessing.Queue`, without the
/// pickling and the feeder thread.
///
/// Items live in ply-core's [`ScqQueue`] in a `MAP_SHARED` mapping, so a put and
/// a get are a few atomic operations on shared memory: nothing goes through the
/// kernel while items flow. Blocking `put`/`get` sleep on futexes when the queue
/// is full or empty, so an idle consumer burns no CPU. SCQ stays live when a
/// process is stopped or killed in the middle of an operation (see ply-core's
/// `stall_liveness` tests): at worst the item it was moving is lost.
///
/// `T` must be [`ShmSafe`] (no pointers or references, no heap memory: they
/// would mean nothing in another process) and `Copy`. `N`, the capacity, is a
/// power of two.
///
/// # Example
///
/// A child produces, the parent consumes:
///
/// ```
/// use std::time::Duration;
/// use ply_os::{fork, ipc::ProcessQueue};
///
/// let queue = ProcessQueue::<u64, 8>::new()?;
/// fork::scope(|s| {
///     let child = s.fork_child(|| {
///         for i in 0..100 {
///             queue.put(i);
///         }
///         0
///     })?;
///     let mut sum = 0;
///     for _ in 0..100 {
///         sum += queue.get_timeout(Duration::from_secs(10)).expect("producer stalled");
///     }
///     assert_eq!(sum, 4950);
///     assert!(child.wait()?.success());
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ProcessQueue<T, const N: usize> {
    state: SharedBox<State<T, N>>,
}

impl<T: ShmSafe + Copy, const N: usize> ProcessQueue<T, N> {
    /// Maps a new, empty queue.
    ///
    /// # Errors
    ///
    /// The `mmap` error.
    ///
    /// # Example
    ///
    /// ```
    /// let q = ply_os::ipc::ProcessQueue::<u8, 4>::new().unwrap();
    /// assert_eq!(q.try_get(), None);
    /// ```
    pub fn new() -> io::Result<Self> {
        Ok(ProcessQueue {
            state: SharedBox::new(State {
                queue: ScqQueue::new(),
                puts: AtomicU32::new(0),
                gets: AtomicU32::new(0),
                get_sleepers: AtomicU32::new(0),
                put_sleepers: AtomicU32::new(0),
            })?,
        })
    }

    /// Adds `item` unless the queue is full (then it comes back).
    ///
    /// # Example
    ///
    /// ```
    /// let q = ply_os::ipc::ProcessQueue::<u8, 2>::new().unwrap();
    /// assert_eq!(q.try_put(1), Ok(()));
    /// assert_eq!(q.try_put(2), Ok(()));
    /// assert_eq!(q.try_put(3), Err(3)); // full at N = 2
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), T> {
        let s = &*self.state;
        s.queue.push(item)?;
        // Dekker with `get_until`: publish (the push, then this bump), then look
        // for sleepers; a getter registers, then re-checks. All SeqCst.
        s.puts.fetch_add(1, SeqCst);
        if s.get_sleepers.load(SeqCst) != 0 {
            FutexPark.wake_one(&s.puts);
        }
        Ok(())
    }

    /// Takes the oldest item, if any.
    ///
    /// # Example
    ///
    /// ```
    /// let q = ply_os::ipc::ProcessQueue::<u8, 4>::new().unwrap();
    /// q.put(3);
    /// assert_eq!(q.try_get(), Some(3));
    /// ```
    pub fn try_get(&self) -> Option<T> {
        let s = &*self.state;
        let item = s.queue.pop()?;
        s.gets.fetch_add(1, SeqCst);
        if s.put_sleepers.load(SeqCst) != 0 {
            FutexPark.wake_one(&s.gets);
        }
        Some(item)
    }

    /// Adds `item`, sleeping while the queue is full.
    ///
    /// # Example
    ///
    /// ```
    /// let q = ply_os::ipc::ProcessQueue::<u8, 4>::new().unwrap();
    /// q.put(1);
    /// assert_eq!(q.get(), 1);
    /// ```
    pub fn put(&self, item: T) {
        if self.put_until(item, None).is_err() {
            unreachable!("an unbounded put only returns once the item is in");
        }
    }

    /// Adds `item`, waiting at most `timeout` for room; gives it back if none.
    ///
    /// # Errors
    ///
    /// The item, if the queue stayed full for `timeout`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = ply_os::ipc::ProcessQueue::<u8, 1>::new().unwrap();
    /// q.put(1);
    /// assert_eq!(q.put_timeout(2, Duration::from_millis(10)), Err(2));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
        self.put_until(item, Some(Instant::now() + timeout))
    }

    /// Takes the oldest item, sleeping while the queue is empty.
    ///
    /// # Example
    ///
    /// ```
    /// let q = ply_os::ipc::ProcessQueue::<u32, 4>::new().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| q.put(9));
    ///     assert_eq!(q.get(), 9);
    /// });
    /// ```
    pub fn get(&self) -> T {
        loop {
            if let Some(item) = self.get_until(None) {
                return item;
            }
        }
    }

    /// Takes the oldest item, waiting at most `timeout` for one.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = ply_os::ipc::ProcessQueue::<u8, 4>::new().unwrap();
    /// assert_eq!(q.get_timeout(Duration::from_millis(5)), None);
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.get_until(Some(Instant::now() + timeout))
    }

    fn put_until(&self, mut item: T, deadline: Option<Instant>) -> Result<(), T> {
        let s = &*self.state;
        let mut spins = 0;
        loop {
            match self.try_put(item) {
                Ok(()) => return Ok(()),
                Err(back) => item = back,
            }
            if spins < SPINS_BEFORE_SLEEP {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let seen = s.gets.load(SeqCst);
            s.put_sleepers.fetch_add(1, SeqCst);
            let result = self.try_put(item);
            if result.is_ok() {
                s.put_sleepers.fetch_sub(1, SeqCst);
                return Ok(());
            }
            let slept = sleep_on(&s.gets, seen, deadline);
            s.put_sleepers.fetch_sub(1, SeqCst);
            if !slept {
                return self.try_put(item);
            }
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Option<T> {
        let s = &*self.state;
        let mut spins = 0;
        loop {
            if let Some(item) = self.try_get() {
                return Some(item);
            }
            if spins < SPINS_BEFORE_SLEEP {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let seen = s.puts.load(SeqCst);
            s.get_sleepers.fetch_add(1, SeqCst);
            if let Some(item) = self.try_get() {
                s.get_sleepers.fetch_sub(1, SeqCst);
                return Some(item);
            }
            let slept = sleep_on(&s.puts, seen, deadline);
            s.get_sleepers.fetch_sub(1, SeqCst);
            if !slept {
                return self.try_get();
            }
        }
    }
}

/// Sleeps on `word` while it equals `seen`, until `deadline`. `false` once the
/// deadline has passed.
fn sleep_on(word: &AtomicU32, seen: u32, deadline: Option<Instant>) -> bool {
    match deadline {
        None => {
            FutexPark.wait(word, seen);
            true
        }
        Some(deadline) => {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            FutexPark::wait_timeout(word, seen, deadline - now);
            true
        }
    }
}

impl<T, const N: usize> std::fmt::Debug for ProcessQueue<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessQueue")
            .field("capacity", &N)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::scope;

    #[test]
    fn two_children_to_parent_every_item_once_and_idle_get_sleeps() {
        const PER_CHILD: u64 = 50_000;
        let queue = ProcessQueue::<u64, 64>::new().unwrap();
        scope(|s| {
            let children: Vec<_> = (0..2u64)
                .map(|c| {
                    let queue = &queue;
                    s.fork_child(move || {
                        for i in 0..PER_CHILD {
                            queue.put(c * PER_CHILD + i);
                        }
                        0
                    })
                    .unwrap()
                })
                .collect();
            let mut seen = vec![false; 2 * PER_CHILD as usize];
            let mut last = [None::<u64>; 2];
            for _ in 0..2 * PER_CHILD {
                let x = queue
                    .get_timeout(Duration::from_secs(30))
                    .expect("a producer stalled");
                assert!(!seen[x as usize], "duplicate {x}");
                seen[x as usize] = true;
                // FIFO per producer.
                let c = (x / PER_CHILD) as usize;
                assert!(last[c] < Some(x));
                last[c] = Some(x);
            }
            assert!(seen.iter().all(|&s| s));
            for child in children {
                assert!(child.wait().unwrap().success());
            }
        });
        // Empty now: a timed get sleeps and returns None.
        let start = Instant::now();
        assert_eq!(queue.get_timeout(Duration::from_millis(50)), None);
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_full_queue_blocks_the_putter_until_a_get() {
        let queue = ProcessQueue::<u32, 1>::new().unwrap();
        queue.put(1);
        scope(|s| {
            let child = s
                .fork_child(|| {
                    queue.put(2); // blocks until the parent takes 1
                    0
                })
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(queue.get(), 1);
            assert_eq!(queue.get_timeout(Duration::from_secs(30)), Some(2));
            assert!(child.wait().unwrap().success());
        });
    }
}
