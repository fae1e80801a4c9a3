//! Tests of the thread pool: every capability, plus the failure modes (panics,
//! timeouts, full queues, shutdown, nesting) and the no-leak/no-burn promises.
//! Each runs under a watchdog that aborts the test binary rather than hang.

mod support;

use ply_core::partition::Chunking;
use ply_os::thread::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};
use support::{thread_names, watchdog};

fn pool(workers: usize) -> ThreadPool {
    ThreadPool::new(workers).expect("pool")
}

/// CPU time (user + system, in clock ticks) of the threads whose name starts
/// with `prefix`.
fn cpu_ticks_of(prefix: &str) -> u64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            if !comm.starts_with(prefix) {
                return None;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            // After the command: state is field 0, utime 11, stime 12.
            Some(fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?)
        })
        .sum()
}

#[test]
fn submit_and_join_every_result() {
    let _dog = watchdog("submit_and_join_every_result", Duration::from_secs(120));
    let pool = pool(3);
    let handles: Vec<_> = (0..1000u64)
        .map(|i| pool.submit(move || i * 2).unwrap())
        .collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 999 * 1000);
}

#[test]
fn a_panic_fails_only_its_task_and_the_pool_keeps_its_workers() {
    let _dog = watchdog(
        "a_panic_fails_only_its_task_and_the_pool_keeps_its_workers",
        Duration::from_secs(120),
    );
    let pool = pool(2);
    for i in 0..20 {
        let h = pool
            .submit(move || -> u32 { panic!("task {i} failed") })
            .unwrap();
        assert_eq!(
            h.join(),
            Err(TaskError::Panicked(format!("task {i} failed")))
        );
    }
    let other = pool
        .submit(|| -> () { std::panic::panic_any(42u8) })
        .unwrap();
    assert_eq!(
        other.join(),
        Err(TaskError::Panicked(
            "(panic payload is not a string)".into()
        ))
    );
    // Both workers are still there: two tasks that wait for each other finish.
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
        assert!(h.join().is_ok());
    }
}

#[test]
fn join_timeout_gives_the_handle_back_and_is_finished_reports() {
    let _dog = watchdog(
        "join_timeout_gives_the_handle_back_and_is_finished_reports",
        Duration::from_secs(120),
    );
    let pool = pool(1);
    let (tx, rx) = mpsc::channel::<()>();
    let h = pool
        .submit(move || {
            rx.recv().unwrap();
            7
        })
        .unwrap();
    assert!(!h.is_finished());
    let h = h.join_timeout(Duration::from_millis(20)).unwrap_err();
    tx.send(()).unwrap();
    let result = h.join_timeout(Duration::from_secs(30));
    assert_eq!(result.ok(), Some(Ok(7)));
    let done = pool.submit(|| ()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done.is_finished() {
        assert!(Instant::now() < deadline);
        std::thread::yield_now();
    }
}

#[test]
fn back_pressure_try_submit_fails_when_full_and_submit_waits() {
    let _dog = watchdog(
        "back_pressure_try_submit_fails_when_full_and_submit_waits",
        Duration::from_secs(120),
    );
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_bound(2)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let blocker = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            rx.recv().unwrap()
        })
        .unwrap();
    // Wait until the worker has taken the blocker, so the queue is empty.
    started.recv().unwrap();
    let a = pool.try_submit(|| 1).unwrap();
    let b = pool.try_submit(|| 2).unwrap();
    let refused = pool.try_submit(|| 3);
    assert!(matches!(refused, Err(TrySubmitError::Full(_))));
    assert_eq!(
        refused.unwrap_err().into_inner()(),
        3,
        "the task comes back"
    );
    std::thread::scope(|s| {
        // A blocking submit waits for room, then succeeds.
        let waiting = s.spawn(|| pool.submit(|| 4).unwrap().join());
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !waiting.is_finished(),
            "submit must block while the queue is full"
        );
        tx.send(()).unwrap();
        assert_eq!(waiting.join().unwrap(), Ok(4));
    });
    assert_eq!((a.join(), b.join(), blocker.join()), (Ok(1), Ok(2), Ok(())));
}

