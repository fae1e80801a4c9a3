//! The thread pool survives whatever its tasks do short of aborting the
//! process: panics, and panicking `Drop`s of everything a task leaves behind
//! (a panic payload, a result whose handle was dropped or is still held, the
//! captured values of a task that never runs), on every path (`submit`, `map`,
//! `map_unordered`, `scope`, `for_each`, `as_completed`), and under
//! `terminate` and `cancel`. Every test counts every task (run, cancelled or
//! failed: none lost, none twice) and every drop, then checks that the pool
//! still has all its workers. Each runs under a watchdog that aborts the test
//! binary rather than let CI hang; none relies on a sleep to win a race.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::channel;
use std::time::Duration;

use ply_os::thread::{
    SubmitError, TaskError, TaskHandle, ThreadPool, TrySubmitError, as_completed,
};
use support::{Bomb, Gate, all_workers_serve, panics, pool, wait_for, watchdog};

const NON_STRING: &str = "(panic payload is not a string)";

#[test]
fn a_panic_payload_whose_drop_panics_fails_only_its_task() {
    let _dog = watchdog("payload drop", Duration::from_secs(60));
    let pool = pool("ply-payload", 2);
    let workers = all_workers_serve(&pool, "ply-payload", 2);
    let drops = Arc::new(AtomicUsize::new(0));
    // submit + join
    for _ in 0..20 {
        let d = drops.clone();
        let h = pool
            .submit(move || -> u8 { panic_any(Bomb::new(&d)) })
            .unwrap();
        assert_eq!(h.join(), Err(TaskError::Panicked(NON_STRING.into())));
    }
    // The task reports first and drops its payload after.
    wait_for("20 payloads dropped", || drops.load(SeqCst) == 20);
    // map: every panicking item reported in place, the others' values intact.
    let d = drops.clone();
    let out: Vec<_> = pool
        .map(0..30u32, move |i| {
            if i % 3 == 0 {
                panic_any(Bomb::new(&d));
            }
            i
        })
        .collect();
    for (i, r) in out.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(*r, Err(TaskError::Panicked(NON_STRING.into())));
        } else {
            assert_eq!(*r, Ok(i as u32));
        }
    }
    wait_for("30 payloads dropped", || drops.load(SeqCst) == 30);
    // as_completed over failing and succeeding handles.
    let handles: Vec<_> = (0..10u32)
        .map(|i| {
            let d = drops.clone();
            pool.submit(move || {
                if i % 2 == 0 {
                    panic_any(Bomb::new(&d));
                }
                i
            })
            .unwrap()
        })
        .collect();
    let mut seen = [false; 10];
    for (i, r) in as_completed(handles) {
        assert!(!std::mem::replace(&mut seen[i], true), "index {i} twice");
        match i % 2 {
            0 => assert_eq!(r, Err(TaskError::Panicked(NON_STRING.into()))),
            _ => assert_eq!(r, Ok(i as u32)),
        }
    }
    assert!(seen.iter().all(|&s| s));
    wait_for("35 payloads dropped", || drops.load(SeqCst) == 35);
    assert_eq!(
        all_workers_serve(&pool, "ply-payload", 2),
        workers,
        "no worker was lost"
    );
}

