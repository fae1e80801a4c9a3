//! Waiting on many task handles at once, for both pools: `as_completed`
//! (Python's `concurrent.futures.as_completed`) and `wait` (its
//! `concurrent.futures.wait`).
//!
//! Each handle is asked to announce its completion on one channel, with its
//! position; the waiter receives positions in the order the tasks finish and
//! joins those handles, which no longer block. A handle that finished before
//! it was asked announces itself at once, so nothing is missed.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

/// When [`thread::wait`](crate::thread::wait) and
/// [`process::wait`](crate::process::wait) return (Python's `return_when`).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::thread::{ThreadPool, WaitFor, wait};
///
/// let pool = ThreadPool::new(2).unwrap();
/// let handles: Vec<_> = (0..4).map(|i| pool.submit(move || i).unwrap()).collect();
/// let (done, pending) = wait(handles, WaitFor::AllCompleted, Duration::from_secs(60));
/// assert_eq!(done.len(), 4);
/// assert_eq!(pending.len(), 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitFor {
    /// As soon as any task finishes (or is cancelled).
    FirstCompleted,
    /// As soon as any task fails; if none does, when all have finished.
    FirstError,
    /// When every task has finished.
    AllCompleted,
}

/// A handle `Completions` can wait on.
pub(crate) trait Awaitable: Sized {
    /// What joining it gives.
    type Outcome;
    /// Announce the completion on `tx` with `index` (at once if finished).
    fn notify(&self, index: usize, tx: Sender<usize>);
    /// Join (the completion was announced, so this does not block).
    fn join(self) -> Self::Outcome;
    /// Whether the outcome is a failure (for [`WaitFor::FirstError`]).
    fn failed(outcome: &Self::Outcome) -> bool;
}

/// The handles not yet reported, and the channel their completions come on.
pub(crate) struct Completions<H> {
    handles: HashMap<usize, H>,
    rx: Receiver<usize>,
}

impl<H: Awaitable> Completions<H> {
    pub(crate) fn new(handles: impl IntoIterator<Item = H>) -> Self {
        let (tx, rx) = channel();
        let handles = handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                h.notify(i, tx.clone());
                (i, h)
            })
            .collect();
        Completions { handles, rx }
    }

    /// Handles not reported yet.
    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// The next task to finish, waiting until `deadline` (`None`: no limit).
    /// `None` when every handle is reported, or at the deadline.
    pub(crate) fn next_until(&mut self, deadline: Option<Instant>) -> Option<(usize, H::Outcome)> {
        if self.handles.is_empty() {
            return None;
        }
        let index = match deadline {
            None => self.rx.recv().ok()?,
            Some(d) => match self
                .rx
                .recv_timeout(d.saturating_duration_since(Instant::now()))
            {
                Ok(index) => index,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            },
        };
        let handle = self.handles.remove(&index)?;
        Some((index, handle.join()))
    }

    /// Waits until `until` holds or `timeout` passes; returns every task
    /// reported by then (in completion order), those that finished meanwhile
    /// included.
    pub(crate) fn wait(&mut self, until: WaitFor, timeout: Duration) -> Vec<(usize, H::Outcome)> {
        let deadline = Instant::now().checked_add(timeout);
        let mut done = Vec::new();
        let mut satisfied = false;
        while !satisfied {
            let Some((index, outcome)) = self.next_until(deadline) else {
                break; // all reported, or the deadline passed
            };
            satisfied = match until {
                WaitFor::FirstCompleted => true,
                WaitFor::FirstError => H::failed(&outcome),
                WaitFor::AllCompleted => false,
            };
            done.push((index, outcome));
        }
        // Whatever else has finished by now comes along, as in Python.
        while let Ok(index) = self.rx.try_recv() {
            if let Some(handle) = self.handles.remove(&index) {
                done.push((index, handle.join()));
            }
        }
        done
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A handle whose completion the test announces by hand, and whose
    /// join says so on `joined`.
    struct Fake {
        index: usize,
        outcome: Result<u32, ()>,
        announce: Arc<Mutex<Vec<Option<Sender<usize>>>>>,
        joined: Sender<usize>,
    }

    impl Awaitable for Fake {
        type Outcome = Result<u32, ()>;

        fn notify(&self, index: usize, tx: Sender<usize>) {
            self.announce.lock().unwrap()[index] = Some(tx);
        }

        fn join(self) -> Self::Outcome {
            let _ = self.joined.send(self.index); // the helper listens for the first only
            self.outcome
        }

        fn failed(outcome: &Self::Outcome) -> bool {
            outcome.is_err()
        }
    }

    #[test]
    fn first_error_waits_past_successes_for_the_failure() {
        let announce = Arc::new(Mutex::new(vec![None, None, None]));
        let (joined, joins) = channel();
        let outcomes = [Ok(10), Err(()), Ok(12)];
        let fakes = outcomes.iter().enumerate().map(|(index, &outcome)| Fake {
            index,
            outcome,
            announce: Arc::clone(&announce),
            joined: joined.clone(),
        });
        let mut pending = Completions::new(fakes);
        let tx = |i: usize| announce.lock().unwrap()[i].clone().unwrap();
        let (first, second, third) = (tx(0), tx(2), tx(1));
        first.send(0).unwrap();
        // Only once the waiter has taken task 0 does task 2 (a success), and
        // then task 1 (the failure), finish: a wait that stopped at the first
        // success would return before they finish.
        let helper = std::thread::spawn(move || {
            assert_eq!(joins.recv_timeout(Duration::from_secs(60)), Ok(0));
            second.send(2).unwrap();
            third.send(1).unwrap();
        });
        let done = pending.wait(WaitFor::FirstError, Duration::from_secs(60));
        helper.join().unwrap();
        assert_eq!(done, [(0, Ok(10)), (2, Ok(12)), (1, Err(()))]);
        assert_eq!(pending.len(), 0);
    }
}
