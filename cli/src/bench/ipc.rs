//! `ply bench ipc`: one message to another process and back, by each route;
//! and the per-item cost of a fork-join map.

use std::hint::black_box;
use std::time::Instant;

use ply_os::fork::scope;
use ply_os::ipc::{ProcessQueue, fork_duplex};
use ply_os::process::{
    MapOptions, ProcessPoolBuilder, clear_result_cache, map_slice, map_slice_plain,
};

use crate::report::{FirstFailure, Report, Row};

const RUNS: usize = 5;
/// Tells the echo child to stop.
const STOP: u64 = u64::MAX;
/// How long a round trip through the queues waits before looking whether
/// the echo process still lives.
const ECHO_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// `trips` round trips per run. A route that cannot be set up (no process
/// can be forked: `RLIMIT_NPROC`, memory) or fails while measured is an
/// error, never a missing row or a rate measured on failures.
pub fn run(trips: u64) -> Result<Report, String> {
    let group = "round trips to another process";
    let mut rows = Vec::new();
    let mut failure = FirstFailure::default();

    // Shared memory: two queues, there and back; the child echoes x + 1.
    let there = ProcessQueue::<u64, 64>::new().map_err(|e| format!("a process queue: {e}"))?;
    let back = ProcessQueue::<u64, 64>::new().map_err(|e| format!("a process queue: {e}"))?;
    scope(|s| {
        let mut child = s
            .fork_child(|| {
                loop {
                    let x = there.recv();
                    if x == STOP {
                        return 0;
                    }
                    back.send(x + 1);
                }
            })
            .map_err(|e| format!("forking the queue's echo process: {e}"))?;
        rows.push(Row::measure(
            group,
            "ply ProcessQueue (shared memory)",
            RUNS,
            trips,
            || {
                let start = Instant::now();
                'trips: for i in 0..trips {
                    if failure.failed() {
                        break;
                    }
                    there.send(i);
                    // The echo process may die (or be killed): no wait
                    // without a look at whether it still lives.
                    while back.recv_timeout(ECHO_CHECK).is_none() {
                        match child.try_wait() {
                            Ok(None) => {}
                            Ok(Some(exit)) => {
                                failure.note::<(), _>("the queue's echo process", Err(exit));
                                break 'trips;
                            }
                            Err(e) => {
                                failure.note::<(), _>("the queue's echo process", Err(e));
                                break 'trips;
                            }
                        }
                    }
                }
                start.elapsed()
            },
        ));
        if !failure.failed() {
            there.send(STOP);
        }
        let _ = child.wait();
        Ok::<(), String>(())
    })?;
    failure.check()?;
    let mut failure = FirstFailure::default();

    // A socket pair: framed, serialized messages.
    let (mut parent, echo) = fork_duplex::<u64, u64, _>(|mut end| {
        while let Ok(x) = end.recv() {
            if end.send(&(x + 1)).is_err() {
                break;
            }
        }
        0
    })
    .map_err(|e| format!("forking the socket pair's echo process: {e}"))?;
    rows.push(Row::measure(
        group,
        "ply Duplex (socket pair, postcard)",
        RUNS,
        trips,
        || {
            let start = Instant::now();
            for i in 0..trips {
                failure.note("a socket pair round trip", parent.send(&i));
                failure.note("a socket pair round trip", parent.recv());
            }
            start.elapsed()
        },
    ));
    drop(parent);
    let _ = echo.wait();
    failure.check()?;
    let mut failure = FirstFailure::default();

    // The process pool: submit, run the handler in a worker, join.
    let pool = ProcessPoolBuilder::new()
        .workers(1)
        .build(|x: u64| x + 1)
        .map_err(|e| format!("a process pool: {e}"))?;
    let pool_trips = (trips / 10).max(100);
    rows.push(Row::measure(
        group,
        "ply ProcessPool submit + join",
        RUNS,
        pool_trips,
        || {
            let start = Instant::now();
            for i in 0..pool_trips {
                if let Some(task) = failure.note("a process pool task", pool.submit(&i)) {
                    failure.note("a process pool task", task.join());
                }
            }
            start.elapsed()
        },
    ));
    drop(pool);
    failure.check()?;
    let notes = fork_join_map(&mut rows)?;
    Ok(Report {
        family: "ipc",
        headline: format!(
            "one u64 there and back: {trips} round trips x {RUNS} runs (pool: a tenth); \
             fork-join map of {MAP_ITEMS} items"
        ),
        params: vec![
            ("trips", trips.into()),
            ("runs", RUNS.into()),
            ("map_items", MAP_ITEMS.into()),
        ],
        rows,
        notes,
    })
}

/// Items of the fork-join map rows, as in `benches/process.rs`.
const MAP_ITEMS: u64 = 1_000_000;

/// The per-item cost of a fork-join map (two worker processes, default
/// chunks) over trivial items (x + 1), beside one thread doing the same;
/// returns the ns-per-item notes.
fn fork_join_map(rows: &mut Vec<Row>) -> Result<Vec<String>, String> {
    let mut failure = FirstFailure::default();
    let group = "fork-join map, 2 processes (items)";
    let inputs: Vec<u64> = (0..MAP_ITEMS).collect();
    let options = MapOptions::new().workers(2);
    // The first call maps fresh pages for its results; later calls reuse
    // them (see `SharedResults`). Both are shown: the rows are steady state.
    clear_result_cache();
    let start = Instant::now();
    black_box(failure.note(
        "a fork-join map",
        map_slice_plain(&inputs, |x| x + 1, &options),
    ));
    let cold = start.elapsed();
    let plain = Row::measure(
        group,
        "ply map_plain (shared memory)",
        RUNS,
        MAP_ITEMS,
        || {
            let start = Instant::now();
            let out = map_slice_plain(&inputs, |x| x + 1, &options);
            let took = start.elapsed();
            black_box(failure.note("a fork-join map", out.map(|r| r[r.len() - 1])));
            took
        },
    );
    let serialized = Row::measure(
        group,
        "ply map (serialized results)",
        RUNS,
        MAP_ITEMS,
        || {
            let start = Instant::now();
            black_box(failure.note("a fork-join map", map_slice(&inputs, |x| x + 1, &options)));
            start.elapsed()
        },
    );
    let sequential = Row::measure(group, "one thread (no processes)", RUNS, MAP_ITEMS, || {
        let start = Instant::now();
        black_box(inputs.iter().map(|x| x + 1).collect::<Vec<u64>>());
        start.elapsed()
    });
    let mut notes: Vec<String> = [&plain, &serialized]
        .iter()
        .map(|r| format!("{}: {:.1} ns per item", r.name, 1e9 / r.median))
        .collect();
    notes.push(format!(
        "map_plain's first call (fresh result mapping): {:.1} ns per item",
        cold.as_nanos() as f64 / MAP_ITEMS as f64
    ));
    failure.check()?;
    rows.extend([plain, serialized, sequential]);
    Ok(notes)
}