#[test]
fn scope_and_for_each_re_raise_one_payload_and_drop_the_rest() {
    let _dog = watchdog("payload drop in scope", Duration::from_secs(60));
    let pool = pool("ply-scopepl", 2);
    let workers = all_workers_serve(&pool, "ply-scopepl", 2);
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = AtomicUsize::new(0);
    // Ten tasks panic with a payload whose drop panics: the scope keeps the
    // first and drops nine on the workers (or on the caller, helping).
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for i in 0..100 {
                let (d, ran) = (&drops, &ran);
                s.spawn(move || {
                    ran.fetch_add(1, SeqCst);
                    if i % 10 == 0 {
                        panic_any(Bomb::new(d));
                    }
                });
            }
        })
    }));
    let payload = caught.expect_err("the scope re-raises a task's panic");
    assert!(payload.is::<Bomb>());
    assert_eq!(ran.load(SeqCst), 100, "every spawned task ran");
    assert_eq!(drops.load(SeqCst), 9);
    assert!(
        panics(|| drop(payload)),
        "the re-raised payload is the caller's"
    );
    assert_eq!(drops.load(SeqCst), 10);
    // for_each: a panicking body ends its loop; the panics reached are all
    // dropped but the one re-raised, and no item is visited twice.
    let visited: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
    let reached = AtomicUsize::new(0);
    let before = drops.load(SeqCst);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pool.for_each_chunk(
            0..1000,
            |r| {
                for i in r {
                    if i % 100 == 7 {
                        reached.fetch_add(1, SeqCst);
                        panic_any(Bomb::new(&drops));
                    }
                    visited[i].fetch_add(1, SeqCst);
                }
            },
            ply_core::partition::Chunking::Fixed(1),
        )
    }));
    let payload = caught.expect_err("for_each re-raises a body's panic");
    std::mem::forget(payload); // its drop would panic; leaking is fine here
    for (i, v) in visited.iter().enumerate() {
        assert!(v.load(SeqCst) <= usize::from(i % 100 != 7), "item {i}");
    }
    let reached = reached.load(SeqCst);
    assert!(reached >= 1);
    assert_eq!(
        drops.load(SeqCst) - before,
        reached - 1,
        "all but the re-raised one"
    );
    assert_eq!(
        all_workers_serve(&pool, "ply-scopepl", 2),
        workers,
        "no worker was lost"
    );
}

#[test]
fn a_result_whose_handle_is_gone_is_dropped_by_the_worker() {
    let _dog = watchdog("result drop, handle gone", Duration::from_secs(60));
    let pool = pool("ply-result", 2);
    let workers = all_workers_serve(&pool, "ply-result", 2);
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let task = |drops: &Arc<AtomicUsize>, ran: &Arc<AtomicUsize>| {
        let (d, r) = (drops.clone(), ran.clone());
        move || {
            r.fetch_add(1, SeqCst);
            Bomb::new(&d)
        }
    };
    // Handle dropped before the task starts (both workers held at a gate),
    // while it runs, and after it finished.
    let gate = Gate::new();
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let g = gate.clone();
            pool.submit(move || g.wait()).unwrap()
        })
        .collect();
    for _ in 0..10 {
        drop(pool.submit(task(&drops, &ran)).unwrap());
    }
    gate.open();
    for h in holders {
        h.join().unwrap();
    }
    let (started_tx, started) = channel();
    let running_gate = Gate::new();
    let g = running_gate.clone();
    let d = drops.clone();
    let h = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            g.wait();
            Bomb::new(&d)
        })
        .unwrap();
    started.recv().unwrap();
    drop(h); // while it runs
    running_gate.open();
    let h = pool.submit(task(&drops, &ran)).unwrap();
    wait_for("a task to finish", || h.is_finished());
    assert!(!panics(|| drop(h)), "dropping a handle never panics");
    wait_for("11 results dropped on workers, 1 by the handle", || {
        drops.load(SeqCst) == 12
    });
    assert_eq!(ran.load(SeqCst), 11);
    // map, map_unordered and as_completed, each dropped half-way: the results
    // still in flight are dropped by the workers. Every input pulled becomes a
    // task that makes one Bomb; the caller takes (and leaks) three.
    let made = Arc::new(AtomicUsize::new(0));
    let pulled = Arc::new(AtomicUsize::new(0));
    let before = drops.load(SeqCst);
    let counted = |pulled: &Arc<AtomicUsize>| {
        let p = pulled.clone();
        (0..100u32).inspect(move |_| {
            p.fetch_add(1, SeqCst);
        })
    };
    let (d, m) = (drops.clone(), made.clone());
    let mut map = pool.map(counted(&pulled), move |_| {
        m.fetch_add(1, SeqCst);
        Bomb::new(&d)
    });
    std::mem::forget(map.next().unwrap().unwrap());
    drop(map);
    let (d, m) = (drops.clone(), made.clone());
    let mut unordered = pool.map_unordered(counted(&pulled), move |_| {
        m.fetch_add(1, SeqCst);
        Bomb::new(&d)
    });
    std::mem::forget(unordered.next().unwrap().1.unwrap());
    drop(unordered);
    let handles: Vec<_> = (0..10)
        .map(|_| pool.submit(task(&drops, &made)).unwrap())
        .collect();
    let mut completed = as_completed(handles);
    std::mem::forget(completed.next().unwrap().1.unwrap());
    drop(completed);
    let expected = pulled.load(SeqCst) + 10;
    assert!(expected < 200 + 10, "map and map_unordered pulled lazily");
    wait_for("every result made and dropped", || {
        made.load(SeqCst) == expected && drops.load(SeqCst) - before == expected - 3
    });
    assert_eq!(
        all_workers_serve(&pool, "ply-result", 2),
        workers,
        "no worker was lost"
    );
}

