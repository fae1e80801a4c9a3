//! `ply` — threads vs processes, measured on this machine.
//!
//! - `ply demo <workload>`: the classic experiments (primes, squares, sleep,
//!   copy, counter, pipeline) on one thread, ply's thread pool and ply's
//!   process backend, in one table with speed-ups and checked results.
//! - `ply bench <family>`: a check-up of this machine's primitives — queues,
//!   locks, worker start-up, IPC round trips, pool overhead.
#![deny(missing_docs)]

mod bench_ipc;
mod bench_locks;
mod bench_pool;
mod bench_queues;
mod bench_spawn;
mod cpus;
mod demo;
mod mem;
mod report;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// ply: parallel work in Rust, measured on your machine.
#[derive(Parser, Debug)]
#[command(name = "ply", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a classic threads-vs-processes experiment on each backend and
    /// compare: wall time, speed-up over one thread, efficiency, peak memory,
    /// and the result checked across backends.
    Demo {
        #[command(subcommand)]
        workload: demo::Workload,
    },
    /// Quick check-up of this machine: how fast are ply's primitives here?
    Bench {
        /// What to measure.
        family: BenchFamily,
        /// Items moved (queues), lock operations (locks), tasks (pool) per run;
        /// spawn and ipc derive their counts from it. Each comparison runs 5
        /// times and reports the median and range. Default: 2,000,000
        /// (--quick), 10,000,000 (--full).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1000..))]
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
    },
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
    fn run(self, items: u64) -> report::Report {
        match self {
            BenchFamily::Queues => bench_queues::run(items),
            BenchFamily::Locks => bench_locks::run(items),
            BenchFamily::Pool => bench_pool::run(items.min(1_000_000)),
            BenchFamily::Spawn => bench_spawn::run((items / 1000).clamp(100, 5000)),
            BenchFamily::Ipc => bench_ipc::run((items / 100).clamp(1000, 100_000)),
            BenchFamily::All => unreachable!("expanded by the caller"),
        }
    }
}

/// Folds a clap error into one line (`error: ... [possible values: ...]`),
/// dropping the usage block and the "for more information" hint.
fn one_line(err: &clap::Error) -> String {
    err.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version: print as clap formats them, exit 0.
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err)
            if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            // `ply` alone: show the help (it is the best hint), but it is misuse.
            let _ = err.print();
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("{} (see 'ply --help')", one_line(&err));
            return ExitCode::from(2);
        }
    };
    // Ctrl-C / SIGTERM: flag it; workloads stop at the next safe point, and
    // the temporary files and child processes are cleaned up on the way out.
    let _ =
        ctrlc::set_handler(|| demo::INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed));
    match cli.command {
        Command::Demo { workload } => match demo::run(workload) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(failed) => {
                eprintln!("error: {}", failed.message);
                ExitCode::from(failed.code)
            }
        },
        Command::Bench {
            family,
            items,
            quick: _,
            full,
            json,
        } => {
            let items = items.unwrap_or(if full { 10_000_000 } else { 2_000_000 });
            let families = match family {
                BenchFamily::All => vec![
                    BenchFamily::Queues,
                    BenchFamily::Locks,
                    BenchFamily::Spawn,
                    BenchFamily::Ipc,
                    BenchFamily::Pool,
                ],
                one => vec![one],
            };
            let reports: Vec<report::Report> = families.iter().map(|f| f.run(items)).collect();
            if json && reports.len() == 1 {
                println!("{}", reports[0].to_json());
            } else if json {
                let all: Vec<String> = reports.iter().map(report::Report::to_json).collect();
                println!("[{}]", all.join(","));
            } else {
                for (i, r) in reports.iter().enumerate() {
                    if i > 0 {
                        println!();
                    }
                    print!("{}", r.to_table());
                }
            }
            ExitCode::SUCCESS
        }
    }
}
