//! `ply bench pool`: how many tasks per second a thread pool runs, beside
//! starting a std thread per task; the per-task cost of the process pool; and
//! what a data-parallel sum gains.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ply_core::partition::Chunking;
use ply_os::process::ProcessPoolBuilder;
use ply_os::thread::ThreadPool;

use crate::report::{Report, Row};

const RUNS: usize = 5;

/// Runs each comparison `RUNS` times; `tasks` tasks (pools) per run.
pub fn run(tasks: u64) -> Report {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = ThreadPool::new(workers).expect("a pool of available_parallelism workers");
    let group = "empty tasks";
    let mut rows = vec![
        Row::measure(group, "ply pool scope.spawn", RUNS, tasks, || {
            let start = Instant::now();
            pool.scope(|s| {
                for _ in 0..tasks {
                    s.spawn(|| {
                        black_box(());
                    });
                }
            });
            start.elapsed()
        }),
        Row::measure(group, "ply pool submit + join", RUNS, tasks, || {
            let start = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .filter_map(|i| pool.submit(move || black_box(i)).ok())
                .collect();
            for h in handles {
                let _ = h.join();
            }
            start.elapsed()
        }),
    ];
    // A thread per task is ~1000x dearer: measure fewer and scale the rate.
    let spawned = (tasks / 100).max(100);
    rows.push(Row::measure(
        group,
        "std thread::spawn + join",
        RUNS,
        spawned,
        || {
            let start = Instant::now();
            for i in 0..spawned {
                let _ = std::thread::spawn(move || black_box(i)).join();
            }
            start.elapsed()
        },
    ));
    // The process pool: the same trivial task, serialized to a worker process
    // and back. Pipelined (map keeps 2 x workers in flight) and one at a time.
    let ptasks = (tasks / 20).max(100);
    if let Ok(processes) = ProcessPoolBuilder::new()
        .workers(workers)
        .build(|x: u64| x + 1)
    {
        let group = "trivial tasks in worker processes";
        rows.push(Row::measure(
            group,
            "ply ProcessPool map (pipelined)",
            RUNS,
            ptasks,
            || {
                let start = Instant::now();
                black_box(processes.map(0..ptasks).filter(Result::is_ok).count());
                start.elapsed()
            },
        ));
        rows.push(Row::measure(
            group,
            "ply ProcessPool submit + join",
            RUNS,
            ptasks / 4,
            || {
                let start = Instant::now();
                for i in 0..ptasks / 4 {
                    if let Ok(task) = processes.submit(&i) {
                        let _ = task.join();
                    }
                }
                start.elapsed()
            },
        ));
    }
    // A real slice: over a bare range LLVM folds Σ i² into a closed form.
    let data: Vec<u64> = (0..10_000_000u64)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let group = "sum of squares over 10M u64 (sums/s)";
    rows.push(Row::measure(
        group,
        "ply pool reduce_slice",
        RUNS,
        1,
        || {
            let start = Instant::now();
            black_box(pool.reduce_slice(
                &data,
                Chunking::Auto,
                || 0u64,
                |x| x.wrapping_mul(*x),
                u64::wrapping_add,
            ));
            start.elapsed()
        },
    ));
    rows.push(Row::measure(group, "sequential", RUNS, 1, || {
        let start = Instant::now();
        black_box(
            black_box(&data)
                .iter()
                .fold(0u64, |a, x| a.wrapping_add(x.wrapping_mul(*x))),
        );
        start.elapsed().max(Duration::from_nanos(1))
    }));
    Report {
        family: "pool",
        headline: format!(
            "pools with {workers} workers: {tasks} tasks x {RUNS} runs (std threads: {spawned}; processes: {ptasks})"
        ),
        params: vec![
            ("workers", workers.into()),
            ("tasks", tasks.into()),
            ("runs", RUNS.into()),
        ],
        rows,
        notes: Vec::new(),
    }
}
