//! `ply bench ipc`: one message to another process and back, by each route;
//! and the per-item cost of a fork-join map.

use std::hint::black_box;
use std::time::Instant;

use ply_os::fork::scope;
use ply_os::ipc::{ProcessQueue, fork_duplex};
use ply_os::process::{MapOptions, ProcessPoolBuilder, clear_result_cache, map, map_plain};

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
    ) {
        scope(|s| {
            if let Ok(child) = s.fork_child(|| {
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
        });
    }

    // A socket pair: framed, serialized messages.
    {
        let echo = fork_duplex::<u64, u64, _>(|mut end| {
            while let Ok(x) = end.recv() {
                if end.send(&(x + 1)).is_err() {
                    break;
                }
            }
            0
        });
        if let Ok((mut parent, echo)) = echo {
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
    let notes = fork_join_map(&mut rows);
    Report {
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
    }
}

/// Items of the fork-join map rows, as in `benches/process.rs`.
const MAP_ITEMS: u64 = 1_000_000;

/// The per-item cost of a fork-join map (two worker processes, default
/// chunks) over trivial items (x + 1), beside one thread doing the same;
/// returns the ns-per-item notes.
fn fork_join_map(rows: &mut Vec<Row>) -> Vec<String> {
    let group = "fork-join map, 2 processes (items)";
    let inputs: Vec<u64> = (0..MAP_ITEMS).collect();
    let options = MapOptions::new().workers(2);
    // The first call maps fresh pages for its results; later calls reuse
    // them (see `SharedResults`). Both are shown: the rows are steady state.
    clear_result_cache();
    let start = Instant::now();
    black_box(map_plain(&inputs, |x| x + 1, &options).ok());
    let cold = start.elapsed();
    let plain = Row::measure(
        group,
        "ply map_plain (shared memory)",
        RUNS,
        MAP_ITEMS,
        || {
            let start = Instant::now();
            let out = map_plain(&inputs, |x| x + 1, &options);
            let took = start.elapsed();
            black_box(out.map(|r| r[r.len() - 1]).ok());
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
            black_box(map(&inputs, |x| x + 1, &options).ok());
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
    rows.extend([plain, serialized, sequential]);
    notes
}
