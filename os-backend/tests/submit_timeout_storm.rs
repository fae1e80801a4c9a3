//! `submit_timeout` on both pools from many threads at once, with every
//! kind of timeout (zero, a microsecond, a millisecond, `Duration::MAX`),
//! panicking tasks among the others, and the pool shut down or terminated
//! in the middle. Every task is counted: an accepted one runs exactly once
//! (or, terminated, never and says so), a refused one never runs; nothing
//! hangs. Plus the thread pool's own task calling it on a full queue.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use common::{assert_no_descendants, serial, watchdog};
use ply_os::process::{Failure, PoolTaskError, ProcessPoolBuilder};
use ply_os::thread::{TaskError, ThreadPool, TrySubmitError};

const TIMEOUTS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_micros(1),
    Duration::from_millis(1),
    Duration::MAX,
];

/// Panics without a message (no panic hook output): the task's number.
fn quiet_panic(i: usize) -> ! {
    std::panic::resume_unwind(Box::new(i))
}

#[test]
fn thread_pool_submit_timeout_storm_counts_every_task() {
    let _serial = serial();
    let _dog = watchdog("thread pool submit_timeout storm", Duration::from_secs(240));
    const THREADS: usize = 6;
    const EACH: usize = 300;
    for terminate in [false, true] {
        let pool = ThreadPool::builder()
            .workers(2)
            .queue_bound(4)
            .build()
            .unwrap();
        let runs: Arc<Vec<AtomicUsize>> =
            Arc::new((0..THREADS * EACH).map(|_| AtomicUsize::new(0)).collect());
        let accepted = Mutex::new(Vec::new());
        let refused = Mutex::new(Vec::new());
        let submitted = AtomicUsize::new(0);
        let start = Barrier::new(THREADS + 1);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (pool, runs, accepted, refused) = (&pool, &runs, &accepted, &refused);
                let (start, submitted) = (&start, &submitted);
                s.spawn(move || {
                    start.wait();
                    for k in 0..EACH {
                        let i = t * EACH + k;
                        let runs = Arc::clone(runs);
                        let task = move || {
                            runs[i].fetch_add(1, SeqCst);
                            if i % 7 == 0 {
                                quiet_panic(i);
                            }
                            i
                        };
                        match pool.submit_timeout(task, TIMEOUTS[k % 4]) {
                            Ok(h) => accepted.lock().unwrap().push((i, h)),
                            // Full or ShutDown: the task came back, unrun.
                            Err(_) => refused.lock().unwrap().push(i),
                        }
                        submitted.fetch_add(1, SeqCst);
                    }
                });
            }
            start.wait();
            while submitted.load(SeqCst) < THREADS * EACH / 3 {
                std::thread::yield_now();
            }
            if terminate {
                pool.terminate();
            } else {
                pool.shutdown();
            }
        });
        let accepted = accepted.into_inner().unwrap();
        let refused = refused.into_inner().unwrap();
        assert_eq!(accepted.len() + refused.len(), THREADS * EACH);
        for i in refused {
            assert_eq!(runs[i].load(SeqCst), 0, "refused task {i} ran");
        }
        for (i, h) in accepted {
            let ran = runs[i].load(SeqCst);
            match h.join() {
                Ok(v) => assert_eq!((v, ran), (i, 1), "task {i}"),
                Err(TaskError::Panicked(_)) => assert_eq!((i % 7, ran), (0, 1), "task {i}"),
                Err(TaskError::Cancelled) => {
                    assert!(terminate, "shutdown cancelled task {i}");
                    assert_eq!(ran, 0, "cancelled task {i} ran");
                }
                Err(e) => panic!("task {i}: {e:?}"),
            }
        }
    }
}

/// A task of the pool that calls `submit_timeout` with `Duration::MAX` on
/// its own full queue is told `Full` at once (waiting on its own pool could
/// deadlock); with `Duration::ZERO` too; the tasks it did queue run once.
#[test]
fn thread_pool_submit_timeout_from_its_own_task_on_a_full_queue() {
    let _serial = serial();
    let _dog = watchdog("submit_timeout from a task", Duration::from_secs(120));
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(1)
            .queue_bound(1)
            .build()
            .unwrap(),
    );
    let runs = Arc::new(AtomicUsize::new(0));
    let (p, r) = (Arc::clone(&pool), Arc::clone(&runs));
    let outer = pool
        .submit(move || {
            let r2 = Arc::clone(&r);
            let queued = p
                .submit_timeout(move || r2.fetch_add(1, SeqCst), Duration::MAX)
                .ok()?;
            let full_max = matches!(
                p.submit_timeout(|| 0, Duration::MAX),
                Err(TrySubmitError::Full(_))
            );
            let full_zero = matches!(
                p.submit_timeout(|| 0, Duration::ZERO),
                Err(TrySubmitError::Full(_))
            );
            Some((queued, full_max, full_zero))
        })
        .unwrap();
    let (queued, full_max, full_zero) = outer.join().unwrap().expect("room for one");
    assert!(full_max && full_zero, "a full queue from inside said Full");
    assert_eq!(queued.join(), Ok(0));
    assert_eq!(runs.load(SeqCst), 1);
}