/// A one-worker pool with `queue_bound` 2 whose worker is held by a task
/// until the returned sender sends, and whose queue is then filled with tasks
/// that record their run in `runs[0]` and `runs[1]`.
fn stuck_full_pool(
    runs: &Arc<[AtomicUsize; 3]>,
) -> (ThreadPool, mpsc::Sender<()>, Vec<TaskHandle<usize>>) {
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_bound(2)
        .build()
        .unwrap();
    let (release, release_rx) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let blocker = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            usize::MAX
        })
        .unwrap();
    started.recv().unwrap(); // the worker holds the blocker: the queue is empty
    let mut handles = vec![blocker];
    for i in 0..2 {
        let runs = runs.clone();
        let task = move || {
            runs[i].fetch_add(1, SeqCst);
            i
        };
        // Room is there: a long timeout is never reached.
        handles.push(pool.submit_timeout(task, Duration::from_secs(600)).unwrap());
    }
    (pool, release, handles)
}

#[test]
fn submit_timeout_gives_up_on_a_stuck_pool_then_takes_room_when_it_appears() {
    let _dog = watchdog(
        "submit_timeout_gives_up_on_a_stuck_pool_then_takes_room_when_it_appears",
        Duration::from_secs(120),
    );
    let runs = Arc::new([const { AtomicUsize::new(0) }; 3]);
    let (pool, release, handles) = stuck_full_pool(&runs);
    let timeout = Duration::from_millis(50);
    let start = Instant::now();
    let refused = pool.submit_timeout(|| 99, timeout);
    assert!(start.elapsed() >= timeout, "gave up before the deadline");
    let Err(TrySubmitError::Full(task)) = refused else {
        panic!("a queue full until the deadline must say Full");
    };
    assert_eq!(task(), 99, "the task comes back");
    let r = runs.clone();
    let third = move || {
        r[2].fetch_add(1, SeqCst);
        2
    };
    std::thread::scope(|s| {
        // Waits for room (long timeout), which the release below makes.
        let waiting = s.spawn(|| pool.submit_timeout(third, Duration::from_secs(600)));
        release.send(()).unwrap();
        let third = waiting.join().unwrap().expect("room appeared");
        assert_eq!(third.join(), Ok(2));
    });
    let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    assert_eq!(results, [Ok(usize::MAX), Ok(0), Ok(1)]);
    pool.shutdown();
    let counts: Vec<usize> = runs.iter().map(|n| n.load(SeqCst)).collect();
    assert_eq!(counts, [1, 1, 1], "each accepted task ran exactly once");
}

#[test]
fn submit_timeout_waiting_when_the_pool_is_terminated_says_shut_down() {
    let _dog = watchdog(
        "submit_timeout_waiting_when_the_pool_is_terminated_says_shut_down",
        Duration::from_secs(120),
    );
    let runs = Arc::new([const { AtomicUsize::new(0) }; 3]);
    let (pool, release, handles) = stuck_full_pool(&runs);
    std::thread::scope(|s| {
        let waiting = s.spawn(|| pool.submit_timeout(|| 7, Duration::from_secs(600)));
        // Joins the held worker, so it returns only after the release below.
        let terminating = s.spawn(|| pool.terminate());
        // The worker is still held: only the shutdown can end this wait
        // before its (far) deadline, which the watchdog does not allow.
        let refused = waiting.join().unwrap();
        release.send(()).unwrap(); // before asserting: a failure must not hang
        assert!(matches!(refused, Err(TrySubmitError::ShutDown(_))));
        terminating.join().unwrap();
    });
    let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    assert_eq!(
        results,
        [
            Ok(usize::MAX),
            Err(TaskError::Cancelled),
            Err(TaskError::Cancelled)
        ]
    );
    assert_eq!(runs[0].load(SeqCst) + runs[1].load(SeqCst), 0);
}

