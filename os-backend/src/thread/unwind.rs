//! Keeping a task's panics inside the task.
//!
//! A worker thread runs code it does not control: the task itself, and the
//! `Drop` of everything the task touches — its captured values, its result, the
//! payload of its panic. Any of them may panic. A panic that left a worker
//! would end that thread, and with it every task queued behind it, so the pool
//! contains them where they happen: [`drop_quietly`] drops a value and swallows
//! a panic from its `Drop`, and the job runner (`Job::run`) catches whatever a
//! task lets escape. The panic hook still reports each panic on stderr.

use std::any::Any;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Drops `value`; a panic in its `Drop` is caught and its payload dropped in
/// turn. A payload whose own `Drop` panics too is leaked: dropping it again
/// could panic forever, and leaking is safe.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        drop_payload(payload);
    }
}

/// Drops a panic payload caught from a task (see [`drop_quietly`]).
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// The message of a panic payload (reading it runs no user code).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(panic payload is not a string)".to_owned()
    }
}

/// A value dropped quietly wherever it is dropped: for results in flight to a
/// receiver that may be gone (a channel drops its queued messages on the
/// thread that drops the receiver).
pub(crate) struct Quiet<T>(ManuallyDrop<T>);

impl<T> Quiet<T> {
    pub(crate) fn new(value: T) -> Self {
        Quiet(ManuallyDrop::new(value))
    }

    pub(crate) fn into_inner(self) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the value is taken exactly once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T> Drop for Quiet<T> {
    fn drop(&mut self) {
        // SAFETY: `into_inner` forgets `self`, so this is the only take.
        drop_quietly(unsafe { ManuallyDrop::take(&mut self.0) });
    }
}
