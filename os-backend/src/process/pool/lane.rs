//! A worker slot as the pool's threads share it: the worker's channel and
//! the task it holds, under the inbox lock.
//!
//! Any thread of the pool's process may hand a task to an idle worker (the
//! submitter, at once; the thread that just completed the worker's previous
//! task; the supervisor) and complete a task whose reply is in the channel
//! (the joiner spinning on it; the supervisor, rung by the worker, or
//! seeing the worker's end). Both happen under the inbox lock, so a task is
//! started once and completed once, and the lane, not anything the worker
//! wrote, says which task a worker holds. The supervisor keeps the
//! liveness duties: it watches the workers' ends, kills for timeouts,
//! cancels and corrupt replies, and sends what does not fit the channel.

use std::sync::Arc;
use std::time::Instant;

use super::shm_channel::{REQUEST_CAP, ShmChannel};
use super::supervise::{Inbox, Shared, Task};

/// A worker slot.
#[derive(Debug, Default)]
pub(super) struct Lane {
    /// The current worker's channel, while it is in the fleet.
    pub channel: Option<Arc<ShmChannel>>,
    /// No new task for this worker: it is being killed (a timeout, a
    /// cancel, a corrupt reply).
    pub closed: bool,
    /// The task the worker holds, the sequence number of its request, and
    /// when it was handed over.
    pub task: Option<(Task, u32, Instant)>,
    /// Replies received (progress, for the stall watch).
    pub replies: u64,
    /// Why the worker must be killed, if a joiner found its reply corrupt
    /// (the supervisor kills it).
    pub poisoned: Option<String>,
}

/// Where a task handed to a worker sits: for its joiner to spin on.
#[derive(Debug)]
pub(super) struct Placed {
    pub slot: usize,
    pub channel: Arc<ShmChannel>,
    pub seq: u32,
    /// The worker was asleep: its reply is a wake-up away, not worth
    /// spinning for.
    pub woke: bool,
}

impl Lane {
    /// The channel of an idle worker that may be given a task.
    fn idle(&self) -> Option<&Arc<ShmChannel>> {
        if self.task.is_some() || self.closed || self.poisoned.is_some() {
            return None;
        }
        self.channel.as_ref().filter(|c| !c.retiring())
    }

    /// Whether this lane's worker may be given `task` through its channel.
    pub(super) fn can_take(&self, task: &Task) -> bool {
        task.request.len() <= REQUEST_CAP && self.idle().is_some()
    }

    /// Whether the worker may be given a task sent on its socket.
    pub(super) fn can_take_via_socket(&self) -> bool {
        self.idle().is_some()
    }

    /// Hands `task` to the worker: its bytes through the channel, or (with
    /// `via_socket`, the frame already queued on the socket) announced only.
    /// The caller checked `can_take` (or `can_take_via_socket`).
    /// Returns the channel and whether the worker was asleep.
    pub(super) fn start(
        &mut self,
        task: Task,
        via_socket: bool,
    ) -> Option<(Arc<ShmChannel>, bool)> {
        let channel = self.channel.as_ref()?;
        let (seq, woke) = channel.send_request((!via_socket).then_some(&task.request[..]));
        self.task = Some((task, seq, Instant::now()));
        Some((Arc::clone(channel), woke))
    }

    /// Takes the held task if its reply is in the channel: the task and the
    /// reply's bytes. A reply whose length does not fit poisons the lane
    /// (the task stays, for the supervisor to fail when it kills the
    /// worker).
    fn take_replied(&mut self) -> Option<(Task, Vec<u8>)> {
        let (_, seq, _) = self.task.as_ref()?;
        let channel = self.channel.as_ref()?;
        match channel.take_reply(*seq)? {
            Ok(bytes) => {
                let (task, _, _) = self.task.take().expect("checked");
                self.replies += 1;
                Some((task, bytes))
            }
            Err(why) => {
                self.poisoned.get_or_insert(why);
                None
            }
        }
    }
}

impl Inbox {
    /// Hands `task` to an idle worker through its channel, if one is idle
    /// and nothing waits before it; else gives it back.
    pub(super) fn start_now(&mut self, task: Task) -> Result<Placed, Task> {
        if !self.queue.is_empty() {
            return Err(task);
        }
        let Some(slot) = self.lanes.iter().position(|l| l.can_take(&task)) else {
            return Err(task);
        };
        let (channel, woke) = self.lanes[slot].start(task, false).expect("idle");
        let (_, seq, _) = self.lanes[slot].task.as_ref().expect("started");
        Ok(Placed {
            slot,
            seq: *seq,
            channel,
            woke,
        })
    }

    /// Hands the first queued task to the worker in `slot` if it fits the
    /// channel; returns whether one was handed over.
    fn start_next(&mut self, slot: usize) -> bool {
        let lane = &self.lanes[slot];
        match self.queue.front() {
            Some(task) if lane.can_take(task) => {}
            _ => return false,
        }
        let task = self.queue.pop_front().expect("checked");
        self.lanes[slot].start(task, false);
        true
    }
}

impl Shared {
    /// Whether the worker in `slot` holds task `id`.
    pub(super) fn lane_holds(&self, slot: usize, id: u64) -> bool {
        let inbox = self.lock();
        let held = inbox.lanes.get(slot).and_then(|l| l.task.as_ref());
        held.is_some_and(|(task, _, _)| task.id == id)
    }

    /// Completes the task of the worker in `slot` if its reply is in the
    /// channel (only the task `id`, if given), and hands the worker the next
    /// queued task. Wakes the supervisor if it must look: a poisoned lane, a
    /// task left queued (it may need the socket), a new deadline, a pool
    /// draining to close.
    pub(super) fn complete_from_channel(&self, slot: usize, id: Option<u64>) {
        let mut inbox = self.lock();
        let Some(lane) = inbox.lanes.get_mut(slot) else {
            return;
        };
        let holds = lane.task.as_ref().map(|(t, _, _)| t.id);
        if holds.is_none() || id.is_some_and(|id| holds != Some(id)) {
            return;
        }
        let done = lane.take_replied();
        let poisoned = lane.poisoned.is_some();
        let closing = inbox.closed;
        let pid = inbox.pids.get(slot).copied().flatten().unwrap_or(0);
        let (started, queued) = if done.is_some() {
            let started = inbox.start_next(slot);
            (started, !inbox.queue.is_empty())
        } else {
            (false, false)
        };
        drop(inbox);
        if started {
            self.room.notify_one();
        }
        if poisoned || queued || closing || (started && self.wake_on_start) {
            self.wake();
        }
        if let Some((task, bytes)) = done {
            task.finish(Ok((bytes, pid)));
        }
    }
}
