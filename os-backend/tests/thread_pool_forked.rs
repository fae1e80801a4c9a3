//! A thread pool copied into a forked child (it has none of its workers
//! there): it refuses new tasks, runs none of the parent's queued tasks a
//! second time, runs a scope's spawns inline, and shuts down at once; the
//! parent's pool carries on. Runs under a watchdog; the child is waited for
//! with a deadline.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::channel;
use std::time::Duration;

use ply_os::fork::fork_child;
use ply_os::thread::{SubmitError, ThreadPool, TrySubmitError};
use support::watchdog;

/// Runs of the parent's queued tasks, in whichever process runs them.
static QUEUED_RAN: AtomicUsize = AtomicUsize::new(0);

/// The child's checks; its exit code says which failed (0: none).
fn in_child(pool: Arc<ThreadPool>) -> i32 {
    if pool.submit(|| 1).err() != Some(SubmitError::ShutDown) {
        return 2;
    }
    if !matches!(pool.try_submit(|| 1), Err(TrySubmitError::ShutDown(_))) {
        return 3;
    }
    let spawned = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                spawned.fetch_add(1, SeqCst);
            });
        }
    });
    if spawned.load(SeqCst) != 3 {
        return 4;
    }
    pool.shutdown();
    pool.terminate();
    drop(pool);
    // The parent's queued tasks were copied into this process: none ran here.
    if QUEUED_RAN.load(SeqCst) != 0 {
        return 5;
    }
    0
}

#[test]
fn a_pool_in_a_forked_child_refuses_work_and_shuts_down_at_once() {
    let _dog = watchdog("pool in a forked child", Duration::from_secs(60));
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (started_tx, started) = channel();
    let (release, release_rx) = channel::<()>();
    let busy = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
        .unwrap();
    started.recv().unwrap(); // the only worker is busy: the next ones queue
    let queued: Vec<_> = (0..4)
        .map(|i| {
            pool.submit(move || {
                QUEUED_RAN.fetch_add(1, SeqCst);
                i
            })
            .unwrap()
        })
        .collect();

    let for_child = Arc::clone(&pool);
    let mut child = fork_child(move || in_child(for_child)).unwrap();
    let exit = child.wait_timeout(Duration::from_secs(30)).unwrap();
    let exit = exit.expect("the child hung");
    assert!(exit.success(), "child: {exit:?}");

    release.send(()).unwrap();
    assert_eq!(busy.join(), Ok(()));
    let results: Vec<_> = queued.into_iter().map(|h| h.join()).collect();
    assert_eq!(results, vec![Ok(0), Ok(1), Ok(2), Ok(3)]);
    assert_eq!(QUEUED_RAN.load(SeqCst), 4);
    assert_eq!(pool.submit(|| 5).unwrap().join(), Ok(5));
}

/// Runs of the task queued behind the forking task, in whichever process.
static BEHIND_RAN: AtomicUsize = AtomicUsize::new(0);

/// A task forks: the child's one thread is a copy of a worker, and a join
/// there must not run the parent's queued task (a worker that joins runs
/// queued jobs of its pool meanwhile).
#[test]
fn a_child_forked_by_a_task_does_not_run_the_parents_queued_tasks() {
    let _dog = watchdog("fork from a task", Duration::from_secs(60));
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let p = Arc::clone(&pool);
    let forker = pool
        .submit(move || {
            // Queued on this worker's own run queue, behind this task.
            let behind = p
                .submit(|| {
                    BEHIND_RAN.fetch_add(1, SeqCst);
                    7
                })
                .unwrap();
            let mut child = fork_child(move || {
                let outcome = behind.join_timeout(Duration::from_millis(50));
                if outcome.is_ok() || BEHIND_RAN.load(SeqCst) != 0 {
                    return 2; // the parent's task ran in the child
                }
                if p.submit(|| 1).err() != Some(SubmitError::ShutDown) {
                    return 3;
                }
                0
            })
            .unwrap();
            let exit = child.wait_timeout(Duration::from_secs(30)).unwrap();
            exit.map(|e| e.success())
        })
        .unwrap();
    assert_eq!(forker.join(), Ok(Some(true)), "the child failed or hung");
    drop(pool); // runs the queued task here, once
    assert_eq!(BEHIND_RAN.load(SeqCst), 1);
}