#[test]
fn submit_timeout_waiting_when_the_pool_is_shut_down_says_shut_down() {
    let _dog = watchdog(
        "submit_timeout_waiting_when_the_pool_is_shut_down_says_shut_down",
        Duration::from_secs(120),
    );
    let runs = Arc::new([const { AtomicUsize::new(0) }; 3]);
    let (pool, release, handles) = stuck_full_pool(&runs);
    std::thread::scope(|s| {
        let waiting = s.spawn(|| pool.submit_timeout(|| 7, Duration::from_secs(600)));
        let shutting = s.spawn(|| pool.shutdown());
        support::wait_for("the pool to close", || {
            format!("{pool:?}").contains("shut_down: true")
        });
        // Closed with the queue still full: the worker, freed, takes the
        // queued tasks, and the waiter, given a place, sees the pool closed.
        release.send(()).unwrap();
        let refused = waiting.join().unwrap();
        assert!(matches!(refused, Err(TrySubmitError::ShutDown(_))));
        shutting.join().unwrap();
    });
    let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    assert_eq!(results, [Ok(usize::MAX), Ok(0), Ok(1)]);
    let counts: Vec<usize> = runs.iter().map(|n| n.load(SeqCst)).collect();
    assert_eq!(counts, [1, 1, 0]);
}

#[test]
fn submit_timeout_that_runs_out_in_a_shut_down_pool_says_shut_down() {
    let _dog = watchdog(
        "submit_timeout_that_runs_out_in_a_shut_down_pool_says_shut_down",
        Duration::from_secs(120),
    );
    let runs = Arc::new([const { AtomicUsize::new(0) }; 3]);
    let (pool, release, handles) = stuck_full_pool(&runs);
    std::thread::scope(|s| {
        let waiting = s.spawn(|| pool.submit_timeout(|| 7, Duration::from_millis(200)));
        // Its drain waits for the submitter, which only its deadline ends:
        // the worker stays held and no place frees up.
        let shutting = s.spawn(|| pool.shutdown());
        support::wait_for("the pool to close", || {
            format!("{pool:?}").contains("shut_down: true")
        });
        let refused = waiting.join().unwrap();
        release.send(()).unwrap(); // before asserting: a failure must not hang
        assert!(matches!(refused, Err(TrySubmitError::ShutDown(_))));
        shutting.join().unwrap();
    });
    let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    assert_eq!(results, [Ok(usize::MAX), Ok(0), Ok(1)]);
}

#[test]
fn map_is_ordered_and_lazy_with_bounded_inputs_in_flight() {
    let _dog = watchdog(
        "map_is_ordered_and_lazy_with_bounded_inputs_in_flight",
        Duration::from_secs(120),
    );
    let pool = pool(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    // An endless input: only what is consumed (plus the in-flight window) is
    // ever pulled, so memory stays bounded.
    let inputs = (0u64..).inspect(move |_| {
        p.fetch_add(1, SeqCst);
    });
    let out: Vec<u64> = pool
        .map(inputs, |x| x * 3)
        .take(10_000)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..10_000u64).map(|x| x * 3).collect::<Vec<_>>());
    let window = 2 * pool.workers();
    assert!(
        pulled.load(SeqCst) <= 10_000 + window,
        "pulled {}",
        pulled.load(SeqCst)
    );
}

#[test]
fn map_reports_each_panic_in_place() {
    let _dog = watchdog("map_reports_each_panic_in_place", Duration::from_secs(120));
    let pool = pool(2);
    let out: Vec<Result<u32, TaskError>> = pool
        .map(0..6u32, |x| if x == 3 { panic!("three") } else { x })
        .collect();
    assert_eq!(out[2], Ok(2));
    assert_eq!(out[3], Err(TaskError::Panicked("three".into())));
    assert_eq!(out[5], Ok(5));
}