#[test]
fn a_result_with_a_live_handle_goes_to_the_caller() {
    let _dog = watchdog("result drop, handle live", Duration::from_secs(60));
    let pool = pool("ply-live", 2);
    let workers = all_workers_serve(&pool, "ply-live", 2);
    let drops = Arc::new(AtomicUsize::new(0));
    for i in 0..20 {
        let d = drops.clone();
        let h = pool.submit(move || (i, Bomb::new(&d))).unwrap();
        let (n, bomb) = h.join().unwrap();
        assert_eq!(n, i);
        assert_eq!(drops.load(SeqCst), i, "the worker did not drop it");
        assert!(panics(|| drop(bomb)), "it is the caller's to drop");
    }
    // Through as_completed too.
    let d = drops.clone();
    let hs: Vec<_> = (0..5)
        .map(|_| {
            let d = d.clone();
            pool.submit(move || Bomb::new(&d)).unwrap()
        })
        .collect();
    let mut taken = 0;
    for (_, r) in as_completed(hs) {
        let bomb = r.unwrap();
        taken += 1;
        assert!(panics(|| drop(bomb)));
    }
    assert_eq!(taken, 5);
    assert_eq!(drops.load(SeqCst), 25);
    assert_eq!(
        all_workers_serve(&pool, "ply-live", 2),
        workers,
        "no worker was lost"
    );
}

#[test]
fn terminate_cancels_queued_tasks_and_drops_their_captures_once() {
    let _dog = watchdog("terminate", Duration::from_secs(60));
    for round in 0..20 {
        let pool = pool("ply-term", 2);
        let drops = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new(AtomicUsize::new(0));
        let gate = Gate::new();
        let (started_tx, started) = channel();
        // Two tasks hold both workers; 50 more queue up behind them, each
        // capturing a value whose drop panics (`Bomb` counts before panicking).
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let (g, tx) = (gate.clone(), started_tx.clone());
                pool.submit(move || {
                    tx.send(()).unwrap();
                    g.wait();
                    "held"
                })
                .unwrap()
            })
            .collect();
        started.recv().unwrap();
        started.recv().unwrap();
        let queued: Vec<TaskHandle<usize>> = (0..50)
            .map(|_| {
                let (r, bomb) = (ran.clone(), Bomb::new(&drops));
                pool.submit(move || {
                    std::mem::forget(bomb);
                    r.fetch_add(1, SeqCst)
                })
                .unwrap()
            })
            .collect();
        // Terminate from another thread while the holders still run. Once a
        // submission is refused, `terminate` has begun: release the holders
        // at a point that varies with the round.
        std::thread::scope(|s| {
            let terminator = s.spawn(|| pool.terminate());
            let mut queued = queued;
            loop {
                let r = ran.clone();
                match pool.try_submit(move || r.fetch_add(1, SeqCst)) {
                    Ok(probe) => queued.push(probe),
                    Err(TrySubmitError::Full(_)) => std::thread::yield_now(),
                    Err(_) => break, // shut down
                }
            }
            let probes = queued.len() - 50;
            let mut cancelled = 0;
            for (i, h) in queued.into_iter().enumerate() {
                if i == round {
                    gate.open();
                }
                match h.join() {
                    Err(TaskError::Cancelled) => cancelled += 1,
                    other => panic!("a queued task ended {other:?}"),
                }
            }
            gate.open();
            terminator.join().unwrap();
            assert_eq!(cancelled, 50 + probes);
        });
        for h in holders {
            assert_eq!(h.join(), Ok("held"), "running tasks finish");
        }
        assert_eq!(ran.load(SeqCst), 0, "no cancelled task ran");
        assert_eq!(drops.load(SeqCst), 50, "each capture dropped once");
        // Refused after terminate: the task is dropped without a panic.
        let d = Bomb::new(&drops);
        assert!(pool.submit(move || drop(d)).is_err());
        assert_eq!(drops.load(SeqCst), 51);
    }
}

