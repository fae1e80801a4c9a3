//! [`TaskHandle`]: a process pool task's outcome, its cancellation, and
//! its completion callback.
//!
//! The outcome arrives through the task's route (`reply.rs`): the handle's
//! own channel, or a callback set by [`TaskHandle::on_complete`] or by
//! `as_completed`/`wait`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::lane::Placed;
use super::reply::{Completion, Next, Route};
use super::supervise::{SPIN_BEFORE_SLEEP, Shared};
use crate::ipc::frame;
use crate::process::error::{Failure, PoolTaskError};
use crate::process::wire::Reply;

impl<Resp> TaskHandle<Resp> {
    /// A handle to task `id`, whose outcome comes on `rx` through `route`.
    pub(super) fn new(
        rx: Receiver<Completion>,
        route: Route,
        id: u64,
        placed: Option<Placed>,
        shared: Arc<Shared>,
    ) -> Self {
        TaskHandle {
            rx,
            route,
            id,
            placed,
            shared,
            _resp: PhantomData,
        }
    }
}

/// A handle to one task of a [`ProcessPool`](crate::process::ProcessPool):
/// the same shape as [`thread::TaskHandle`](crate::thread::TaskHandle).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build(|x: u32| x + 1)?;
/// let task = pool.submit(&1)?;
/// match task.join_timeout(Duration::from_secs(30)) {
///     Ok(result) => assert_eq!(result?, 2),
///     Err(_still_running) => unreachable!("one addition takes less than 30 s"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a task's result is only seen through its handle"]
pub struct TaskHandle<Resp> {
    rx: Receiver<Completion>,
    route: Route,
    /// The task's id in its pool, for cancelling.
    id: u64,
    /// The worker channel the task was handed to when submitted, if it
    /// was: `join` spins on its reply.
    placed: Option<Placed>,
    shared: Arc<Shared>,
    _resp: PhantomData<fn() -> Resp>,
}

impl<Resp> TaskHandle<Resp> {
    /// Cancels the task. A task still queued is taken out and never runs
    /// (`join` gives [`PoolTaskError::Cancelled`]); a running one has its
    /// worker killed (`join` gives a [`PoolTaskError::Worker`] whose failure
    /// is [`Failure::Cancelled`](crate::process::Failure::Cancelled); the worker is replaced). A task that
    /// already finished keeps its result. Returns whether the task was
    /// still queued.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_os::process::{Failure, PoolTaskError, ProcessPoolBuilder};
    /// let pool = ProcessPoolBuilder::new().workers(1)
    ///     .build(|ms: u64| std::thread::sleep(Duration::from_millis(ms)))?;
    /// let running = pool.submit(&600_000)?;
    /// let queued = pool.submit(&0)?;
    /// assert!(queued.cancel()); // never runs
    /// assert!(matches!(queued.join(), Err(PoolTaskError::Cancelled)));
    /// // Killed if the worker had taken it by now; else taken out of the queue.
    /// let was_queued = running.cancel();
    /// match running.join() {
    ///     Err(PoolTaskError::Worker { failure: Failure::Cancelled, .. }) => assert!(!was_queued),
    ///     Err(PoolTaskError::Cancelled) => assert!(was_queued),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel(&self) -> bool {
        if self.shared.foreign() {
            return false; // the parent's task, not ours to cancel
        }
        let mut inbox = self.shared.lock();
        if let Some(at) = inbox.queue.iter().position(|t| t.id == self.id) {
            let task = inbox.queue.remove(at).expect("found just now");
            drop(inbox);
            self.shared.room.notify_one();
            let _ = task.reply.send((task.tag, Err(PoolTaskError::Cancelled)));
            return true;
        }
        inbox.cancels.push(self.id);
        drop(inbox);
        self.shared.wake();
        false
    }
}

