//! `wait`, `as_completed` and `on_complete` on both pools: every task is
//! reported exactly once, whichever way it ends (value, panic, cancel,
//! shutdown), and every wait returns by its deadline. Tasks are held by
//! gates the test opens, so no outcome depends on timing.

mod common;

use std::collections::HashSet;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use common::{serial, watchdog};
use ply_os::process::{self, PoolTaskError, ProcessPool};
use ply_os::thread::{self, TaskError, TaskHandle, ThreadPool, WaitFor};

/// Long enough never to pass in a test; every wait has it as its limit.
const LIMIT: Duration = Duration::from_secs(60);

/// A task that returns `value` once its gate is opened.
fn gated(pool: &ThreadPool, value: usize) -> (Sender<()>, TaskHandle<usize>) {
    let (open, gate) = channel::<()>();
    let handle = pool
        .submit(move || {
            gate.recv().unwrap();
            value
        })
        .unwrap();
    (open, handle)
}

/// Receives `n` messages, each within the limit.
fn take<T>(rx: &Receiver<T>, n: usize) -> Vec<T> {
    (0..n)
        .map(|_| rx.recv_timeout(LIMIT).expect("a callback never ran"))
        .collect()
}

#[test]
fn thread_on_complete_reports_every_outcome_once() {
    let _dog = watchdog("thread_on_complete", Duration::from_secs(120));
    let pool = ThreadPool::new(3).unwrap();
    let (tx, rx) = channel();
    const N: usize = 300;
    for i in 0..N {
        let tx = tx.clone();
        let handle = pool
            .submit(move || {
                if i % 10 == 3 {
                    panic!("task {i} fails");
                }
                i
            })
            .unwrap();
        handle.on_complete(move |r| tx.send((i, r)).unwrap());
    }
    let mut seen = HashSet::new();
    for (i, r) in take(&rx, N) {
        assert!(seen.insert(i), "task {i} reported twice");
        match r {
            Ok(v) => assert_eq!(v, i),
            Err(TaskError::Panicked(m)) => {
                assert_eq!(i % 10, 3);
                assert!(m.contains(&format!("task {i} fails")));
            }
            Err(e) => panic!("task {i}: {e}"),
        }
    }
    assert_eq!(seen.len(), N);
    drop(pool);
    assert!(rx.try_recv().is_err(), "no extra reports");
}

#[test]
fn thread_on_complete_sees_cancel_and_finished_tasks() {
    let _dog = watchdog("thread_on_complete_cancel", Duration::from_secs(120));
    let pool = ThreadPool::new(1).unwrap();
    let (open, busy) = gated(&pool, 1);
    let queued = pool.submit(|| 2usize).unwrap();
    assert!(queued.cancel());
    let (tx, rx) = channel();
    let t = tx.clone();
    queued.on_complete(move |r| t.send(("queued", r)).unwrap());
    open.send(()).unwrap();
    assert_eq!(busy.join(), Ok(1));
    // A finished task's callback runs at once, on this thread.
    let done = pool.submit(|| 3usize).unwrap();
    while !done.is_finished() {
        std::thread::yield_now();
    }
    let here = std::thread::current().id();
    let t = tx.clone();
    done.on_complete(move |r| {
        assert_eq!(std::thread::current().id(), here);
        t.send(("done", r)).unwrap();
    });
    let mut got = take(&rx, 2);
    got.sort_by_key(|(name, _)| *name);
    assert_eq!(
        got,
        [("done", Ok(3)), ("queued", Err(TaskError::Cancelled))]
    );
}

#[test]
fn thread_callback_panic_costs_no_worker() {
    let _dog = watchdog("thread_callback_panic", Duration::from_secs(120));
    let pool = ThreadPool::new(1).unwrap();
    let (open, h) = gated(&pool, 5);
    h.on_complete(|_| panic!("callback fails"));
    open.send(()).unwrap();
    // The one worker ran the panicking callback and lives on.
    assert_eq!(pool.submit(|| 6).unwrap().join(), Ok(6));
}

#[test]
fn thread_wait_first_completed_then_all() {
    let _dog = watchdog("thread_wait", Duration::from_secs(120));
    let pool = ThreadPool::new(4).unwrap();
    let (gates, handles): (Vec<_>, Vec<_>) = (0..4).map(|i| gated(&pool, i * 10)).unzip();
    // Nothing can finish: the wait ends at its deadline with nothing done.
    let (done, mut pending) =
        thread::wait(handles, WaitFor::AllCompleted, Duration::from_millis(20));
    assert!(done.is_empty());
    assert_eq!(pending.len(), 4);
    gates[2].send(()).unwrap();
    let done = pending.wait(WaitFor::FirstCompleted, LIMIT);
    assert_eq!(done, [(2, Ok(20))]);
    assert_eq!(pending.len(), 3);
    for (i, gate) in gates.iter().enumerate() {
        if i != 2 {
            gate.send(()).unwrap();
        }
    }
    let mut rest = pending.wait(WaitFor::AllCompleted, LIMIT);
    rest.sort_by_key(|(i, _)| *i);
    assert_eq!(rest, [(0, Ok(0)), (1, Ok(10)), (3, Ok(30))]);
    assert_eq!(pending.len(), 0);
    assert_eq!(pending.next(), None);
}