#[test]
fn submitting_after_shutdown_drops_the_task_quietly() {
    let _dog = watchdog("shutdown drop", Duration::from_secs(30));
    let pool = pool("ply-shut", 2);
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..100)
        .map(|_| {
            let (r, bomb) = (ran.clone(), Bomb::new(&drops));
            pool.submit(move || {
                r.fetch_add(1, SeqCst);
                std::mem::forget(bomb);
            })
            .unwrap()
        })
        .collect();
    pool.shutdown();
    assert_eq!(ran.load(SeqCst), 100, "shutdown runs what is queued");
    assert!(hs.into_iter().all(|h| h.join().is_ok()));
    for _ in 0..10 {
        let bomb = Bomb::new(&drops);
        assert!(!panics(|| assert!(
            pool.submit(move || drop(bomb)).is_err()
        )));
    }
    assert_eq!(drops.load(SeqCst), 10);
}

#[test]
fn a_cancelled_task_never_runs_and_its_handle_says_so() {
    let _dog = watchdog("cancel", Duration::from_secs(60));
    let pool = pool("ply-cancel", 2);
    let workers = all_workers_serve(&pool, "ply-cancel", 2);
    let drops = Arc::new(AtomicUsize::new(0));
    let ran: Arc<Vec<AtomicUsize>> = Arc::new((0..200).map(|_| AtomicUsize::new(0)).collect());
    for round in 0..5 {
        let gate = Gate::new();
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let g = gate.clone();
                pool.submit(move || g.wait()).unwrap()
            })
            .collect();
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let (r, bomb) = (ran.clone(), Bomb::new(&drops));
                pool.submit(move || {
                    r[i].fetch_add(1, SeqCst);
                    std::mem::forget(bomb);
                    i
                })
                .unwrap()
            })
            .collect();
        // Cancel every other task, racing the workers once the gate opens at
        // a point that varies with the round.
        let mut cancelled = [false; 200];
        for (i, h) in handles.iter().enumerate() {
            if i == round * 40 {
                gate.open();
            }
            if i % 2 == 0 {
                cancelled[i] = h.cancel();
                assert!(h.cancel() == cancelled[i], "cancel is stable");
            }
        }
        gate.open();
        for h in holders {
            h.join().unwrap();
        }
        for (i, h) in handles.into_iter().enumerate() {
            let result = h.join();
            let runs = ran[i].swap(0, SeqCst);
            if cancelled[i] {
                assert_eq!(result, Err(TaskError::Cancelled));
                assert_eq!(runs, 0, "task {i} was cancelled but ran");
            } else {
                assert_eq!(result, Ok(i));
                assert_eq!(runs, 1, "task {i}");
            }
        }
        for i in (0..round * 40).step_by(2) {
            assert!(
                cancelled[i],
                "task {i} was cancelled while the workers were held"
            );
        }
        // Every capture is dropped once: by a worker reaching a cancelled
        // task (its drop panics; contained), or inside a task that ran.
        let cancelled = cancelled.iter().filter(|&&c| c).count();
        wait_for("captures of cancelled tasks dropped", || {
            drops.load(SeqCst) == cancelled
        });
        drops.store(0, SeqCst);
    }
    assert_eq!(
        all_workers_serve(&pool, "ply-cancel", 2),
        workers,
        "no worker was lost"
    );
}

