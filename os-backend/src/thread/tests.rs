//! Tests of the thread pool: every capability, plus the failure modes (panics,
//! timeouts, full queues, shutdown, nesting) and the no-leak/no-burn promises.

use super::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

fn pool(workers: usize) -> ThreadPool {
    ThreadPool::new(workers).expect("pool")
}

/// Names of this process's threads (from /proc), to check for leaks.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim_end().to_owned())
        .collect()
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
    let pool = pool(3);
    let handles: Vec<_> = (0..1000u64)
        .map(|i| pool.submit(move || i * 2).unwrap())
        .collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 999 * 1000);
}

#[test]
fn a_panic_fails_only_its_task_and_the_pool_keeps_its_workers() {
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
    let pool = ThreadPool::builder()
        .workers(1)
        .queue_bound(2)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let blocker = pool.submit(move || rx.recv().unwrap()).unwrap();
    // Wait until the worker has taken the blocker, so the queue is empty.
    while pool.shared_queue_len() != 0 {
        std::thread::yield_now();
    }
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

#[test]
fn map_is_ordered_and_lazy_with_bounded_inputs_in_flight() {
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
fn a_task_blocked_on_a_later_sibling_does_not_deadlock() {
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
    assert!(matches!(ThreadPool::new(0), Err(PoolError::ZeroWorkers)));
    assert!(matches!(
        ThreadPool::builder().queue_bound(0).build(),
        Err(PoolError::QueueBound(0))
    ));
    let e = ThreadPool::builder()
        .queue_bound(MAX_QUEUE_BOUND + 1)
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "queue bound {} is out of range: it must be 1 to {MAX_QUEUE_BOUND}",
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
    let cpus = crate::affinity::allowed_cpus().unwrap();
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
                crate::affinity::allowed_cpus().unwrap()
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
    let pool = pool(2);
    let items: Vec<u64> = (0..100_003).collect();
    for chunking in [
        Chunking::Auto,
        Chunking::Dynamic(0),
        Chunking::Dynamic(1000),
        Chunking::Static,
        Chunking::Guided { min: 0 },
        Chunking::Guided { min: 64 },
    ] {
        let sum = pool.reduce(
            0..items.len(),
            chunking,
            || 0u64,
            |i| items[i] * items[i],
            |a, b| a + b,
        );
        assert_eq!(
            sum,
            items.iter().map(|x| x * x).sum::<u64>(),
            "{chunking:?}"
        );
        let visits = AtomicUsize::new(0);
        pool.for_each_chunk(5..105, chunking, |r| {
            assert!(r.start >= 5 && r.end <= 105);
            visits.fetch_add(r.len(), SeqCst);
        });
        assert_eq!(visits.load(SeqCst), 100, "{chunking:?}");
    }
    for chunking in [Chunking::Auto, Chunking::Static, Chunking::Dynamic(333)] {
        let s = pool.reduce_slice(&items, chunking, || 0u64, |x| x * 3, |a, b| a + b);
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
        pool.reduce(0..0, Chunking::Auto, || 1u8, |_| 0, |a, b| a * b),
        1
    );
}

#[test]
fn a_panicking_data_parallel_body_propagates_and_the_pool_lives_on() {
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
    pool.shared.faults.die_between_jobs.store(3, SeqCst);
    pool.shared.faults.die_holding_job.store(5, SeqCst);
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
    assert_eq!(pool.shared.faults.die_between_jobs.load(SeqCst), 0);
    assert_eq!(pool.shared.faults.die_holding_job.load(SeqCst), 0);
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
    pool.shared.faults.fail_spawns.store(1, SeqCst);
    pool.shared.faults.die_between_jobs.store(1, SeqCst);
    let sum: u64 = (0..1_000u64)
        .map(|i| pool.submit(move || i).unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(sum, 999 * 1000 / 2);
    wait_for_threads(prefix, 1);
    assert_eq!(pool.shared.alive.load(SeqCst), 1);
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
        pool.shared
            .faults
            .die_between_jobs
            .store(workers as u32, SeqCst);
        pool.shared.faults.fail_spawns.store(workers as u32, SeqCst);
        drop(release);
        for h in holders {
            assert_eq!(h.join(), Ok(()), "the running tasks finished");
        }
        // Every worker dies before it takes another job: none of these ran.
        for h in queued {
            assert_eq!(h.join(), Err(TaskError::Cancelled));
        }
        wait_for_threads(prefix, 0);
        assert_eq!(pool.shared.alive.load(SeqCst), 0);
        assert_eq!(pool.submit(|| 1).err(), Some(SubmitError::ShutDown));
        drop(pool); // joins the dead workers' threads: returns at once
    }
}