#[test]
fn thread_wait_first_error_stops_at_the_failure() {
    let _dog = watchdog("thread_wait_first_error", Duration::from_secs(120));
    let pool = ThreadPool::new(3).unwrap();
    let (ok_gate, ok) = gated(&pool, 1);
    let (fail_gate, fail_rx) = channel::<()>();
    let fails = pool
        .submit(move || -> usize {
            fail_rx.recv().unwrap();
            panic!("fails")
        })
        .unwrap();
    let (blocked_gate, blocked) = gated(&pool, 3);
    ok_gate.send(()).unwrap();
    // A success alone does not satisfy FirstError.
    let mut pending = thread::as_completed([ok, fails, blocked]);
    assert_eq!(pending.next_timeout(LIMIT), Some((0, Ok(1))));
    fail_gate.send(()).unwrap();
    let done = pending.wait(WaitFor::FirstError, LIMIT);
    assert!(
        matches!(done[..], [(1, Err(TaskError::Panicked(_)))]),
        "{done:?}"
    );
    assert_eq!(pending.len(), 1);
    blocked_gate.send(()).unwrap();
    // With no error left, FirstError waits for all.
    assert_eq!(pending.wait(WaitFor::FirstError, LIMIT), [(2, Ok(3))]);
}

/// A process pool whose tasks sleep `ms` and return it; a negative `ms`
/// panics in the worker.
fn sleeper(workers: usize) -> ProcessPool<i64, i64> {
    ProcessPool::builder()
        .workers(workers)
        .build(|ms: i64| {
            assert!(ms >= 0, "negative");
            std::thread::sleep(Duration::from_millis(ms as u64));
            ms
        })
        .unwrap()
}

#[test]
fn process_on_complete_reports_every_outcome_once() {
    let _serial = serial();
    let _dog = watchdog("process_on_complete", Duration::from_secs(120));
    let pool = sleeper(2);
    let (tx, rx) = channel();
    const N: usize = 100;
    for i in 0..N {
        let tx = tx.clone();
        let ms = if i % 10 == 3 { -1 } else { 0 };
        pool.submit(&ms)
            .unwrap()
            .on_complete(move |r| tx.send((i, r)).unwrap());
    }
    let mut seen = HashSet::new();
    for (i, r) in take(&rx, N) {
        assert!(seen.insert(i), "task {i} reported twice");
        match r {
            Ok(0) => assert_ne!(i % 10, 3),
            Err(PoolTaskError::Worker { .. }) => assert_eq!(i % 10, 3),
            other => panic!("task {i}: {other:?}"),
        }
    }
    assert_eq!(seen.len(), N);
}

#[test]
fn process_on_complete_hears_of_shutdown() {
    let _serial = serial();
    let _dog = watchdog("process_on_complete_shutdown", Duration::from_secs(120));
    let pool = sleeper(1);
    let (tx, rx) = channel();
    for i in 0..3 {
        let tx = tx.clone();
        pool.submit(&600_000)
            .unwrap()
            .on_complete(move |r| tx.send((i, r)).unwrap());
    }
    pool.terminate();
    let mut got = take(&rx, 3);
    got.sort_by_key(|(i, _)| *i);
    for (i, (j, r)) in got.into_iter().enumerate() {
        assert_eq!(i, j);
        assert!(matches!(r, Err(PoolTaskError::ShutDown)), "{r:?}");
    }
}

#[test]
fn process_wait_first_completed_and_first_error() {
    let _serial = serial();
    let _dog = watchdog("process_wait", Duration::from_secs(120));
    let pool = sleeper(3);
    let long = pool.submit(&600_000).unwrap();
    let short = pool.submit(&0).unwrap();
    let (done, pending) = process::wait([long, short], WaitFor::FirstCompleted, LIMIT);
    assert!(matches!(done[..], [(1, Ok(0))]), "{done:?}");
    assert_eq!(pending.len(), 1);
    let long_again = pool.submit(&600_000).unwrap();
    let failing = pool.submit(&-1).unwrap();
    let (done, pending2) = process::wait([long_again, failing], WaitFor::FirstError, LIMIT);
    assert!(
        matches!(done[..], [(1, Err(PoolTaskError::Worker { .. }))]),
        "{done:?}"
    );
    assert_eq!(pending2.len(), 1);
    pool.terminate();
    // The long tasks end with the pool, each reported once.
    for mut rest in [pending, pending2] {
        let out = rest.wait(WaitFor::AllCompleted, LIMIT);
        assert!(
            matches!(out[..], [(0, Err(PoolTaskError::ShutDown))]),
            "{out:?}"
        );
    }
}

#[test]
fn process_as_completed_counts_every_task() {
    let _serial = serial();
    let _dog = watchdog("process_as_completed", Duration::from_secs(120));
    let pool = sleeper(2);
    let handles: Vec<_> = (0..40).map(|i| pool.submit(&(i % 3)).unwrap()).collect();
    let mut seen: Vec<usize> = process::as_completed(handles)
        .map(|(i, r)| {
            assert_eq!(r.unwrap(), (i % 3) as i64);
            i
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (0..40).collect::<Vec<_>>());
}
