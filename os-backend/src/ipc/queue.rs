//! [`ProcessQueue`]: a blocking multi-process queue in shared memory.

use std::io;
use std::time::Duration;

use ply_core::queue::mpmc::ScqQueue;
use ply_core::sync::{EventCount, Patience, RECHECK, Timeout};

use crate::park::{FutexPark, Until};
use crate::shm::{SharedBox, ShmSafe};

struct State<T, const N: usize> {
    queue: ScqQueue<T, N>,
    /// Notified after every send: receivers sleep on it.
    not_empty: EventCount<FutexPark>,
    /// Notified after every recv: senders sleep on it.
    not_full: EventCount<FutexPark>,
}

// SAFETY: ply-core's `ScqQueue` of `ShmSafe` items and two event counts
// (`AtomicU32` words and the zero-sized `FutexPark`).
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for State<T, N> {}

/// A deadline whose parks last at most [`RECHECK`]: a process woken by a send
/// (or recv) and stopped before it takes the item holds on to that one
/// wake-up, so sleepers look at the queue again on their own after that long
/// rather than rely on every peer running.
struct Rechecking(Until);

impl Patience for Rechecking {
    fn keep_waiting(&mut self) -> bool {
        self.0.keep_waiting()
    }

    fn park_timeout(&mut self) -> Timeout {
        self.0.park_timeout().min(Timeout::After(RECHECK))
    }
}

