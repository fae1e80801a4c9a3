//! `ply bench <family>`: a check-up of this machine's primitives — queues,
//! locks, worker start-up, IPC round trips, pool overhead — each family a
//! [`Report`] of rates printed as a table or JSON.

mod cpus;
mod ipc;
mod locks;
mod pool;
mod queues;
mod spawn;

use clap::{Args, ValueEnum};

use crate::report::Report;

/// Most items one run may take (about a minute per family at the slowest).
pub const MAX_ITEMS: u64 = 1_000_000_000;

/// `ply bench`'s options.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    family: BenchFamily,
    /// Items moved (queues), lock operations (locks), tasks (pool) per run;
    /// spawn and ipc derive their counts from it. Each comparison runs 5
    /// times and reports the median and range. Default: 2,000,000
    /// (--quick), 10,000,000 (--full); at most 1,000,000,000.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1000..=MAX_ITEMS))]
    items: Option<u64>,
    /// Short runs, a few seconds per family (the default).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Five times longer runs, for steadier numbers.
    #[arg(long)]
    full: bool,
    /// Print JSON instead of a table (one object; an array for `all`).
    #[arg(long)]
    json: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum BenchFamily {
    /// Queue throughput between two threads pinned to different CPUs: ply's SPSC
    /// ring and MPMC queues beside std's `sync_channel`.
    Queues,
    /// Lock + unlock rates, alone and with two threads contending: ply's spin
    /// and ticket locks beside std's `Mutex`.
    Locks,
    /// Tasks per second through ply's thread pool beside a std thread per task,
    /// and a data-parallel sum beside a sequential one.
    Pool,
    /// Starting a worker: fork + wait beside thread spawn + join; memory of
    /// idle threads and idle forked processes.
    Spawn,
    /// Round trips to another process: shared-memory queue, socket pair, and
    /// the process pool.
    Ipc,
    /// Every family above, one after the other.
    All,
}

impl BenchFamily {
    fn run(self, items: u64) -> Report {
        match self {
            BenchFamily::Queues => queues::run(items),
            BenchFamily::Locks => locks::run(items),
            BenchFamily::Pool => pool::run(items.min(1_000_000)),
            BenchFamily::Spawn => spawn::run((items / 1000).clamp(100, 5000)),
            BenchFamily::Ipc => ipc::run((items / 100).clamp(1000, 100_000)),
            BenchFamily::All => unreachable!("expanded by the caller"),
        }
    }
}

/// Runs the chosen families; returns the text to print, or `None` if a stop
/// signal arrived between two families.
pub fn run(args: &BenchArgs) -> Option<String> {
    let items = args
        .items
        .unwrap_or(if args.full { 10_000_000 } else { 2_000_000 });
    let families = match args.family {
        BenchFamily::All => vec![
            BenchFamily::Queues,
            BenchFamily::Locks,
            BenchFamily::Spawn,
            BenchFamily::Ipc,
            BenchFamily::Pool,
        ],
        one => vec![one],
    };
    let mut reports = Vec::new();
    for family in families {
        if crate::interrupt::interrupted() {
            return None;
        }
        reports.push(family.run(items));
    }
    if crate::interrupt::interrupted() {
        return None;
    }
    Some(if args.json && reports.len() == 1 {
        format!("{}\n", reports[0].to_json())
    } else if args.json {
        let all: Vec<String> = reports.iter().map(Report::to_json).collect();
        format!("[{}]\n", all.join(","))
    } else {
        let tables: Vec<String> = reports.iter().map(Report::to_table).collect();
        tables.join("\n")
    })
}