#[test]
fn terminate_during_scopes_and_for_each_loses_no_task() {
    let _dog = watchdog("terminate during scopes", Duration::from_secs(120));
    for round in 0..10 {
        let pool = pool("ply-termsc", 2);
        let spawned = 2_000;
        let ran = AtomicUsize::new(0);
        let unrun_drops = Arc::new(AtomicUsize::new(0));
        let items: Vec<AtomicUsize> = (0..5_000).map(|_| AtomicUsize::new(0)).collect();
        let (go_tx, go) = channel::<()>();
        std::thread::scope(|s| {
            let scope_thread = s.spawn(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    pool.scope(|sc| {
                        for i in 0..spawned {
                            if i == 100 * round {
                                go_tx.send(()).unwrap();
                            }
                            // Counts its drop only if it never ran.
                            let guard = UnrunGuard(Some(unrun_drops.clone()));
                            let ran = &ran;
                            sc.spawn(move || {
                                let mut guard = guard;
                                guard.0 = None;
                                ran.fetch_add(1, SeqCst);
                            });
                        }
                    })
                }))
            });
            let for_each_thread = s.spawn(|| {
                pool.for_each_chunk(
                    0..items.len(),
                    |r| {
                        for i in r {
                            items[i].fetch_add(1, SeqCst);
                        }
                    },
                    ply_core::partition::Chunking::Fixed(3),
                )
            });
            go.recv().unwrap();
            pool.terminate();
            let outcome = scope_thread.join().unwrap();
            for_each_thread.join().unwrap();
            let runs = ran.load(SeqCst);
            let unrun = unrun_drops.load(SeqCst);
            assert_eq!(
                runs + unrun,
                spawned,
                "every spawn ran or was dropped unrun"
            );
            match outcome {
                Ok(()) => assert_eq!(unrun, 0),
                Err(payload) => {
                    let msg = payload.downcast_ref::<String>().expect("a message");
                    assert_eq!(
                        msg,
                        &format!(
                            "{unrun} task(s) spawned in this scope were cancelled: \
                             the pool was terminated"
                        )
                    );
                }
            }
        });
        for (i, v) in items.iter().enumerate() {
            assert_eq!(
                v.load(SeqCst),
                1,
                "for_each item {i}: the caller covers cancelled helpers"
            );
        }
    }
}

/// Counts one drop if still armed.
struct UnrunGuard(Option<Arc<AtomicUsize>>);

impl Drop for UnrunGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.fetch_add(1, SeqCst);
        }
    }
}

