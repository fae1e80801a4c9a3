//! A pool's workers sleep on their channels with no timeout: what ends
//! them, besides the pool's closing request, is the death of their parent
//! (the fork server) or of the pool's process, through `PR_SET_PDEATHSIG`.
//! Here each is injected while every worker sleeps: the fork server killed
//! or stopped, the pool's whole process killed. Every worker ends
//! promptly, nothing hangs, and no child is left.
//!
//! Runs under a watchdog; every wait polls its condition with a deadline.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{assert_no_descendants, serial, watchdog};
use ply_os::fork::fork_child;
use ply_os::process::{PoolTaskError, ProcessPool, ProcessPoolBuilder};

const PATIENCE: Duration = Duration::from_secs(30);

fn double(x: u64) -> u64 {
    2 * x
}

fn pool() -> ProcessPool<u64, u64> {
    ProcessPoolBuilder::new().workers(2).build(double).unwrap()
}

/// `/proc/<pid>/stat`'s state letter; `None` once the process is gone.
fn state_of(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Uses the pool, then waits until every worker sleeps (past its spin).
fn used_then_asleep(pool: &ProcessPool<u64, u64>) -> Vec<i32> {
    for x in 0..20 {
        assert_eq!(pool.submit(&x).unwrap().join().unwrap(), 2 * x);
    }
    let workers = pool.worker_pids();
    assert_eq!(workers.len(), 2);
    wait_until("the idle workers sleep", || {
        workers.iter().all(|&p| state_of(p) == Some('S'))
    });
    workers
}

fn signal(pid: i32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, sig) };
}

/// The fork server killed while its workers sleep: they die with it (their
/// death signal), the pool stops taking tasks, and every call returns.
#[test]
fn a_killed_fork_server_takes_its_sleeping_workers_with_it() {
    let _serial = serial();
    let _dog = watchdog("fork server killed", Duration::from_secs(120));
    for how in ["drop", "shutdown", "terminate", "submit"] {
        let pool = pool();
        let workers = used_then_asleep(&pool);
        signal(pool.server_pid().unwrap(), libc::SIGKILL);
        wait_until("the workers end with their server", || {
            workers
                .iter()
                .all(|&p| matches!(state_of(p), None | Some('Z')))
        });
        match how {
            "submit" => {
                // Refused once the pool has seen its server's end, or
                // failed: never a hang (the watchdog) nor a result.
                wait_until("the pool sees its server gone", || match pool.submit(&1) {
                    Err(PoolTaskError::ShutDown) => true,
                    Ok(h) => h.join().is_err(),
                    Err(_) => true,
                });
            }
            "shutdown" => pool.shutdown(),
            "terminate" => pool.terminate(),
            _ => {}
        }
        drop(pool);
        assert_no_descendants();
    }
}

/// The fork server stopped while its workers sleep: a task still runs (the
/// pool wakes a worker itself), and the pool ends however it is ended.
#[test]
fn a_stopped_fork_server_with_sleeping_workers_still_serves_and_ends() {
    let _serial = serial();
    let _dog = watchdog("fork server stopped", Duration::from_secs(120));
    for how in ["drop", "shutdown", "terminate"] {
        let pool = pool();
        let workers = used_then_asleep(&pool);
        let server = pool.server_pid().unwrap();
        signal(server, libc::SIGSTOP);
        wait_until("the server stops", || state_of(server) == Some('T'));
        assert_eq!(pool.submit(&21).unwrap().join().unwrap(), 42);
        // A worker stopped in its sleep too.
        signal(workers[0], libc::SIGSTOP);
        wait_until("the worker stops", || state_of(workers[0]) == Some('T'));
        match how {
            "shutdown" => pool.shutdown(),
            "terminate" => pool.terminate(),
            _ => {}
        }
        drop(pool);
        assert_no_descendants();
    }
}

/// The pool's whole process killed (`SIGKILL`: no code of it runs) while
/// its workers sleep: the server and every worker end too. The pool runs
/// in a forked child that reports its pids; this process is its parent.
#[test]
fn a_killed_pool_process_takes_its_server_and_sleeping_workers_with_it() {
    let _serial = serial();
    let _dog = watchdog("pool process killed", Duration::from_secs(120));
    let (mut report, theirs) = UnixStream::pair().unwrap();
    let mut child = fork_child(move || {
        let mut theirs = theirs;
        let pool = pool();
        let mut pids = used_then_asleep(&pool);
        pids.push(pool.server_pid().unwrap());
        let line: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
        if writeln!(theirs, "{}", line.join(" ")).is_err() {
            return 2;
        }
        // Killed here; the deadline only bounds a broken test.
        std::thread::sleep(PATIENCE * 2);
        3
    })
    .unwrap();
    report.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut line = String::new();
    let mut byte = [0u8];
    while !line.ends_with('\n') {
        assert_eq!(report.read(&mut byte).unwrap(), 1, "the child reported");
        line.push(byte[0] as char);
    }
    let pids: Vec<i32> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "two workers and the server: {line}");
    child.kill(ply_os::fork::Signal::KILL).unwrap();
    let _ = child.wait_timeout(PATIENCE).unwrap().expect("killed");
    // Orphans are reaped by whoever adopts them, which may be slow to: a
    // zombie has ended.
    wait_until("the server and workers end with the pool's process", || {
        pids.iter()
            .all(|&p| matches!(state_of(p), None | Some('Z')))
    });
    assert_no_descendants();
}
