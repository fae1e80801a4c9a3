//! `ply bench spawn`: what starting a worker costs — a thread or a process —
//! in time, and what an idle one costs in memory.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ply_os::fork::fork_child;

use crate::mem::{pss_kib, rss_kib};
use crate::report::{FirstFailure, Report, Row};

const RUNS: usize = 5;
/// Idle workers measured for memory.
const IDLE: usize = 8;

/// `starts` thread and process starts per run. A fork refused (no process
/// can be started: `RLIMIT_NPROC`, memory) is an error, never timed as a
/// start.
pub fn run(starts: u64) -> Result<Report, String> {
    let group = "start + stop one worker";
    let mut failure = FirstFailure::default();
    let forks = Row::measure(
        group,
        "fork + waitpid (ply fork_child)",
        RUNS,
        starts,
        || {
            let start = Instant::now();
            for _ in 0..starts {
                if let Some(child) = failure.note("forking a child", fork_child(|| 0)) {
                    let _ = child.wait();
                }
            }
            start.elapsed()
        },
    );
    failure.check()?;
    let threads = Row::measure(group, "std thread::spawn + join", RUNS, starts, || {
        let start = Instant::now();
        for i in 0..starts {
            let _ = std::thread::spawn(move || black_box(i)).join();
        }
        start.elapsed()
    });
    let rows = vec![forks, threads];
    let (thread_kib, process_rss_kib, process_pss_kib) = idle_memory()?;
    let notes = vec![
        format!("memory of {IDLE} idle workers (KiB each):"),
        format!("  {:<34} {:>12}", "threads (RSS growth)", thread_kib),
        format!("  {:<34} {:>12}", "forked processes, RSS", process_rss_kib),
        format!(
            "  {:<34} {:>12}",
            "forked processes, PSS (fair share)", process_pss_kib
        ),
    ];
    Ok(Report {
        family: "spawn",
        headline: format!(
            "worker start-up: {starts} starts x {RUNS} runs; memory of {IDLE} idle workers"
        ),
        params: vec![
            ("starts", starts.into()),
            ("runs", RUNS.into()),
            ("idle_workers", IDLE.into()),
            ("thread_kib_each", thread_kib.into()),
            ("process_rss_kib_each", process_rss_kib.into()),
            ("process_pss_kib_each", process_pss_kib.into()),
        ],
        rows,
        notes,
    })
}

/// KiB per idle worker: (thread RSS growth, process RSS, process PSS).
fn idle_memory() -> Result<(u64, u64, u64), String> {
    let me = std::process::id();
    let before = rss_kib(me).unwrap_or(0);
    let gate = Arc::new(Barrier::new(IDLE + 1));
    let threads: Vec<_> = (0..IDLE)
        .map(|_| {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                gate.wait(); // started
                gate.wait(); // released
            })
        })
        .collect();
    gate.wait();
    let with_threads = rss_kib(me).unwrap_or(before);
    gate.wait();
    for t in threads {
        let _ = t.join();
    }
    let thread_kib = with_threads.saturating_sub(before) / IDLE as u64;

    let children = (0..IDLE)
        .map(|_| {
            fork_child(|| {
                std::thread::sleep(Duration::from_secs(30));
                0
            })
            .map_err(|e| format!("forking an idle child: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    std::thread::sleep(Duration::from_millis(50));
    let n = children.len().max(1) as u64;
    let rss: u64 = children
        .iter()
        .filter_map(|c| rss_kib(c.pid() as u32))
        .sum();
    let pss: u64 = children
        .iter()
        .filter_map(|c| pss_kib(c.pid() as u32))
        .sum();
    drop(children); // killed and reaped
    Ok((thread_kib, rss / n, pss / n))
}
