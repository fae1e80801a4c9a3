//! [`ForkSafeOnce`]: one-time setup that a `fork` can never turn into a hang.
//!
//! `std::sync::Once` makes every caller wait while one thread runs the setup.
//! If another thread forks meanwhile, the child inherits the `Once` marked
//! "running" with no thread left to finish it, and its first call waits
//! forever. Setup that a forked child may reach (ply's `atfork` handlers, the
//! panic hook of worker processes) uses this instead. It records *which
//! process* is running the setup: a caller in that process waits for it as
//! `Once` would (the running thread exists), while a caller in a forked child
//! finds another process's mark, knows nobody will finish, and runs the setup
//! itself.

use std::sync::atomic::{AtomicU64, Ordering};

/// The state word: [`DONE`], [`NOT_DONE`], or `pid << 2 | RUNNING` while the
/// process `pid` runs the setup. One word, so the mark and who made it are
/// seen together.
const NOT_DONE: u64 = 0;
const RUNNING: u64 = 1;
const DONE: u64 = 2;

/// A one-time setup that a forked child can always complete.
pub(crate) struct ForkSafeOnce {
    state: AtomicU64,
}

impl ForkSafeOnce {
    pub(crate) const fn new() -> Self {
        ForkSafeOnce {
            state: AtomicU64::new(NOT_DONE),
        }
    }

    /// Runs `setup` unless it has already run to the end; when this returns,
    /// it has. A setup that panics is run again by the next call.
    pub(crate) fn run(&self, setup: impl FnOnce()) {
        // Acquire pairs with the Release store of DONE: who sees DONE sees
        // what the setup did.
        let mut seen = self.state.load(Ordering::Acquire);
        if seen == DONE {
            return;
        }
        let mine = u64::from(std::process::id()) << 2 | RUNNING;
        loop {
            match seen {
                DONE => return,
                // Another thread of this process runs it: wait, as `Once`.
                s if s == mine => std::thread::yield_now(),
                // Not started, or marked by another process (this one was
                // forked mid-setup, and no thread of it will finish): take
                // it. Of this process's threads, one wins the exchange.
                // Relaxed on success: nothing is published by taking it.
                _ => match self.state.compare_exchange(
                    seen,
                    mine,
                    Ordering::Relaxed,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(now) => {
                        seen = now;
                        continue;
                    }
                },
            }
            seen = self.state.load(Ordering::Acquire);
        }
        let reset = ResetOnUnwind(self);
        setup();
        std::mem::forget(reset);
        self.state.store(DONE, Ordering::Release);
    }
}

/// Marks the setup not done if it unwinds, so a later call retries it.
struct ResetOnUnwind<'a>(&'a ForkSafeOnce);

impl Drop for ResetOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.state.store(NOT_DONE, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::fork_child;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn runs_once_among_racing_threads() {
        let once = ForkSafeOnce::new();
        let calls = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    once.run(|| {
                        std::thread::sleep(Duration::from_millis(20));
                        calls.fetch_add(1, Ordering::Relaxed);
                    });
                    // Whoever returns sees the setup done.
                    assert_eq!(calls.load(Ordering::Relaxed), 1);
                });
            }
        });
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_panicking_setup_is_retried() {
        let once = ForkSafeOnce::new();
        let first = std::panic::catch_unwind(|| once.run(|| panic!("setup failed")));
        assert!(first.is_err());
        let mut ran = false;
        once.run(|| ran = true);
        assert!(ran);
    }

    #[test]
    fn a_child_forked_mid_setup_runs_it_itself() {
        static ONCE: ForkSafeOnce = ForkSafeOnce::new();
        static RAN_IN_CHILD: AtomicUsize = AtomicUsize::new(0);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            s.spawn(move || {
                ONCE.run(|| {
                    started_tx.send(()).unwrap();
                    finish_rx.recv().unwrap();
                });
            });
            started_rx.recv().unwrap();
            // The setup is running in the other thread, which the child
            // will not have.
            let mut child = fork_child(|| {
                ONCE.run(|| {
                    RAN_IN_CHILD.fetch_add(1, Ordering::Relaxed);
                });
                i32::try_from(RAN_IN_CHILD.load(Ordering::Relaxed)).unwrap()
            })
            .unwrap();
            let exit = child.wait_timeout(Duration::from_secs(30)).unwrap();
            finish_tx.send(()).unwrap();
            let exit = exit.expect("the child waited for a thread it does not have");
            assert_eq!(
                exit,
                crate::fork::ChildExit::Exited(1),
                "ran once in the child"
            );
        });
        assert_eq!(RAN_IN_CHILD.load(Ordering::Relaxed), 0, "not in the parent");
    }
}
