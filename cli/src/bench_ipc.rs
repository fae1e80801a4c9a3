//! `ply bench ipc`: one message to another process and back, by each route.

use std::time::Instant;

use ply_os::fork::fork_child;
use ply_os::ipc::{ProcessQueue, duplex};
use ply_os::process::ProcessPoolBuilder;

use crate::report::{Report, Row};

const RUNS: usize = 5;
/// Tells the echo child to stop.
const STOP: u64 = u64::MAX;

/// `trips` round trips per run.
pub fn run(trips: u64) -> Report {
    let group = "round trips to another process";
    let mut rows = Vec::new();

    // Shared memory: two queues, there and back; the child echoes x + 1.
    if let (Ok(there), Ok(back)) = (
        ProcessQueue::<u64, 64>::new(),
        ProcessQueue::<u64, 64>::new(),
    ) && let Ok(child) = fork_child(|| {
        loop {
            let x = there.get();
            if x == STOP {
                return 0;
            }
            back.put(x + 1);
        }
    }) {
        rows.push(Row::measure(
            group,
            "ply ProcessQueue (shared memory)",
            RUNS,
            trips,
            || {
                let start = Instant::now();
                for i in 0..trips {
                    there.put(i);
                    let _ = back.get();
                }
                start.elapsed()
            },
        ));
        there.put(STOP);
        let _ = child.wait();
    }

    // A socket pair: framed, serialized messages.
    if let Ok((parent, child_end)) = duplex::<u64, u64>() {
        let mut parent = Some(parent);
        let echo = fork_child(|| {
            drop(parent.take());
            let mut end = child_end.reverse();
            while let Ok(x) = end.recv() {
                if end.send(&(x + 1)).is_err() {
                    break;
                }
            }
            0
        });
        if let (Ok(echo), Some(mut parent)) = (echo, parent) {
            rows.push(Row::measure(
                group,
                "ply Duplex (socket pair, postcard)",
                RUNS,
                trips,
                || {
                    let start = Instant::now();
                    for i in 0..trips {
                        let _ = parent.send(&i);
                        let _ = parent.recv();
                    }
                    start.elapsed()
                },
            ));
            drop(parent);
            let _ = echo.wait();
        }
    }

    // The process pool: submit, run the handler in a worker, join.
    if let Ok(pool) = ProcessPoolBuilder::new().workers(1).build(|x: u64| x + 1) {
        let pool_trips = (trips / 10).max(100);
        rows.push(Row::measure(
            group,
            "ply ProcessPool submit + join",
            RUNS,
            pool_trips,
            || {
                let start = Instant::now();
                for i in 0..pool_trips {
                    if let Ok(task) = pool.submit(&i) {
                        let _ = task.join();
                    }
                }
                start.elapsed()
            },
        ));
    }
    Report {
        family: "ipc",
        headline: format!(
            "one u64 there and back: {trips} round trips x {RUNS} runs (pool: a tenth)"
        ),
        params: vec![("trips", trips.into()), ("runs", RUNS.into())],
        rows,
        notes: Vec::new(),
    }
}