#[test]
fn map_unordered_yields_every_index_once_in_completion_order() {
    let _dog = watchdog(
        "map_unordered_yields_every_index_once_in_completion_order",
        Duration::from_secs(120),
    );
    let pool = pool(2);
    let got: Vec<(usize, u64)> = pool
        .map_unordered((0..2000u64).rev(), |x| x + 1)
        .map(|(i, r)| (i, r.unwrap()))
        .collect();
    assert_eq!(got.len(), 2000);
    let indices: HashSet<usize> = got.iter().map(|&(i, _)| i).collect();
    assert_eq!(indices.len(), 2000);
    for (i, v) in got {
        assert_eq!(v, (1999 - i as u64) + 1, "result belongs to its input");
    }
    // Completion order: the first input, held back until the others are
    // done, comes last.
    let (release, held) = mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    let others_done = Arc::new(AtomicUsize::new(0));
    let od = others_done.clone();
    let mut order = Vec::new();
    for (i, r) in pool.map_unordered([0u32, 1, 2], move |x| {
        if x == 0 {
            held.lock().unwrap().recv().unwrap();
        } else {
            od.fetch_add(1, SeqCst);
        }
    }) {
        r.unwrap();
        order.push(i);
        if others_done.load(SeqCst) == 2 && order.len() == 2 {
            release.send(()).unwrap();
        }
    }
    assert_eq!(order.len(), 3);
    assert_eq!(order[2], 0);
}

#[test]
fn as_completed_yields_in_finish_order_with_positions() {
    let _dog = watchdog(
        "as_completed_yields_in_finish_order_with_positions",
        Duration::from_secs(120),
    );
    let pool = pool(3);
    // Tasks finish when released, in an order the test chooses.
    let (gates, handles): (Vec<_>, Vec<_>) = (0..5u64)
        .map(|i| {
            let (go, wait) = mpsc::channel::<()>();
            let h = pool
                .submit(move || {
                    wait.recv().unwrap();
                    i * 100
                })
                .unwrap();
            (go, h)
        })
        .unzip();
    let mut done = as_completed(handles);
    // Three workers run tasks 0-2; 3 and 4 start as those finish.
    for i in [2usize, 0, 3, 1, 4] {
        gates[i].send(()).unwrap();
        assert_eq!(done.next(), Some((i, Ok(i as u64 * 100))));
    }
    assert_eq!(done.next(), None);
}

#[test]
fn scope_borrows_and_finishes_everything_before_returning() {
    let _dog = watchdog(
        "scope_borrows_and_finishes_everything_before_returning",
        Duration::from_secs(120),
    );
    let pool = pool(2);
    let data: Vec<u64> = (0..10_000).collect();
    let mut partial = [0u64; 10];
    pool.scope(|s| {
        for (chunk, out) in data.chunks(1000).zip(partial.iter_mut()) {
            s.spawn(move || *out = chunk.iter().sum());
        }
    });
    assert_eq!(partial.iter().sum::<u64>(), data.iter().sum::<u64>());
}

#[test]
fn many_scopes_at_once_run_every_spawn_and_child_exactly_once() {
    let _dog = watchdog(
        "many_scopes_at_once_run_every_spawn_and_child_exactly_once",
        Duration::from_secs(120),
    );
    // Six threads open scopes at once: more than the four guest rings, so some
    // scopes take the injector path. Each task also spawns a child from its
    // worker (the worker's own run queue). Small queue bound: every ring and
    // the injector fill up, exercising the fallbacks.
    let pool = ThreadPool::builder()
        .workers(2)
        .queue_bound(16)
        .build()
        .unwrap();
    const PER_SCOPE: usize = 5_000;
    let runs: Vec<Vec<AtomicUsize>> = (0..6)
        .map(|_| (0..2 * PER_SCOPE).map(|_| AtomicUsize::new(0)).collect())
        .collect();
    std::thread::scope(|threads| {
        for counts in &runs {
            let pool = &pool;
            threads.spawn(move || {
                pool.scope(|s| {
                    for i in 0..PER_SCOPE {
                        s.spawn(move || {
                            counts[i].fetch_add(1, SeqCst);
                            s.spawn(move || {
                                counts[PER_SCOPE + i].fetch_add(1, SeqCst);
                            });
                        });
                    }
                });
                // `scope` returned: every task and child ran, once.
                assert!(counts.iter().all(|c| c.load(SeqCst) == 1));
            });
        }
    });
    // Guest rings were given back: a new scope still works and runs all.
    let total = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..100 {
            s.spawn(|| {
                total.fetch_add(1, SeqCst);
            });
        }
    });
    assert_eq!(total.load(SeqCst), 100);
}