/// A request: the log to append the task's number to, the number, and
/// whether to panic after logging.
type Logged = (String, u64, bool);

fn logged((log, i, panic): Logged) -> u64 {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("the log");
    file.write_all(format!("{i}\n").as_bytes()).unwrap();
    if panic {
        quiet_panic(i as usize);
    }
    i
}

/// A temporary log file, removed on drop.
struct Log(std::path::PathBuf);

impl Log {
    fn new(name: &str) -> Log {
        let path = std::env::temp_dir().join(format!("ply-{name}-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        Log(path)
    }

    /// How often each of `n` numbers was logged.
    fn counts(&self, n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for line in std::fs::read_to_string(&self.0).unwrap().lines() {
            counts[line.parse::<usize>().unwrap()] += 1;
        }
        counts
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn process_pool_submit_timeout_storm_counts_every_task() {
    let _serial = serial();
    let _dog = watchdog(
        "process pool submit_timeout storm",
        Duration::from_secs(240),
    );
    const THREADS: usize = 4;
    const EACH: usize = 100;
    for terminate in [false, true] {
        let log = Log::new(if terminate {
            "storm-terminate"
        } else {
            "storm-shutdown"
        });
        let path = log.0.to_str().unwrap().to_owned();
        let pool = ProcessPoolBuilder::new()
            .workers(2)
            .queue_bound(4)
            .build(logged)
            .unwrap();
        let accepted = Mutex::new(Vec::new());
        let refused = Mutex::new(Vec::new());
        let submitted = AtomicUsize::new(0);
        let start = Barrier::new(THREADS + 1);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (pool, accepted, refused, path) = (&pool, &accepted, &refused, &path);
                let (start, submitted) = (&start, &submitted);
                s.spawn(move || {
                    start.wait();
                    for k in 0..EACH {
                        let i = t * EACH + k;
                        let request = (path.clone(), i as u64, i % 7 == 0);
                        match pool.submit_timeout(&request, TIMEOUTS[k % 4]) {
                            Ok(h) => accepted.lock().unwrap().push((i, h)),
                            Err(PoolTaskError::QueueFull | PoolTaskError::ShutDown) => {
                                refused.lock().unwrap().push(i)
                            }
                            Err(e) => panic!("submit {i}: {e:?}"),
                        }
                        submitted.fetch_add(1, SeqCst);
                    }
                });
            }
            start.wait();
            while submitted.load(SeqCst) < THREADS * EACH / 3 {
                std::thread::yield_now();
            }
            if terminate {
                pool.terminate();
            } else {
                pool.shutdown();
            }
        });
        let accepted = accepted.into_inner().unwrap();
        let refused = refused.into_inner().unwrap();
        assert_eq!(accepted.len() + refused.len(), THREADS * EACH);
        let outcomes: Vec<_> = accepted.into_iter().map(|(i, h)| (i, h.join())).collect();
        drop(pool);
        let runs = log.counts(THREADS * EACH);
        for i in refused {
            assert_eq!(runs[i], 0, "refused task {i} ran");
        }
        for (i, outcome) in outcomes {
            match outcome {
                Ok(v) => assert_eq!((v, runs[i]), (i as u64, 1), "task {i}"),
                Err(PoolTaskError::Worker {
                    failure: Failure::Panicked(_),
                    ..
                }) => assert_eq!((i % 7, runs[i]), (0, 1), "task {i}"),
                // Terminated: failed before it ran, or killed while it ran.
                Err(PoolTaskError::ShutDown) if terminate => {
                    assert!(runs[i] <= 1, "task {i} ran {} times", runs[i])
                }
                Err(e) => panic!("task {i} (terminate: {terminate}): {e:?}"),
            }
        }
        assert_no_descendants();
    }
}
