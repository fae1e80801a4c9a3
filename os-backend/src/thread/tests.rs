//! Tests that need the engine's insides: a worker lost outside any task (the
//! test-only fault hooks of `engine::faults`) is replaced, or, when none can
//! be started, the pool cancels what is queued. The public behaviour is tested
//! in `os-backend/tests/thread_pool.rs` and `thread_faults.rs`.

use super::*;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

/// Names of this process's threads (from /proc).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim_end().to_owned())
        .collect()
}

/// Aborts the test binary unless dropped within `limit`.
struct Watchdog(Option<mpsc::Sender<()>>);

fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
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

/// Polls until `prefix` names exactly `n` threads, failing after 30 s.
fn wait_for_threads(prefix: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let count = thread_names()
            .iter()
            .filter(|t| t.starts_with(prefix))
            .count();
        if count == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} threads named {prefix}, not {n}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Holds every worker of `pool` in a task until the returned sender is
/// dropped (or 30 s pass); returns once all are held.
fn hold_workers(pool: &ThreadPool) -> (mpsc::Sender<()>, Vec<TaskHandle<()>>) {
    let (release, released) = mpsc::channel::<()>();
    let released = Arc::new(std::sync::Mutex::new(released));
    let (started_tx, started) = mpsc::channel();
    let holders = (0..pool.workers())
        .map(|_| {
            let (released, started_tx) = (released.clone(), started_tx.clone());
            pool.submit(move || {
                started_tx.send(()).unwrap();
                // Each holder in turn waits for the channel to close.
                let rx = released.lock().unwrap();
                let _ = rx.recv_timeout(Duration::from_secs(30));
            })
            .unwrap()
        })
        .collect();
    for _ in 0..pool.workers() {
        started.recv_timeout(Duration::from_secs(30)).unwrap();
    }
    (release, holders)
}

#[test]
fn a_worker_that_dies_outside_a_task_is_replaced() {
    let _dog = watchdog("worker replacement", Duration::from_secs(60));
    let prefix = "ply-replace";
    let pool = ThreadPool::builder()
        .workers(2)
        .name_prefix(prefix)
        .build()
        .unwrap();
    // Three deaths between jobs, five with a job in hand (dropped unrun).
    pool.registry.faults.die_between_jobs.store(3, SeqCst);
    pool.registry.faults.die_holding_job.store(5, SeqCst);
    let handles: Vec<_> = (0..2_000u64)
        .map(|i| pool.submit(move || i).unwrap())
        .collect();
    let (mut ok, mut cancelled) = (0, 0);
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(v) => {
                assert_eq!(v, i as u64);
                ok += 1;
            }
            Err(TaskError::Cancelled) => cancelled += 1,
            Err(e) => panic!("task {i}: {e}"),
        }
    }
    assert_eq!(
        (ok, cancelled),
        (2_000 - 5, 5),
        "the held jobs report Cancelled"
    );
    assert_eq!(pool.registry.faults.die_between_jobs.load(SeqCst), 0);
    assert_eq!(pool.registry.faults.die_holding_job.load(SeqCst), 0);
    // Two workers again, both serving: two tasks that wait for each other.
    wait_for_threads(prefix, 2);
    let barrier = Arc::new(Barrier::new(2));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            pool.submit(move || {
                b.wait();
            })
            .unwrap()
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    drop(pool);
    wait_for_threads(prefix, 0);
}

#[test]
fn a_lost_worker_that_cannot_be_replaced_leaves_the_others_serving() {
    let _dog = watchdog("replacement fails", Duration::from_secs(60));
    let prefix = "ply-noreplace";
    let pool = ThreadPool::builder()
        .workers(2)
        .name_prefix(prefix)
        .build()
        .unwrap();
    pool.registry.faults.fail_spawns.store(1, SeqCst);
    pool.registry.faults.die_between_jobs.store(1, SeqCst);
    let sum: u64 = (0..1_000u64)
        .map(|i| pool.submit(move || i).unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(sum, 999 * 1000 / 2);
    wait_for_threads(prefix, 1);
    assert_eq!(pool.registry.alive.load(SeqCst), 1);
    assert_eq!(pool.submit(|| 5).unwrap().join(), Ok(5));
}

#[test]
fn when_the_last_worker_is_lost_for_good_queued_tasks_are_cancelled() {
    let _dog = watchdog("last worker lost", Duration::from_secs(60));
    for workers in [1, 2] {
        let prefix = "ply-lastlost";
        let pool = ThreadPool::builder()
            .workers(workers)
            .name_prefix(prefix)
            .build()
            .unwrap();
        let (release, holders) = hold_workers(&pool);
        let queued: Vec<_> = (0..20).map(|i| pool.submit(move || i).unwrap()).collect();
        // Each worker dies on its way to the next job; no thread can start.
        pool.registry
            .faults
            .die_between_jobs
            .store(workers as u32, SeqCst);
        pool.registry
            .faults
            .fail_spawns
            .store(workers as u32, SeqCst);
        drop(release);
        for h in holders {
            assert_eq!(h.join(), Ok(()), "the running tasks finished");
        }
        // Every worker dies before it takes another job: none of these ran.
        for h in queued {
            assert_eq!(h.join(), Err(TaskError::Cancelled));
        }
        wait_for_threads(prefix, 0);
        assert_eq!(pool.registry.alive.load(SeqCst), 0);
        assert_eq!(pool.submit(|| 1).err(), Some(SubmitError::ShutDown));
        drop(pool); // joins the dead workers' threads: returns at once
    }
}