#[test]
fn a_spawner_whose_ring_is_full_runs_its_spawns_itself_each_exactly_once() {
    let _dog = watchdog(
        "a_spawner_whose_ring_is_full_runs_its_spawns_itself_each_exactly_once",
        Duration::from_secs(120),
    );
    // The only worker is held, so the spawner's ring (4 places) fills: every
    // later spawn runs on the spawning thread (the first after each look at
    // the full ring counted, the next few on credit), not in the injector.
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_bound(4)
        .build()
        .unwrap();
    const N: usize = 2_000;
    let runs: Vec<AtomicUsize> = (0..N).map(|_| AtomicUsize::new(0)).collect();
    let on_spawner = AtomicUsize::new(0);
    let me = std::thread::current().id();
    let (started_tx, started) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    pool.scope(|s| {
        s.spawn(move || {
            started_tx.send(()).unwrap();
            released
                .recv_timeout(Duration::from_secs(60))
                .expect("released");
        });
        started.recv().unwrap();
        for i in 0..N {
            let (runs, on_spawner) = (&runs, &on_spawner);
            s.spawn(move || {
                runs[i].fetch_add(1, SeqCst);
                if std::thread::current().id() == me {
                    on_spawner.fetch_add(1, SeqCst);
                }
            });
        }
        release.send(()).unwrap();
    });
    assert!(runs.iter().all(|r| r.load(SeqCst) == 1), "each ran once");
    // At most the ring's 4 were left for the worker.
    assert!(on_spawner.load(SeqCst) >= N - 4, "{on_spawner:?}");
}

#[test]
fn a_task_blocked_on_a_later_sibling_does_not_deadlock() {
    let _dog = watchdog(
        "a_task_blocked_on_a_later_sibling_does_not_deadlock",
        Duration::from_secs(120),
    );
    // Batch stealing must leave stolen tasks stealable: with two workers, a
    // waiter blocked on a sibling that sits behind it in the same batch would
    // hang if the batch were private to the thief.
    let pool = pool(2);
    for _ in 0..50 {
        let (tx, rx) = mpsc::channel::<()>();
        let rx = std::sync::Mutex::new(rx);
        pool.scope(|s| {
            s.spawn(|| {
                rx.lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(20))
                    .expect("the sibling never ran");
            });
            for _ in 0..40 {
                s.spawn(|| {});
            }
            let tx = tx.clone();
            s.spawn(move || tx.send(()).unwrap());
        });
    }
}

#[test]
fn scope_re_raises_a_task_panic_after_all_tasks_finish() {
    let _dog = watchdog(
        "scope_re_raises_a_task_panic_after_all_tasks_finish",
        Duration::from_secs(120),
    );
    let pool = pool(2);
    let finished = AtomicUsize::new(0);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(|| panic!("inner"));
            for _ in 0..10 {
                s.spawn(|| {
                    std::thread::sleep(Duration::from_millis(5));
                    finished.fetch_add(1, SeqCst);
                });
            }
        })
    }));
    assert!(caught.is_err());
    assert_eq!(finished.load(SeqCst), 10, "every other task ran to the end");
    // The pool still works.
    assert_eq!(pool.submit(|| 1).unwrap().join(), Ok(1));
}

#[test]
fn nested_submission_and_scopes_do_not_deadlock() {
    let _dog = watchdog(
        "nested_submission_and_scopes_do_not_deadlock",
        Duration::from_secs(120),
    );
    // One worker and a queue of one: a task that submits and waits would
    // deadlock without caller-runs and helping scopes.
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(1)
            .queue_bound(1)
            .build()
            .unwrap(),
    );
    let p = pool.clone();
    let outer = pool
        .submit(move || {
            let inner: Vec<_> = (0..5).map(|i| p.submit(move || i * 10).unwrap()).collect();
            let sum: i32 = inner.into_iter().map(|h| h.join().unwrap()).sum();
            let mut nested = 0;
            p.scope(|s| s.spawn(|| nested = 5));
            sum + nested
        })
        .unwrap();
    let result = outer.join_timeout(Duration::from_secs(30));
    assert_eq!(
        result.ok(),
        Some(Ok(105)),
        "nested use deadlocked or failed"
    );
}

