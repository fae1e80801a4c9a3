//! `ply bench pool`: how many tasks per second a thread pool runs, beside
//! starting a std thread per task — on an idle machine and with one busy
//! process per core beside it; the per-task cost of the process pool; and
//! what a data-parallel sum gains.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ply_core::partition::Chunking;
use ply_os::process::ProcessPoolBuilder;
use ply_os::thread::ThreadPool;

use crate::report::{Report, Row};

const RUNS: usize = 5;

/// Tasks submitted before their handles are joined.
const SUBMIT_BATCH: u64 = 1024;

/// `tasks` empty tasks through `scope.spawn`, and through `submit` + `join`
/// (in batches of [`SUBMIT_BATCH`]).
fn empty_task_rows(group: &'static str, pool: &ThreadPool, tasks: u64) -> Vec<Row> {
    vec![
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
            let mut handles = Vec::with_capacity(SUBMIT_BATCH as usize);
            let start = Instant::now();
            let mut left = tasks;
            while left > 0 {
                let batch = left.min(SUBMIT_BATCH);
                handles.extend((0..batch).filter_map(|i| pool.submit(move || black_box(i)).ok()));
                for h in handles.drain(..) {
                    let _ = h.join();
                }
                left -= batch;
            }
            start.elapsed()
        }),
    ]
}

/// `spawned` std threads started and joined one at a time.
fn std_spawn_row(group: &'static str, spawned: u64) -> Row {
    Row::measure(group, "std thread::spawn + join", RUNS, spawned, || {
        let start = Instant::now();
        for i in 0..spawned {
            let _ = std::thread::spawn(move || black_box(i)).join();
        }
        start.elapsed()
    })
}

/// One CPU-bound process per core (`sh -c 'while :; do :; done'`), killed
/// and reaped on drop, and killed by the kernel if this process dies first
/// (`PR_SET_PDEATHSIG`), so none is ever left burning a core.
struct Hogs(Vec<std::process::Child>);

impl Hogs {
    fn one_per_core() -> Hogs {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hogs((0..cores).filter_map(|_| spawn_hog().ok()).collect())
    }
}

fn spawn_hog() -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", "while :; do :; done"])
        .stdin(std::process::Stdio::null());
    // SAFETY: runs in the forked child before exec; `prctl`, `getppid` and
    // `_exit` are async-signal-safe, and nothing here allocates or locks.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() as u32 != parent {
                libc::_exit(0); // the parent died before the prctl
            }
            Ok(())
        });
    }
    command.spawn()
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for hog in &mut self.0 {
            let _ = hog.kill();
            let _ = hog.wait();
        }
    }
}

/// Runs each comparison `RUNS` times; `tasks` tasks (pools) per run.
pub fn run(tasks: u64) -> Report {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = ThreadPool::new(workers).expect("a pool of available_parallelism workers");
    let group = "empty tasks";
    let mut rows = empty_task_rows(group, &pool, tasks);
    let busy;
    // A thread per task is ~1000x dearer: measure fewer and scale the rate.
    let spawned = (tasks / 100).max(100);
    rows.push(std_spawn_row(group, spawned));
    {
        // The same with one CPU-bound process per core running beside it, as
        // on a busy server: a pool whose idle workers spin holds cores the
        // thread feeding it needs.
        let hogs = Hogs::one_per_core();
        busy = hogs.0.len();
        let group = "empty tasks, one busy process per core";
        rows.extend(empty_task_rows(group, &pool, tasks));
        rows.push(std_spawn_row(group, spawned));
    }
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
            ("busy_processes", busy.into()),
        ],
        rows,
        notes: vec![format!(
            "busy: {busy} CPU-bound processes (sh loops) ran beside the \"one busy process per core\" rows"
        )],
    }
}
