//! A watchdog for tests: aborts the test binary if a test runs over its
//! limit, so that a broken timeout or crash path fails CI instead of hanging
//! it. Shared by `common` (process tests) and `support` (thread tests).

use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::time::Duration;

/// Aborts the test binary unless dropped within the limit it was made with.
#[must_use]
pub struct Watchdog(Option<Sender<()>>);

/// Starts a watchdog for the test `name`: drop it (end of the test) within
/// `limit`, or the binary aborts.
pub fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    let (tx, rx) = channel::<()>();
    std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("watchdog: {name} ran over {limit:?}; aborting");
            std::process::abort();
        }
    });
    Watchdog(Some(tx))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}