#[test]
fn shutdown_finishes_queued_work_then_refuses_new_work() {
    let _dog = watchdog(
        "shutdown_finishes_queued_work_then_refuses_new_work",
        Duration::from_secs(120),
    );
    let pool = pool(1);
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let d = done.clone();
            pool.submit(move || {
                d.fetch_add(1, SeqCst);
            })
            .unwrap()
        })
        .collect();
    pool.shutdown();
    assert_eq!(done.load(SeqCst), 100, "all queued tasks ran");
    assert!(handles.into_iter().all(|h| h.join().is_ok()));
    assert_eq!(pool.submit(|| ()).err(), Some(SubmitError::ShutDown));
    assert!(matches!(
        pool.try_submit(|| ()),
        Err(TrySubmitError::ShutDown(_))
    ));
    pool.shutdown(); // idempotent
}

#[test]
fn drop_joins_every_worker() {
    let _dog = watchdog("drop_joins_every_worker", Duration::from_secs(120));
    let prefix = "ply-drop-test";
    let pool = ThreadPool::builder()
        .workers(3)
        .name_prefix(prefix)
        .build()
        .unwrap();
    assert_eq!(
        thread_names()
            .iter()
            .filter(|n| n.starts_with(prefix))
            .count(),
        3
    );
    let h = pool
        .submit(|| std::thread::sleep(Duration::from_millis(20)))
        .unwrap();
    drop(pool);
    assert!(h.is_finished(), "queued work finished before drop returned");
    assert_eq!(
        thread_names()
            .iter()
            .filter(|n| n.starts_with(prefix))
            .count(),
        0,
        "no worker thread outlives the pool"
    );
}

#[test]
fn an_idle_pool_burns_no_cpu() {
    let _dog = watchdog("an_idle_pool_burns_no_cpu", Duration::from_secs(120));
    let prefix = "ply-idle-test";
    let pool = ThreadPool::builder()
        .workers(2)
        .name_prefix(prefix)
        .build()
        .unwrap();
    pool.submit(|| ()).unwrap().join().unwrap();
    std::thread::sleep(Duration::from_millis(100)); // past the spin-then-sleep phase
    let before = cpu_ticks_of(prefix);
    std::thread::sleep(Duration::from_millis(500));
    let after = cpu_ticks_of(prefix);
    // Clock ticks are 10 ms; spinning workers would show ~100 ticks here.
    assert!(
        after - before <= 2,
        "idle workers used {} ticks",
        after - before
    );
    drop(pool);
}

#[test]
fn builder_validates_and_configures() {
    let _dog = watchdog("builder_validates_and_configures", Duration::from_secs(120));
    assert!(
        matches!(ThreadPool::new(0), Err(PoolError::Options(ref bad)) if bad.option() == "workers")
    );
    assert!(matches!(
        ThreadPool::builder().queue_bound(0).build(),
        Err(PoolError::Options(ref bad)) if bad.option() == "queue_bound"
    ));
    let e = ThreadPool::builder()
        .queue_bound(MAX_QUEUE_BOUND + 1)
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "invalid option `queue_bound`: must be 1 to {MAX_QUEUE_BOUND}, not {}",
            MAX_QUEUE_BOUND + 1
        )
    );
    let default = ThreadPool::builder().build().unwrap();
    assert_eq!(
        default.workers(),
        std::thread::available_parallelism().unwrap().get()
    );
    // Stack size: a task may use most of a 4 MiB stack.
    let big = ThreadPool::builder()
        .workers(1)
        .stack_size(4 << 20)
        .build()
        .unwrap();
    let depth = big
        .submit(|| {
            let buf = [1u8; 3 << 20];
            std::hint::black_box(&buf)
                .iter()
                .map(|&b| b as usize)
                .sum::<usize>()
        })
        .unwrap()
        .join();
    assert_eq!(depth, Ok(3 << 20));
}