/// The bound on each sleep of a joiner on its reply. Every outcome that
/// does not come from the worker's own wake (a death, a kill, a reply on
/// the socket, the pool's end) is followed by the supervisor's wake of the
/// same word, so the bound only covers a lost wake-up. It is long on
/// purpose: a futex timeout of about a millisecond becomes the CPU's
/// earliest timer, and arming and cancelling it cost 12 µs of the round
/// trip on our VM (BENCHMARKS.md, issue 15 target 3); 100 ms costs 0.5 µs.
const JOIN_SLEEP_SLICE: Duration = Duration::from_millis(100);

/// How long a joiner yield-spins on a worker its submit woke before it
/// sleeps: a few trivial round trips (5-6 us each after idling here).
const WOKEN_SPIN: Duration = Duration::from_micros(20);

impl<Resp: DeserializeOwned> TaskHandle<Resp> {
    /// Waits for the response.
    ///
    /// # Errors
    ///
    /// [`PoolTaskError`]: the worker failed, the request or response was bad,
    /// or the pool stopped first ([`PoolTaskError::ShutDown`]; also, at
    /// once, in a forked child's copy of the handle, which nothing there
    /// would ever finish).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build(|x: i64| -x)?;
    /// assert_eq!(pool.submit(&5)?.join()?, -5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(self) -> Result<Resp, PoolTaskError> {
        if self.shared.foreign() {
            // A forked child's copy of the parent's task: nobody here
            // delivers it, and its reply is the parent's to take.
            return match self.rx.try_recv() {
                Ok((_, result)) => decode_reply(result),
                Err(_) => Err(PoolTaskError::ShutDown),
            };
        }
        // Named in the channel as spinning on this request's reply while it
        // looks: the worker then rings nobody (`shm_channel.rs`, step 4).
        let spinning = self.placed.as_ref().map(|p| p.channel.spinning(p.seq));
        // A worker this submit woke is usually woken onto this very CPU: it
        // gets the CPU at every look rather than every 64th, and gives it
        // back after its reply (`shm_channel.rs`, steps 3 and 4). Briefly:
        // if it was woken onto a busy CPU instead, this one must go idle
        // for the kernel to pull the worker over.
        let (spin, yield_every) = match &self.placed {
            Some(p) if p.woke => (WOKEN_SPIN, 1),
            _ => (SPIN_BEFORE_SLEEP, 64),
        };
        let spin_until = Instant::now() + spin;
        let mut looks = 0u32;
        loop {
            match self.rx.try_recv() {
                Ok((_, result)) => return decode_reply(result),
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
            }
            if self.take_if_replied() {
                break; // delivered to `rx`, or being settled by the supervisor
            }
            if Instant::now() >= spin_until {
                break;
            }
            looks += 1;
            if looks % yield_every == 0 {
                std::thread::yield_now(); // a core shared with the worker
            } else {
                std::hint::spin_loop();
            }
        }
        if let Some(p) = &self.placed {
            // Asleep on the reply, for the worker to wake (`shm_channel.rs`,
            // step 5); each sleep bounded, the outcome looked at after it.
            loop {
                match self.rx.try_recv() {
                    Ok((_, result)) => return decode_reply(result),
                    Err(std::sync::mpsc::TryRecvError::Empty) => {}
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                }
                // Taken from the worker (its end, a kill, a socket reply):
                // the supervisor delivers the outcome, or runs it again.
                if self.take_if_replied() || !self.shared.lane_holds(p.slot, self.id) {
                    break;
                }
                p.channel.sleep_for_reply(p.seq, JOIN_SLEEP_SLICE);
            }
        }
        drop(spinning);
        // The last look, after the name is cleared: a reply published before
        // is seen here, one published after rang the supervisor.
        self.take_if_replied();
        match self.rx.recv() {
            Ok((_, result)) => decode_reply(result),
            Err(_) => Err(PoolTaskError::ShutDown),
        }
    }

    /// Waits at most `timeout`; gives the handle back if the task is not done.
    ///
    /// # Errors
    ///
    /// `Err(self)` on timeout; the inner result as for [`join`](Self::join).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = ply_os::process::ProcessPoolBuilder::new().workers(1).build(|ms: u64| std::thread::sleep(Duration::from_millis(ms)))?;
    /// let slow = pool.submit(&300)?;
    /// let slow = slow.join_timeout(Duration::from_millis(10)).expect_err("not done yet");
    /// assert!(slow.join_timeout(Duration::from_secs(30)).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<Resp, PoolTaskError>, Self> {
        match self.rx.recv_timeout(timeout) {
            Ok((_, result)) => Ok(decode_reply(result)),
            Err(RecvTimeoutError::Timeout) => Err(self),
            Err(RecvTimeoutError::Disconnected) => Ok(Err(PoolTaskError::ShutDown)),
        }
    }

    /// Calls `f` with the task's outcome when it finishes, instead of a
    /// `join` (Python's `Future.add_done_callback`). `f` runs on the pool's
    /// supervisor thread, or on the thread that cancels the task, or at once
    /// on the calling thread if the task has finished: keep it short, as
    /// every task of the pool waits while it runs. A panic in `f` is
    /// contained where it runs (the panic hook reports it). If the pool
    /// stops first, `f` gets [`PoolTaskError::ShutDown`].
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::mpsc::channel;
    /// let pool = ply_os::process::ProcessPool::builder().workers(1).build(|x: u32| x * 2)?;
    /// let (tx, rx) = channel();
    /// for x in 0..3 {
    ///     let tx = tx.clone();
    ///     pool.submit(&x)?.on_complete(move |r| tx.send(r.unwrap()).unwrap());
    /// }
    /// let mut got: Vec<u32> = (0..3).map(|_| rx.recv().unwrap()).collect();
    /// got.sort();
    /// assert_eq!(got, [0, 2, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_complete<F>(self, f: F)
    where
        F: FnOnce(Result<Resp, PoolTaskError>) + Send + 'static,
        Resp: 'static,
    {
        let mut next = self.route.lock();
        if let Next::Channel(_) = &*next {
            *next = Next::Call(Box::new(move |(_, result)| f(decode_reply(result))));
            return;
        }
        drop(next);
        f(self.join()); // delivered: the outcome is in our channel
    }

    /// Whether the task has finished (its outcome is ready to `join`).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::process::ProcessPool::builder().workers(1).build(|x: u8| x)?;
    /// let task = pool.submit(&1)?;
    /// while !task.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(task.join()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        // In a forked child's copy, `join` returns at once (`ShutDown`).
        self.shared.foreign() || self.route.delivered()
    }

    /// Asks to be told on `tx`, with `index`, when the task finishes (at
    /// once if it has).
    pub(crate) fn notify_on_finish(&self, index: usize, tx: Sender<usize>) {
        if self.shared.foreign() {
            // Finished as far as a forked child's copy goes: its join says
            // `ShutDown` (nothing here would ever deliver it).
            let _ = tx.send(index);
            return;
        }
        self.route.redirect(index, tx);
    }
}

impl<Resp> TaskHandle<Resp> {
    /// Completes the task from its channel (delivered to `rx`) if its
    /// reply is there; returns whether the reply was there.
    fn take_if_replied(&self) -> bool {
        match &self.placed {
            Some(p) if p.channel.replied(p.seq) => {
                self.shared.complete_from_channel(p.slot, Some(self.id));
                true
            }
            _ => false,
        }
    }
}

impl<Resp> fmt::Debug for TaskHandle<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle").finish_non_exhaustive()
    }
}

/// Decodes a worker's reply.
pub(super) fn decode_reply<Resp: DeserializeOwned>(
    result: Result<(Vec<u8>, i32), PoolTaskError>,
) -> Result<Resp, PoolTaskError> {
    let (bytes, pid) = result?;
    match frame::decode::<Reply<Resp>>(&bytes).map_err(PoolTaskError::Corrupt)? {
        Reply::Done(response) => Ok(response),
        Reply::Panicked(message) => Err(PoolTaskError::Worker {
            failure: Failure::Panicked(message),
            attempts: 1,
            pid,
        }),
        Reply::BadRequest(why) => Err(PoolTaskError::BadRequest(why)),
    }
}
