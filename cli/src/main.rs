//! `ply` — threads vs processes, measured on this machine.
//!
//! For now: `ply bench queues`, a quick comparison of ply's queues with std's
//! `sync_channel`. The demos and the other benchmark families arrive with the
//! thread and process backends.
#![deny(missing_docs)]

mod bench_queues;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// ply: parallel work in Rust, measured on your machine.
#[derive(Parser, Debug)]
#[command(name = "ply", version, about, long_about = None)]
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
        /// Items moved per run (each comparison runs 5 times and reports the median).
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
    /// ring and MPMC queue beside std's `sync_channel`.
    Queues,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench {
            family: BenchFamily::Queues,
            items,
            json,
        } => {
            let report = bench_queues::run(items);
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            ExitCode::SUCCESS
        }
    }
}
