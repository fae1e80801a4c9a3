//! Where a finished task's outcome goes: the handle's own channel, a batch's
//! shared channel (`map_unordered`), or a completion callback.
//!
//! The supervisor (or a submitter cancelling a queued task) delivers each
//! outcome once through the task's [`ReplyTo`]. The handle may re-route it
//! while the task runs ([`Route::redirect`], for `as_completed` and `wait`,
//! or a callback for `on_complete`); one mutex orders the re-routing against
//! the delivery, so an outcome is never lost between two routes. A task
//! dropped undelivered (its pool stopped) delivers `ShutDown` from `Drop`,
//! so a callback is never silently forgotten.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{SendError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::process::error::PoolTaskError;
use crate::thread::drop_payload;

/// What a finished task sends to whoever waits for it: its tag (position in
/// a batch) and the worker's encoded reply with the worker's pid, or why
/// there is none.
pub(crate) type Completion = (usize, Result<(Vec<u8>, i32), PoolTaskError>);

/// A callback that takes a completion.
pub(super) type Callback = Box<dyn FnOnce(Completion) + Send>;

/// Where the completion goes next.
pub(super) enum Next {
    /// A channel (the handle's own, or a batch's).
    Channel(Sender<Completion>),
    /// A callback, run by whoever delivers.
    Call(Callback),
    /// Delivered already.
    Delivered,
}

/// The route of one task's completion, shared by the task and its handle.
#[derive(Clone)]
pub(super) struct Route(Arc<Mutex<Next>>);

impl Route {
    pub(super) fn to(tx: Sender<Completion>) -> Self {
        Route(Arc::new(Mutex::new(Next::Channel(tx))))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Next> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the completion where the route says, once.
    fn deliver(&self, completion: Completion) -> Result<(), SendError<Completion>> {
        let mut next = self.lock();
        match std::mem::replace(&mut *next, Next::Delivered) {
            Next::Channel(tx) => tx.send(completion),
            Next::Call(f) => {
                drop(next); // the callback runs unlocked
                call_contained(f, completion);
                Ok(())
            }
            Next::Delivered => Err(SendError(completion)),
        }
    }

    /// Has the completion, once it is delivered, sent on to the handle's own
    /// channel and then announced on `tx` with `index` (announced at once if
    /// it was delivered already: then it is in the handle's channel).
    pub(super) fn redirect(&self, index: usize, tx: Sender<usize>) {
        let mut next = self.lock();
        match std::mem::replace(&mut *next, Next::Delivered) {
            Next::Channel(own) => {
                *next = Next::Call(Box::new(move |completion| {
                    let _ = own.send(completion);
                    let _ = tx.send(index);
                }));
            }
            Next::Delivered => {
                drop(next);
                let _ = tx.send(index);
            }
            Next::Call(f) => *next = Next::Call(f), // not re-routed twice
        }
    }

    /// Whether the completion was delivered.
    pub(super) fn delivered(&self) -> bool {
        matches!(*self.lock(), Next::Delivered)
    }
}

/// Runs a callback, containing its panic (the panic hook still reports it):
/// it may run on the supervisor's thread, which must live on.
pub(super) fn call_contained(f: Callback, completion: Completion) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(completion))) {
        drop_payload(payload);
    }
}

/// The task's side of a [`Route`]: delivers the completion, or `ShutDown`
/// if the task is dropped undelivered.
pub(crate) struct ReplyTo {
    route: Route,
    tag: usize,
}

impl ReplyTo {
    pub(super) fn new(route: Route, tag: usize) -> Self {
        ReplyTo { route, tag }
    }

    /// Delivers nothing, ever: the task was refused, and the submitter got
    /// the error instead.
    pub(super) fn disarm(self) {
        *self.route.lock() = Next::Delivered;
    }

    /// The task's tag.
    pub(super) fn tag(&self) -> usize {
        self.tag
    }

    /// Delivers `completion` (the waiter may be gone: then it comes back).
    pub(crate) fn send(&self, completion: Completion) -> Result<(), SendError<Completion>> {
        self.route.deliver(completion)
    }
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        let _ = self.route.deliver((self.tag, Err(PoolTaskError::ShutDown)));
    }
}