#[test]
fn pinned_workers_run_on_one_cpu_each() {
    let _dog = watchdog(
        "pinned_workers_run_on_one_cpu_each",
        Duration::from_secs(120),
    );
    let cpus = ply_os::affinity::allowed_cpus().unwrap();
    let pool = ThreadPool::builder()
        .workers(2)
        .pin_workers(true)
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            pool.submit(move || {
                b.wait(); // both workers busy at once: one task each
                ply_os::affinity::allowed_cpus().unwrap()
            })
            .unwrap()
        })
        .collect();
    let mut seen: Vec<Vec<usize>> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    seen.sort();
    let expected: Vec<Vec<usize>> = {
        let mut e: Vec<Vec<usize>> = (0..2).map(|i| vec![cpus[i % cpus.len()]]).collect();
        e.sort();
        e
    };
    assert_eq!(seen, expected);
}

#[test]
fn data_parallel_helpers_match_sequential_for_every_chunking() {
    let _dog = watchdog(
        "data_parallel_helpers_match_sequential_for_every_chunking",
        Duration::from_secs(120),
    );
    let pool = pool(2);
    let items: Vec<u64> = (0..100_003).collect();
    for chunking in [
        Chunking::Auto,
        Chunking::Fixed(0),
        Chunking::Fixed(1000),
        Chunking::Even,
        Chunking::Guided { min: 0 },
        Chunking::Guided { min: 64 },
    ] {
        let sum = pool.reduce(
            0..items.len(),
            || 0u64,
            |i| items[i] * items[i],
            |a, b| a + b,
            chunking,
        );
        assert_eq!(
            sum,
            items.iter().map(|x| x * x).sum::<u64>(),
            "{chunking:?}"
        );
        let visits = AtomicUsize::new(0);
        pool.for_each_chunk(
            5..105,
            |r| {
                assert!(r.start >= 5 && r.end <= 105);
                visits.fetch_add(r.len(), SeqCst);
            },
            chunking,
        );
        assert_eq!(visits.load(SeqCst), 100, "{chunking:?}");
    }
    for chunking in [Chunking::Auto, Chunking::Even, Chunking::Fixed(333)] {
        let s = pool.reduce_slice(&items, || 0u64, |x| x * 3, |a, b| a + b, chunking);
        assert_eq!(s, items.iter().map(|x| x * 3).sum::<u64>(), "{chunking:?}");
    }
    let doubled = pool.map_slice(&items, |x| x * 2);
    assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
    let strings = pool.map_slice(&items[..100], |x| x.to_string());
    assert_eq!(strings[42], "42");
    let count = AtomicUsize::new(0);
    pool.for_each(&items, |_| {
        count.fetch_add(1, SeqCst);
    });
    assert_eq!(count.load(SeqCst), items.len());
    assert_eq!(pool.map_slice(&[] as &[u8], |x| *x), Vec::<u8>::new());
    assert_eq!(
        pool.reduce(0..0, || 1u8, |_| 0, |a, b| a * b, Chunking::Auto),
        1
    );
}

#[test]
fn a_panicking_data_parallel_body_propagates_and_the_pool_lives_on() {
    let _dog = watchdog(
        "a_panicking_data_parallel_body_propagates_and_the_pool_lives_on",
        Duration::from_secs(120),
    );
    let pool = pool(2);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.map_slice(&(0..1000).collect::<Vec<u32>>(), |&x| {
            if x == 500 {
                panic!("bad item")
            } else {
                x.to_string()
            }
        })
    }));
    assert!(r.is_err());
    assert_eq!(pool.submit(|| 3).unwrap().join(), Ok(3));
}

/// The scheduler state letter of thread `tid` of this process (from /proc).
fn thread_state(tid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name.trim_start().chars().next().unwrap()
}

