//! The pool when its fork server is stopped at the one moment only the
//! server knows how a worker ended: after reaping it, before reporting. (The
//! other points, where the worker is still a zombie, are in
//! `tests/process_faults.rs`.)

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::*;
use crate::process::forkserver::STOP_AFTER_REAP;
use crate::process::supervisor::zombie::READ_ZOMBIES;
use crate::process::{Failure, PoolTaskError, Retry, ThreadPolicy};

fn state_of(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .unwrap_or('?')
}

#[test]
fn a_crash_the_stopped_server_alone_knows_of_fails_within_the_patience() {
    // Only this test in the library forks a pool's server, so the switches
    // reach no other test's server or supervisor.
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
