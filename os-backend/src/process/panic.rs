//! A worker's panic, told as the worker's.
//!
//! Rust's default panic hook prints `thread 'main' panicked at ...`. In a
//! forked worker the thread is the parent's forking thread, often `main`, so
//! the line reads as if the *parent* had crashed. [`install`] wraps the
//! process's panic hook once: on a thread running worker code (marked by
//! [`in_worker`]) it prints `ply: worker process <pid> (<what>) panicked at
//! <where>: <message>` instead, and keeps where it happened for the report
//! sent to the parent; everywhere else it calls the hook it wrapped.

use std::any::Any;
use std::cell::RefCell;
use std::fmt::Display;

use crate::once::ForkSafeOnce;

thread_local! {
    /// What this thread is working on, when it runs worker code, and where
    /// its last panic happened.
    static CONTEXT: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

/// Wraps the panic hook (once per process). Call it in the parent, before
/// forking workers: setting a hook takes a process-wide lock, which a child
/// should not need.
pub(crate) fn install() {
    // Not `Once`: a worker may itself fork workers, and must not wait for a
    // thread of its parent that was installing the hook at the fork.
    static ONCE: ForkSafeOnce = ForkSafeOnce::new();
    ONCE.run(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let handled = CONTEXT
                .try_with(|c| {
                    let mut c = c.try_borrow_mut().ok()?;
                    let (what, location) = c.as_mut()?;
                    let at = info
                        .location()
                        .map_or_else(|| "an unknown place".to_owned(), |l| l.to_string());
                    eprintln!(
                        "ply: worker process {} ({what}) panicked at {at}: {}",
                        std::process::id(),
                        message(info.payload())
                    );
                    *location = Some(at);
                    Some(())
                })
                .ok()
                .flatten();
            if handled.is_none() {
                previous(info);
            }
        }));
    });
}

/// Runs `f` as worker code working on `what` (for example "items 0..100"):
/// a panic in it is printed as the worker's. Returns `f`'s value, or the
/// panic's message with where it happened.
pub(crate) fn in_worker<T>(what: impl Display, f: impl FnOnce() -> T) -> Result<T, String> {
    CONTEXT.with(|c| *c.borrow_mut() = Some((what.to_string(), None)));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let location = CONTEXT.with(|c| c.borrow_mut().take().and_then(|(_, at)| at));
    result.map_err(|payload| match location {
        Some(at) => format!("{} (at {at})", message(&*payload)),
        None => message(&*payload),
    })
}

/// A panic payload's message.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    crate::thread::panic_message(payload)
}