#[test]
fn a_pool_full_of_failing_tasks_keeps_serving() {
    // All the faults at once, from four threads, on a small queue (so
    // submitters block and workers run tasks inline): every task accounted for.
    let _dog = watchdog("mixed faults", Duration::from_secs(120));
    let pool = ThreadPool::builder()
        .workers(2)
        .queue_bound(8)
        .name_prefix("ply-mixed")
        .build()
        .unwrap();
    let workers = all_workers_serve(&pool, "ply-mixed", 2);
    let drops = Arc::new(AtomicUsize::new(0));
    let per_thread = 2_000;
    let outcomes = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (pool, drops) = (&pool, &drops);
                s.spawn(move || {
                    let mut counts = [0usize; 4]; // ok, panicked, cancelled, handle dropped
                    let mut live = Vec::new();
                    for i in 0..per_thread {
                        let d = drops.clone();
                        let kind = (i + t) % 4;
                        let h = pool
                            .submit(move || match kind {
                                0 => Ok(i),
                                1 => panic_any(Bomb::new(&d)),
                                _ => Err(Bomb::new(&d)),
                            })
                            .unwrap();
                        if kind == 3 {
                            if i % 8 == 3 && h.cancel() {
                                counts[2] += 1;
                                d_add(drops, 1); // no result will be made
                                continue;
                            }
                            drop(h);
                            counts[3] += 1;
                        } else {
                            live.push((kind, h));
                        }
                    }
                    for (kind, h) in live {
                        match (kind, h.join()) {
                            (0, Ok(Ok(_))) => counts[0] += 1,
                            (1, Err(TaskError::Panicked(m))) if m == NON_STRING => counts[1] += 1,
                            (2, Ok(Err(bomb))) => {
                                std::mem::forget(bomb);
                                d_add(drops, 1);
                                counts[0] += 1;
                            }
                            (k, r) => panic!("kind {k} ended {:?}", r.map(|_| ())),
                        }
                    }
                    counts
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    let total: usize = outcomes.iter().flatten().sum();
    assert_eq!(total, 4 * per_thread);
    // Every Bomb was dropped once (panicking) or accounted for by the caller.
    let bombs = 4 * per_thread * 3 / 4;
    wait_for("every bomb accounted for", || drops.load(SeqCst) == bombs);
    assert_eq!(
        all_workers_serve(&pool, "ply-mixed", 2),
        workers,
        "no worker was lost"
    );
}

fn d_add(counter: &AtomicUsize, n: usize) {
    counter.fetch_add(n, SeqCst);
}

/// Whether thread `tid` of this process is blocked in `futex` (asleep on a
/// ply-core wait, here the full queue's semaphore).
fn in_futex_wait(tid: i32) -> bool {
    let syscall = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"));
    let number = syscall
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok());
    number == Some(libc::SYS_futex)
}

/// Every worker stuck, the queue full, a submitter asleep waiting for a
/// place (`submit_timeout` with a deadline an hour off, or `submit`, with
/// none, once its thread's own ring is full too): another thread shutting
/// the pool down ends that wait at once with the shutdown error. No place
/// would ever free up: a wait that noticed the shutdown only then held the
/// submitter, and `shutdown` (which waits for submitters in flight), until
/// its deadline or for ever. Every task accepted runs once.
#[test]
fn a_submitter_waiting_on_stuck_workers_sees_the_shutdown() {
    let _dog = watchdog("submitter under shutdown", Duration::from_secs(120));
    for blocking in [false, true] {
        let pool = Arc::new(
            ThreadPool::builder()
                .workers(2)
                .queue_bound(1)
                .build()
                .unwrap(),
        );
        let gate = Gate::new();
        let started = Arc::new(AtomicUsize::new(0));
        let stuck: Vec<TaskHandle<()>> = (0..2)
            .map(|_| {
                let (gate, started) = (gate.clone(), Arc::clone(&started));
                pool.submit(move || {
                    started.fetch_add(1, SeqCst);
                    gate.wait();
                })
                .unwrap()
            })
            .collect();
        wait_for("both workers stuck", || started.load(SeqCst) == 2);
        let queued = pool
            .try_submit(|| 1)
            .unwrap_or_else(|_| panic!("the queue has room for one"));
        let (accepted, ran) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (tid_tx, tid) = channel();
        let (outcome_tx, outcome) = channel();
        let waiter = {
            let (pool, accepted, ran) =
                (Arc::clone(&pool), Arc::clone(&accepted), Arc::clone(&ran));
            std::thread::spawn(move || {
                // SAFETY: gettid has no preconditions.
                tid_tx.send(unsafe { libc::gettid() }).unwrap();
                let shut_down = if blocking {
                    // Fills this thread's ring, then waits for the queue.
                    loop {
                        let ran = Arc::clone(&ran);
                        match pool.submit(move || {
                            ran.fetch_add(1, SeqCst);
                        }) {
                            Ok(_) => {
                                accepted.fetch_add(1, SeqCst);
                            }
                            Err(e) => break e == SubmitError::ShutDown,
                        }
                    }
                } else {
                    let waited = pool.submit_timeout(|| (), Duration::from_secs(3600));
                    matches!(waited, Err(TrySubmitError::ShutDown(_)))
                };
                outcome_tx.send(shut_down).unwrap();
            })
        };
        let tid = tid.recv().unwrap();
        wait_for("the submitter asleep on the full queue", || {
            in_futex_wait(tid)
        });
        let closer = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.shutdown())
        };
        // The watchdog on the outcome: a wait that does not see the
        // shutdown fails here, and is then freed by opening the gate.
        let outcome = outcome.recv_timeout(Duration::from_secs(20));
        gate.open();
        waiter.join().unwrap();
        closer.join().unwrap();
        assert_eq!(outcome, Ok(true), "blocking submit: {blocking}");
        for task in stuck {
            assert_eq!(task.join(), Ok(()));
        }
        assert_eq!(queued.join(), Ok(1)); // queued before the shutdown: run
        assert_eq!(ran.load(SeqCst), accepted.load(SeqCst));
    }
}