/// A task of a one-worker pool shuts the pool down while an outside thread
/// is blocked submitting to the full queue: nobody else can free a place for
/// that submitter, so the closing worker must (it runs the queued tasks,
/// which shutdown promises anyway). The submitter is refused, and every
/// task it queued before runs.
#[test]
fn a_task_shuts_down_its_pool_while_a_submitter_blocks_on_the_full_queue() {
    let _dog = watchdog(
        "shutdown from a task vs a blocked submitter",
        Duration::from_secs(60),
    );
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(1)
            .queue_bound(1)
            .build()
            .expect("pool"),
    );
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let closer = {
        let pool = Arc::clone(&pool);
        pool.clone()
            .submit(move || {
                started_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                pool.shutdown(); // on the pool's only worker
            })
            .unwrap()
    };
    started.recv().unwrap(); // the only worker is busy from here on
    let (tid_tx, tid_rx) = mpsc::channel();
    let submitter = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            // SAFETY: `gettid` has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            // One in the thread's guest ring, one in the injector (both at
            // the bound), then one that waits for a place.
            let queued: Vec<_> = (0..2u32).map(|i| pool.submit(move || i).unwrap()).collect();
            let refused = pool.submit(|| 2u32).err();
            (queued, refused)
        })
    };
    let tid = tid_rx.recv().unwrap();
    // Blocked (asleep) in the third submit: the first two never block.
    let deadline = Instant::now() + Duration::from_secs(30);
    while thread_state(tid) != 'S' {
        assert!(Instant::now() < deadline, "the submitter never blocked");
        std::thread::yield_now();
    }
    go.send(()).unwrap();
    let (queued, refused) = submitter.join().unwrap();
    assert_eq!(refused, Some(SubmitError::ShutDown));
    let results: Vec<_> = queued.into_iter().map(|h| h.join()).collect();
    assert_eq!(results, vec![Ok(0), Ok(1)]);
    assert_eq!(closer.join(), Ok(()));
}

/// As above, with two workers, and the queued tasks themselves shut the
/// pool down: the closing worker runs one while it waits for the blocked
/// submitter, and that nested shutdown must not wait for the other worker,
/// which exits only once the outer shutdown has drained the pool.
#[test]
fn a_task_run_by_a_closing_worker_may_shut_the_pool_down_too() {
    let _dog = watchdog(
        "nested shutdown in a closing worker",
        Duration::from_secs(60),
    );
    let pool = Arc::new(
        ThreadPool::builder()
            .workers(2)
            .queue_bound(1)
            .build()
            .expect("pool"),
    );
    let (started_tx, started) = mpsc::channel();
    let (gate, gate_rx) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    let held = {
        let started_tx = started_tx.clone();
        pool.submit(move || {
            started_tx.send(()).unwrap();
            gate_rx.recv().unwrap();
        })
        .unwrap()
    };
    let closer = {
        let p = Arc::clone(&pool);
        pool.submit(move || {
            started_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            p.shutdown();
        })
        .unwrap()
    };
    started.recv().unwrap();
    started.recv().unwrap(); // both workers busy
    let (tid_tx, tid_rx) = mpsc::channel();
    let submitter = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            // SAFETY: `gettid` has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let queued: Vec<_> = (0..2u32)
                .map(|i| {
                    let p = Arc::clone(&pool);
                    pool.submit(move || {
                        p.shutdown();
                        i
                    })
                    .unwrap()
                })
                .collect();
            let refused = pool.submit(|| 2u32).err();
            (queued, refused)
        })
    };
    let tid = tid_rx.recv().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while thread_state(tid) != 'S' {
        assert!(Instant::now() < deadline, "the submitter never blocked");
        std::thread::yield_now();
    }
    go.send(()).unwrap();
    let (queued, refused) = submitter.join().unwrap();
    assert_eq!(refused, Some(SubmitError::ShutDown));
    gate.send(()).unwrap();
    let results: Vec<_> = queued.into_iter().map(|h| h.join()).collect();
    assert_eq!(results, vec![Ok(0), Ok(1)]);
    assert_eq!(held.join(), Ok(()));
    assert_eq!(closer.join(), Ok(()));
}
