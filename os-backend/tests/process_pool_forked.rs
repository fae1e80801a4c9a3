//! A process pool copied into a forked child. The child has the pool's
//! memory, including its mappings of the workers' shared-memory channels,
//! but not its supervisor thread: a submit there would write into the
//! parent's worker's channel (the worker runs the child's request, and the
//! parent, whose next request gets the same number, takes the child's reply
//! for its own), and a shutdown there would join a thread that does not
//! exist (for ever). So in the child the pool takes no task
//! (`ShutDown`), gives up on the parent's tasks at once, and shuts down
//! without waiting; the parent's pool carries on, every task answered with
//! its own result. Plus: pools built and dropped in a loop leave no
//! process, descriptor or mapping behind.
//!
//! Runs under a watchdog; each child is waited for with a deadline.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fifo, assert_no_descendants, serial, watchdog};
use ply_os::fork::{ChildExit, fork_child};
use ply_os::process::{PoolTaskError, ProcessPool, ProcessPoolBuilder, TaskHandle, as_completed};

/// A FIFO to block on (opened for reading) until released, then the value
/// to return.
type Req = (Option<String>, u64);
type Pool = ProcessPool<Req, u64>;

fn handler((fifo, value): Req) -> u64 {
    if let Some(fifo) = fifo {
        let _ = std::fs::read(fifo);
    }
    value
}

fn pool(workers: usize) -> Arc<Pool> {
    Arc::new(
        ProcessPoolBuilder::new()
            .workers(workers)
            .build(handler)
            .unwrap(),
    )
}

/// Waits for a forked child, at most 30 s (it should take milliseconds).
fn child_exit(child: &mut ply_os::fork::ForkedChild) -> ChildExit {
    let exit = child.wait_timeout(Duration::from_secs(30)).unwrap();
    exit.expect("the child hung in its copy of the pool")
}

/// The parent's pool answers every task with its own value.
fn serves_its_own(pool: &Pool) {
    for value in 100..140u64 {
        assert_eq!(pool.submit(&(None, value)).unwrap().join().unwrap(), value);
    }
}

/// The child's copy refuses every way of submitting, and shuts down at
/// once; the parent's idle worker, whose channel the child has mapped,
/// runs none of the child's requests: each of the parent's next tasks
/// gets its own value, not the child's (111..114).
#[test]
fn a_pool_in_a_forked_child_refuses_work_and_leaves_the_parents_workers_alone() {
    let _serial = serial();
    let _dog = watchdog("process pool in a forked child", Duration::from_secs(120));
    let pool = pool(1);
    assert_eq!(pool.submit(&(None, 1)).unwrap().join().unwrap(), 1);
    let copy = Arc::clone(&pool);
    let mut child = fork_child(move || {
        let refused =
            |r: Result<TaskHandle<u64>, PoolTaskError>| matches!(r, Err(PoolTaskError::ShutDown));
        if !refused(copy.submit(&(None, 111))) {
            return 2;
        }
        if !refused(copy.try_submit(&(None, 112))) {
            return 3;
        }
        if !refused(copy.submit_timeout(&(None, 113), Duration::from_secs(600))) {
            return 4;
        }
        if !matches!(
            copy.map([(None::<String>, 114u64)]).next(),
            Some(Err(PoolTaskError::ShutDown))
        ) {
            return 5;
        }
        copy.shutdown(); // would join a supervisor thread this process lacks
        copy.terminate();
        0
    })
    .unwrap();
    assert_eq!(child_exit(&mut child), ChildExit::Exited(0));
    serves_its_own(&pool);
    drop(pool);
    assert_no_descendants();
}

/// The parent's handles copied into the child: a queued task and a
/// running one (its reply is the parent's to take). No supervisor in the
/// child delivers them: each join (or `as_completed`) says `ShutDown` at
/// once rather than wait for ever, and a cancel there cancels nothing.
#[test]
fn the_parents_task_handles_in_a_forked_child_give_up_at_once() {
    let _serial = serial();
    let _dog = watchdog(
        "parent's handles in a forked child",
        Duration::from_secs(120),
    );
    let fifo = Fifo::new("pool-forked-handles");
    let pool = pool(1);
    let running = pool.submit(&(Some(fifo.path()), 10)).unwrap();
    let queued = pool.submit(&(None, 11)).unwrap();
    let batch = pool.submit(&(None, 12)).unwrap();
    let copy = Arc::clone(&pool);
    let mut child = fork_child(move || {
        if queued.cancel() {
            return 2;
        }
        if !queued.is_finished() {
            return 5; // `join` would not wait: it is finished here
        }
        let mut done = as_completed([batch]);
        if !matches!(done.next(), Some((0, Err(PoolTaskError::ShutDown)))) {
            return 6;
        }
        if !matches!(queued.join(), Err(PoolTaskError::ShutDown)) {
            return 3;
        }
        if !matches!(running.join(), Err(PoolTaskError::ShutDown)) {
            return 4;
        }
        drop(copy);
        0
    })
    .unwrap();
    let exit = child.wait_timeout(Duration::from_secs(30)).unwrap();
    fifo.release(); // before asserting: a failure must not leave the worker held
    assert_eq!(exit, Some(ChildExit::Exited(0)), "the child failed or hung");
    serves_its_own(&pool);
    drop(pool);
    assert_no_descendants();
}

/// Descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Mappings of pool channels in this process.
fn channel_mappings() -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .filter(|l| l.contains("ply-pool-channel"))
        .count()
}

/// Pools built, used (a task through the channel, one through the socket)
/// and dropped in a loop, some while their workers sleep, some busy: each
/// leaves no process, descriptor or channel mapping behind.
#[test]
fn pools_built_and_dropped_in_a_loop_leave_nothing_behind() {
    let _serial = serial();
    let _dog = watchdog("pools in a loop", Duration::from_secs(300));
    // The first pool starts what lives as long as the process (the fork
    // counter's registration, the panic hook): counted from after it.
    drop(pool(1));
    assert_no_descendants();
    let fds = open_fds();
    for round in 0..20u64 {
        let pool = pool(2);
        assert_eq!(pool.submit(&(None, round)).unwrap().join().unwrap(), round);
        let big = "x".repeat(64 << 10); // past the channel: the socket
        // Not a FIFO (a name too long to open): answered at once.
        assert_eq!(
            pool.submit(&(Some(big), round)).unwrap().join().unwrap(),
            round
        );
        if round % 2 == 0 {
            let _busy = pool.submit(&(None, round)).unwrap(); // dropped unjoined
        }
        drop(pool);
    }
    assert_no_descendants();
    assert_eq!(channel_mappings(), 0, "channel mappings left behind");
    assert_eq!(open_fds(), fds, "descriptors left behind");
}
