//! `ply` — threads vs processes, measured on this machine.
//!
//! For now: `ply bench queues`, `ply bench locks` and `ply bench pool`, quick
//! comparisons of ply's primitives with std's. The demos and the other benchmark families arrive
//! with the thread and process backends.
#![deny(missing_docs)]

mod bench_ipc;
mod bench_locks;
mod bench_pool;
mod bench_queues;
mod bench_spawn;
mod cpus;
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
    /// Quick check-up of this machine: how fast are ply's primitives here?
    Bench {
        /// What to measure.
        family: BenchFamily,
        /// Items moved (queues), lock operations (locks) or tasks (pool, at most
        /// 1,000,000) per run; each comparison runs 5 times and reports the median.
        #[arg(long, default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1000..))]
        items: u64,
        /// Print one JSON object instead of a table.
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
    match cli.command {
        Command::Bench {
            family,
            items,
            json,
        } => {
            let report = match family {
                BenchFamily::Queues => bench_queues::run(items),
                BenchFamily::Locks => bench_locks::run(items),
                BenchFamily::Pool => bench_pool::run(items.min(1_000_000)),
                BenchFamily::Spawn => bench_spawn::run((items / 1000).clamp(100, 5000)),
                BenchFamily::Ipc => bench_ipc::run((items / 100).clamp(1000, 100_000)),
            };
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            ExitCode::SUCCESS
        }
    }
}
