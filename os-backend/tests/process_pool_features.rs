//! What users of `concurrent.futures` and `multiprocessing` expect of a
//! process pool: cancelling, a per-worker initializer, and submitting
//! different functions to one pool.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{assert_no_descendants, serial, watchdog};
use ply_os::process::{Failure, PoolTaskError, ProcessPoolBuilder};
use ply_os::shm::SharedBox;

ply_core::shm_safe! {
    /// Runs and starts of tasks, counted in shared memory across processes.
    #[repr(C)]
    struct Counters {
        started: AtomicU32,
        ran_marker: AtomicU32,
    }
}

fn counters() -> &'static Counters {
    let shared = SharedBox::new(Counters {
        started: AtomicU32::new(0),
        ran_marker: AtomicU32::new(0),
    })
    .unwrap();
    Box::leak(Box::new(shared))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A queued task that is cancelled never runs; a running one is killed and
/// reported as cancelled (not as SIGKILL), its worker replaced; a finished
/// one keeps its result.
#[test]
fn cancel_queued_running_and_finished_tasks() {
    let _serial = serial();
    let _dog = watchdog("cancel", Duration::from_secs(60));
    let c = counters();
    let pool = ProcessPoolBuilder::new()
        .workers(1)
        .build_forking(move |job: u32| {
            match job {
                0 => {
                    c.started.fetch_add(1, Ordering::SeqCst);
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                1 => {
                    c.ran_marker.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
            job
        })
        .unwrap();
    let done = pool.submit(&7).unwrap();
    assert_eq!(
        done.join_timeout(Duration::from_secs(30))
            .ok()
            .unwrap()
            .unwrap(),
        7
    );

    let running = pool.submit(&0).unwrap();
    let queued = pool.submit(&1).unwrap();
    wait_until("the long task started", || {
        c.started.load(Ordering::SeqCst) == 1
    });
    assert!(queued.cancel(), "it was still queued");
    assert!(matches!(queued.join(), Err(PoolTaskError::Cancelled)));
    let worker = pool.worker_pids()[0];
    assert!(!running.cancel(), "it was running, not queued");
    let result = running.join();
    assert!(
        matches!(&result, Err(PoolTaskError::Worker { failure: Failure::Cancelled, pid, .. }) if *pid == worker),
        "{result:?}"
    );
    // The pool goes on, on a fresh worker; the cancelled task never ran.
    assert_eq!(pool.submit(&5).unwrap().join().unwrap(), 5);
    assert_ne!(pool.worker_pids(), vec![worker]);
    assert_eq!(
        c.ran_marker.load(Ordering::SeqCst),
        0,
        "a cancelled task ran"
    );
    drop(pool);
    assert_no_descendants();
}

static INITIALIZED: AtomicU32 = AtomicU32::new(0);

fn init() {
    INITIALIZED.fetch_add(1, Ordering::SeqCst);
}

fn init_count(_: ()) -> (u32, u32) {
    (INITIALIZED.load(Ordering::SeqCst), std::process::id())
}

fn bad_init() {
    panic!("no database");
}

/// The initializer runs once in every worker before its first task (in the
/// worker, not here), again in each replacement; a panicking one fails the
/// tasks with its message, without a respawn loop.
#[test]
fn the_initializer_runs_once_per_worker() {
    let _serial = serial();
    let _dog = watchdog("initializer", Duration::from_secs(60));
    let pool = ProcessPoolBuilder::new()
        .workers(1)
        .max_tasks_per_child(2)
        .initializer(init)
        .build(init_count)
        .unwrap();
    let seen: Vec<(u32, u32)> = (0..6)
        .map(|_| pool.submit(&()).unwrap().join().unwrap())
        .collect();
    assert!(seen.iter().all(|&(count, _)| count == 1), "{seen:?}");
    let workers: std::collections::HashSet<u32> = seen.iter().map(|&(_, pid)| pid).collect();
    assert_eq!(workers.len(), 3, "two tasks per worker");
    assert_eq!(
        INITIALIZED.load(Ordering::SeqCst),
        0,
        "it ran in this process"
    );
    drop(pool);

    let failing = ProcessPoolBuilder::new()
        .workers(1)
        .initializer(bad_init)
        .build(init_count)
        .unwrap();
    let worker = failing.worker_pids();
    for _ in 0..3 {
        let err = failing.submit(&()).unwrap().join().unwrap_err();
        assert!(
            matches!(&err, PoolTaskError::Worker { failure: Failure::Panicked(m), .. } if m.contains("initializer") && m.contains("no database")),
            "{err}"
        );
    }
    assert_eq!(failing.worker_pids(), worker, "the worker was not replaced");
    drop(failing);
    assert_no_descendants();
}

fn word_len(s: String) -> usize {
    s.len()
}

/// Different functions, with their own types, on one pool; also on a pool
/// with a handler, and a forked one; a function that panics fails only its
/// task.
#[test]
fn different_functions_on_one_pool() {
    let _serial = serial();
    let _dog = watchdog("submit_fn", Duration::from_secs(60));
    let pool = ProcessPoolBuilder::new()
        .workers(2)
        .build_for_functions()
        .unwrap();
    let a = pool.submit_fn(word_len, &"hello".to_string()).unwrap();
    let b = pool
        .submit_fn(
            |v: Vec<i64>| v.iter().map(|x| x * x).sum::<i64>(),
            &vec![1, -2, 3],
        )
        .unwrap();
    let c = pool
        .submit_fn(|(x, y): (f64, f64)| x.max(y), &(1.5, -3.0))
        .unwrap();
    let d = pool
        .submit_fn(|_: u8| -> u8 { panic!("not this one") }, &0)
        .unwrap();
    assert_eq!(a.join().unwrap(), 5);
    assert_eq!(b.join().unwrap(), 14);
    assert_eq!(c.join().unwrap(), 1.5);
    assert!(matches!(
        d.join(),
        Err(PoolTaskError::Worker { failure: Failure::Panicked(m), .. }) if m.contains("not this one")
    ));
    assert_eq!(
        pool.submit_fn(word_len, &"again".to_string())
            .unwrap()
            .join()
            .unwrap(),
        5
    );
    drop(pool);

    let offset = 100;
    let forked = ProcessPoolBuilder::new()
        .workers(1)
        .build_forking(move |x: u32| x + offset)
        .unwrap();
    assert_eq!(forked.submit(&1).unwrap().join().unwrap(), 101);
    assert_eq!(
        forked
            .submit_fn(word_len, &"abc".to_string())
            .unwrap()
            .join()
            .unwrap(),
        3
    );
    drop(forked);
    assert_no_descendants();
}
