//! The pool when its fork server is stopped at the one moment only the
//! server knows how a worker ended: after reaping it, before reporting. (The
//! other points, where the worker is still a zombie, are in
//! `tests/process_faults.rs`.)

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::*;
use crate::process::forkserver::{STOP_AFTER_REAP, spawn_fault};
use crate::process::supervisor::zombie::READ_ZOMBIES;
use crate::process::{Failure, PoolTaskError, Retry, ThreadPolicy};

/// The process's state letter; `?` once it is gone.
fn state_of(pid: i32) -> char {
    crate::test_support::process_state(pid).unwrap_or('?')
}

/// Held by the tests that set switches every forked server or supervisor
/// reads, so that they reach no other test's.
static SWITCHES: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_crash_the_stopped_server_alone_knows_of_fails_within_the_patience() {
    let _switches = SWITCHES.lock().unwrap_or_else(|e| e.into_inner());
    READ_ZOMBIES.store(false, Relaxed);
    STOP_AFTER_REAP.store(true, Relaxed);
    let pool = ProcessPoolBuilder::new()
        .workers(1)
        .retry(Retry::never())
        .threads(ThreadPolicy::Proceed)
        .build_forking(|x: u32| {
            if x == 1 {
                // SAFETY: raise has no memory-safety preconditions.
                unsafe { libc::raise(libc::SIGTERM) };
            }
            x
        });
    STOP_AFTER_REAP.store(false, Relaxed);
    let pool = pool.unwrap();
    let server = pool.server_pid().unwrap();
    let started = Instant::now();
    let task = pool.submit(&1).unwrap();
    let result = task
        .join_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the crash was never reported"));
    READ_ZOMBIES.store(true, Relaxed);
    match &result {
        Err(PoolTaskError::Worker {
            failure: Failure::Unknown(why),
            attempts: 1,
            ..
        }) => assert!(why.contains("fork server"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() >= supervise::STATUS_PATIENCE);
    // Reported while the server is still stopped.
    assert_eq!(state_of(server), 'T');
    // SAFETY: kill has no memory-safety preconditions; the server is alive
    // (stopped), a child of the pool's supervisor thread.
    unsafe { libc::kill(server, libc::SIGCONT) };
    drop(pool);
}

/// Arms `faults` for the next pool this thread builds.
fn arm(faults: &Arc<supervise::StartFaults>) {
    supervise::NEXT_POOL_FAULTS.with(|f| *f.borrow_mut() = Some(Arc::clone(faults)));
}

/// Waits (up to a minute, a watchdog: none of this waits on a race) until
/// `done()`; whether it came.
fn eventually(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn a_first_worker_whose_channel_cannot_be_mapped_fails_the_build_at_once() {
    let faults = Arc::new(supervise::StartFaults::default());
    faults.fail_maps.store(1, Relaxed);
    arm(&faults);
    let built = ProcessPoolBuilder::new().workers(2).build(|x: u32| x + 1);
    let Err(err) = built else {
        panic!("a pool whose first worker could not start was built");
    };
    // Not the start's patience running out ("did not start in time").
    let why = std::error::Error::source(&err).map(|e| e.to_string());
    let why = why.unwrap_or_default();
    assert!(why.contains("could not be mapped"), "{err}: {why}");
    let failed = faults.failed.lock().unwrap().clone();
    assert_eq!(failed.len(), 1);
    // Stopped by the fault, it is ended by a SIGKILL (the supervisor's,
    // or the death signal of the server the failed build ended).
    assert!(eventually(|| matches!(state_of(failed[0]), 'Z' | '?')));
}

#[test]
fn a_replacement_whose_channel_cannot_be_mapped_is_killed_reaped_and_replaced() {
    let faults = Arc::new(supervise::StartFaults::default());
    arm(&faults);
    let pool = ProcessPoolBuilder::new()
        .workers(1)
        .build(|x: u32| x + 1)
        .unwrap();
    let first = pool.worker_pids()[0];
    faults.fail_maps.store(1, Relaxed);
    // SAFETY: kill has no memory-safety preconditions; `first` is a live
    // worker of the pool (its server, the parent, has not reaped it).
    unsafe { libc::kill(first, libc::SIGKILL) };
    // Its replacement's channel fails to map; the slot is tried again and
    // the next one serves.
    let task = pool.submit(&41).unwrap();
    let answer = task
        .join_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no worker came back"));
    assert_eq!(answer.unwrap(), 42);
    let failed = faults.failed.lock().unwrap().clone();
    assert_eq!(failed.len(), 1);
    // Stopped, it ends only by the supervisor's SIGKILL, and the server
    // (its parent) reaps it while the pool lives on.
    assert!(
        eventually(|| state_of(failed[0]) == '?'),
        "the worker whose channel failed is in state {}",
        state_of(failed[0])
    );
    let now = pool.worker_pids();
    assert_eq!(now.len(), 1);
    assert!(now[0] != first && now[0] != failed[0]);
}

/// The server's open descriptors.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn a_spawn_that_fails_at_any_step_leaks_nothing_and_is_tried_again() {
    for step in 1..=3 {
        let pool = {
            let _switches = SWITCHES.lock().unwrap_or_else(|e| e.into_inner());
            // The first worker starts; the server's next spawn fails.
            spawn_fault::STEP.store(step, Relaxed);
            spawn_fault::AFTER.store(1, Relaxed);
            let pool = ProcessPoolBuilder::new()
                .workers(1)
                .threads(ThreadPolicy::Proceed)
                .build_forking(|x: u32| x + 1);
            spawn_fault::STEP.store(0, Relaxed);
            pool.unwrap()
        };
        let server = pool.server_pid().unwrap();
        let first = pool.worker_pids()[0];
        let before = open_fds(server);
        // SAFETY: kill has no memory-safety preconditions; `first` is a
        // live worker of the pool, not reaped by its server.
        unsafe { libc::kill(first, libc::SIGKILL) };
        let answer = pool
            .submit(&41)
            .unwrap()
            .join_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("step {step}: no worker came back"));
        assert_eq!(answer.unwrap(), 42, "step {step}");
        assert_ne!(pool.worker_pids()[0], first, "step {step}");
        // What the failed spawn made (socket pair, memory) is closed: the
        // server holds what it held with one worker before.
        assert!(
            eventually(|| open_fds(server) == before),
            "step {step}: the server holds {} descriptors, {before} before",
            open_fds(server)
        );
    }
}

/// A worker that ends at birth (it exits with `EXIT_BAD_BOOTSTRAP`, as one
/// whose own mapping of its channel fails) is not replaced at once, which
/// would fork in a tight loop while the cause lasts: each replacement is
/// asked for after a pause that doubles.
#[test]
fn a_worker_that_keeps_failing_at_birth_is_replaced_after_growing_pauses() {
    let faults = Arc::new(supervise::StartFaults::default());
    let pool = {
        let _switches = SWITCHES.lock().unwrap_or_else(|e| e.into_inner());
        // The first worker starts; every later one exits at birth.
        spawn_fault::BAD_BOOTSTRAP_FROM.store(1, Relaxed);
        arm(&faults);
        let pool = ProcessPoolBuilder::new()
            .workers(1)
            .threads(ThreadPolicy::Proceed)
            .build_forking(|x: u32| x + 1);
        spawn_fault::BAD_BOOTSTRAP_FROM.store(u32::MAX, Relaxed);
        pool.unwrap()
    };
    let first = pool.worker_pids()[0];
    // SAFETY: kill has no memory-safety preconditions; `first` is a live
    // worker of the pool, not reaped by its server.
    unsafe { libc::kill(first, libc::SIGKILL) };
    // The first worker and five replacements asked for: a pause came
    // before each replacement (spawns read first: each pause is recorded
    // before its spawn).
    assert!(eventually(|| faults.spawns.load(Relaxed) >= 6));
    let spawns = faults.spawns.load(Relaxed);
    let pauses = faults.pauses.lock().unwrap().clone();
    assert!(
        spawns <= 1 + pauses.len(),
        "{spawns} workers asked for, after only {} pauses",
        pauses.len()
    );
    let pause = |ms| Duration::from_millis(ms);
    assert_eq!(pauses[..5], [50, 100, 200, 400, 800].map(pause));
    drop(pool);
}
