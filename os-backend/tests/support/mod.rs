//! Helpers shared by the thread-pool tests: a watchdog, a gate, a value whose
//! `Drop` panics, and checks that a pool still has all its workers.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ply_os::thread::ThreadPool;

/// How long any single wait in a test may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

#[path = "../common/watchdog.rs"]
mod watchdog;
pub use watchdog::watchdog;

/// A pool of `workers` threads named `<prefix>-<i>`.
pub fn pool(prefix: &str, workers: usize) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .name_prefix(prefix)
        .build()
        .expect("pool")
}

/// A value whose `Drop` counts itself, then panics.
#[derive(Debug)]
pub struct Bomb(Arc<AtomicUsize>);

impl Bomb {
    pub fn new(drops: &Arc<AtomicUsize>) -> Bomb {
        Bomb(drops.clone())
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
        panic!("Bomb dropped");
    }
}

/// Whether `f` panics.
pub fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

/// Polls `done` until it holds, failing the test after [`PATIENCE`].
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A gate tasks wait at until the test opens it (once, for good).
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    pub fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }

    /// Waits for the gate, failing after [`PATIENCE`].
    pub fn wait(&self) {
        let open = self.0.0.lock().unwrap();
        let (open, timeout) = self
            .0
            .1
            .wait_timeout_while(open, PATIENCE, |o| !*o)
            .unwrap();
        assert!(*open && !timeout.timed_out(), "the gate never opened");
    }
}

/// Names of this process's threads (from /proc).
pub fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim_end().to_owned())
        .collect()
}

/// Threads whose name starts with `prefix` (as the kernel keeps it: 15 bytes).
pub fn threads_named(prefix: &str) -> usize {
    let prefix = &prefix[..prefix.len().min(15)];
    thread_names()
        .iter()
        .filter(|n| n.starts_with(prefix))
        .count()
}

/// Asserts that the pool has `workers` live worker threads, and that each
/// serves: `workers` tasks that wait for one another all finish, which needs
/// one thread per task at once. Returns the ids of those threads, so a test
/// can check that none was lost (and replaced) meanwhile.
pub fn all_workers_serve(pool: &ThreadPool, prefix: &str, workers: usize) -> HashSet<ThreadId> {
    wait_for("the pool's worker threads", || {
        threads_named(prefix) == workers
    });
    let arrived = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let arrived = arrived.clone();
            pool.submit(move || {
                arrived.fetch_add(1, SeqCst);
                let deadline = Instant::now() + PATIENCE;
                while arrived.load(SeqCst) < workers {
                    if Instant::now() > deadline {
                        return None;
                    }
                    std::thread::yield_now();
                }
                Some(std::thread::current().id())
            })
            .unwrap()
        })
        .collect();
    let ids: HashSet<ThreadId> = handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap()
                .expect("fewer workers serve than the pool has")
        })
        .collect();
    assert_eq!(ids.len(), workers);
    ids
}