/// A bounded FIFO queue of plain-data items shared by a process and the
/// children it forks afterwards — Python's `multiprocessing.Queue`, without the
/// pickling and the feeder thread.
///
/// Items live in ply-core's [`ScqQueue`] in a `MAP_SHARED` mapping, so a send and
/// a recv are a few atomic operations on shared memory: nothing goes through the
/// kernel while items flow. Blocking `send`/`recv` sleep when the queue is full
/// or empty (ply-core's [`EventCount`] on futexes), so an idle consumer burns
/// no CPU. SCQ stays live when a process is stopped or killed in the middle of
/// an operation (see the workspace's `stall_liveness` tests): at worst the item
/// it was moving is lost. A process stopped or killed while it sleeps in `recv`
/// or `send`, or just woken from it, delays nobody by more than [`RECHECK`].
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
///             queue.send(i);
///         }
///         0
///     })?;
///     let mut sum = 0;
///     for _ in 0..100 {
///         sum += queue.recv_timeout(Duration::from_secs(10)).expect("producer stalled");
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
    /// assert_eq!(q.try_recv(), None);
    /// ```
    pub fn new() -> io::Result<Self> {
        Ok(ProcessQueue {
            state: SharedBox::new(State {
                queue: ScqQueue::new(),
                not_empty: EventCount::with_park(FutexPark),
                not_full: EventCount::with_park(FutexPark),
            })?,
        })
    }

    /// Adds `item` unless the queue is full (then it comes back).
    ///
    /// # Example
    ///
    /// ```
    /// let q = ply_os::ipc::ProcessQueue::<u8, 2>::new().unwrap();
    /// assert_eq!(q.try_send(1), Ok(()));
    /// assert_eq!(q.try_send(2), Ok(()));
    /// assert_eq!(q.try_send(3), Err(3)); // full at N = 2
    /// ```
    pub fn try_send(&self, item: T) -> Result<(), T> {
        self.state.queue.push(item)?;
        self.state.not_empty.notify_one();
        Ok(())
    }

    /// Takes the oldest item, if any.
    ///
    /// # Example
    ///
    /// ```
    /// let q = ply_os::ipc::ProcessQueue::<u8, 4>::new().unwrap();
    /// q.send(3);
    /// assert_eq!(q.try_recv(), Some(3));
    /// ```
    pub fn try_recv(&self) -> Option<T> {
        let item = self.state.queue.pop()?;
        self.state.not_full.notify_one();
        Some(item)
    }

    /// Adds `item`, sleeping while the queue is full.
    ///
    /// # Example
    ///
    /// ```
    /// let q = ply_os::ipc::ProcessQueue::<u8, 4>::new().unwrap();
    /// q.send(1);
    /// assert_eq!(q.recv(), 1);
    /// ```
    pub fn send(&self, item: T) {
        if self.send_until(item, Until::never()).is_err() {
            unreachable!("an unbounded send only returns once the item is in");
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
    /// q.send(1);
    /// assert_eq!(q.send_timeout(2, Duration::from_millis(10)), Err(2));
    /// ```
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
        self.send_until(item, Until::after(timeout))
    }

    /// Takes the oldest item, sleeping while the queue is empty.
    ///
    /// # Example
    ///
    /// ```
    /// let q = ply_os::ipc::ProcessQueue::<u32, 4>::new().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| q.send(9));
    ///     assert_eq!(q.recv(), 9);
    /// });
    /// ```
    pub fn recv(&self) -> T {
        self.recv_until(Until::never())
            .expect("an unbounded recv only returns with an item")
    }

    /// Takes the oldest item, waiting at most `timeout` for one.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = ply_os::ipc::ProcessQueue::<u8, 4>::new().unwrap();
    /// assert_eq!(q.recv_timeout(Duration::from_millis(5)), None);
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Option<T> {
        self.recv_until(Until::after(timeout))
    }

    /// The old name of [`send`](Self::send).
    ///
    /// # Example
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// let q = ply_os::ipc::ProcessQueue::<u8, 4>::new().unwrap();
    /// q.put(1);
    /// assert_eq!(q.get(), 1);
    /// ```
    #[deprecated(since = "0.1.0", note = "renamed `send`, as on every ply channel")]
    pub fn put(&self, item: T) {
        self.send(item)
    }

    /// The old name of [`recv`](Self::recv).
    ///
    /// # Example
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// let q = ply_os::ipc::ProcessQueue::<u8, 4>::new().unwrap();
    /// q.send(2);
    /// assert_eq!(q.get(), 2);
    /// ```
    #[deprecated(since = "0.1.0", note = "renamed `recv`, as on every ply channel")]
    pub fn get(&self) -> T {
        self.recv()
    }

    fn send_until(&self, item: T, until: Until) -> Result<(), T> {
        let mut item = Some(item);
        let put = self.state.not_full.wait_until_with(
            || match self.try_send(item.take()?) {
                Ok(()) => Some(()),
                Err(back) => {
                    item = Some(back);
                    None
                }
            },
            Rechecking(until),
        );
        match (put, item) {
            (Some(()), _) => Ok(()),
            (None, Some(item)) => Err(item),
            (None, None) => unreachable!("a failed send gives the item back"),
        }
    }

    fn recv_until(&self, until: Until) -> Option<T> {
        self.state
            .not_empty
            .wait_until_with(|| self.try_recv(), Rechecking(until))
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
    use crate::fork::{ChildExit, ScopedChild, Signal, scope};
    use std::time::Instant;

    const WATCHDOG: Duration = Duration::from_secs(60);

    use crate::test_support::process_state as state_of;

    fn wait_for_state(child: &ScopedChild<'_>, state: char) {
        let deadline = Instant::now() + WATCHDOG;
        while state_of(child.pid()) != Some(state) {
            assert!(
                Instant::now() < deadline,
                "watchdog: child never reached {state}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn exits_with(mut child: ScopedChild<'_>) -> ChildExit {
        child
            .wait_timeout(WATCHDOG)
            .unwrap()
            .expect("watchdog: child did not finish")
    }

    #[test]
    fn a_getter_stopped_or_killed_in_its_sleep_strands_no_other_getter() {
        for kill_it in [false, true] {
            let queue = ProcessQueue::<u32, 4>::new().unwrap();
            scope(|s| {
                // The first getter falls asleep, then is stopped there: the one
                // wake-up of the next send may go to it and be absorbed.
                let stopped = s.fork_child(|| (queue.recv() != 2) as i32).unwrap();
                wait_for_state(&stopped, 'S');
                stopped.kill(Signal::STOP).unwrap();
                wait_for_state(&stopped, 'T');
                let other = s
                    .fork_child(|| (queue.recv_timeout(WATCHDOG) != Some(1)) as i32)
                    .unwrap();
                wait_for_state(&other, 'S');
                queue.send(1);
                assert!(
                    exits_with(other).success(),
                    "the running getter got the item"
                );
                if kill_it {
                    stopped.kill(Signal::KILL).unwrap();
                    assert_eq!(exits_with(stopped), ChildExit::Signaled(Signal::KILL));
                    // Its registration stays behind; the queue works on.
                    queue.send(3);
                    assert_eq!(queue.recv_timeout(WATCHDOG), Some(3));
                } else {
                    queue.send(2);
                    stopped.kill(Signal::CONT).unwrap();
                    assert!(
                        exits_with(stopped).success(),
                        "resumed, it gets the next item"
                    );
                }
            });
        }
    }

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
                            queue.send(c * PER_CHILD + i);
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
                    .recv_timeout(Duration::from_secs(30))
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
        assert_eq!(queue.recv_timeout(Duration::from_millis(50)), None);
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_full_queue_blocks_the_putter_until_a_get() {
        let queue = ProcessQueue::<u32, 1>::new().unwrap();
        queue.send(1);
        scope(|s| {
            let child = s
                .fork_child(|| {
                    queue.send(2); // blocks until the parent takes 1
                    0
                })
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(queue.recv(), 1);
            assert_eq!(queue.recv_timeout(Duration::from_secs(30)), Some(2));
            assert!(child.wait().unwrap().success());
        });
    }
}
