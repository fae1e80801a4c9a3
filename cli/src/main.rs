//! `ply` — parallel work on this machine, measured.
//!
//! - `ply run`: run a command for every input line or argument, in parallel,
//!   like GNU parallel, with whole job trees killed on timeout or Ctrl-C,
//!   joblogs matched by content for `--resume`, and cluster array shards.
//! - `ply demo <workload>`: the classic experiments (primes, squares, sleep,
//!   copy, counter, pipeline) on one thread, ply's thread pool and ply's
//!   process backend, in one table with speed-ups and checked results.
//! - `ply bench <family>`: a check-up of this machine's primitives — queues,
//!   locks, worker start-up, IPC round trips, pool overhead.
#![deny(missing_docs)]

mod bench;
mod demo;
mod interrupt;
mod mem;
mod out;
mod plot;
mod report;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Bench(bench::BenchArgs),
    /// Run a command for every input, in parallel (like GNU parallel):
    /// `ply run [OPTIONS] COMMAND ::: VALUES...`, `:::: FILES`, or stdin lines.
    /// Whole job trees are killed on timeout, halt or Ctrl-C.
    Run(run::RunArgs),
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
    // `ply run` reports misuse with GNU parallel's 255; other commands with 2.
    let misuse = if std::env::args().nth(1).as_deref() == Some("run") {
        run::EXIT_ERROR
    } else {
        2
    };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version: print as clap formats them, exit 0.
            return match out::stdout(&err.render().to_string()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(failed) => failed.exit(),
            };
        }
        Err(err)
            if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            // `ply` alone: show the help (it is the best hint), but it is misuse.
            out::stderr(&err.render().to_string());
            return ExitCode::from(misuse);
        }
        Err(err) => {
            out::stderr(&format!("{} (see 'ply --help')\n", one_line(&err)));
            return ExitCode::from(misuse);
        }
    };
    if let Command::Run(args) = cli.command {
        // ply run handles its signals in its event loop.
        return run::main(args);
    }
    // SIGINT / SIGTERM / SIGHUP: flag it; workloads stop at the next safe
    // point, or are ended by force after a grace period (see interrupt.rs).
    interrupt::install();
    interrupt::end_on_panic();
    match cli.command {
        Command::Demo { workload } => match demo::run(workload) {
            Ok(text) => match out::stdout(&text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(failed) => failed.exit(),
            },
            Err(failed) => {
                if let Err(write) = out::stdout(&failed.output) {
                    return write.exit();
                }
                out::error_line(&failed.message);
                ExitCode::from(failed.code)
            }
        },
        Command::Run(_) => unreachable!("handled above"),
        Command::Bench(args) => match bench::run(&args) {
            Ok(Some(text)) => match out::stdout(&text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(failed) => failed.exit(),
            },
            Ok(None) => {
                out::error_line("interrupted");
                ExitCode::from(interrupt::exit_code().unwrap_or(130))
            }
            Err(failed) => {
                out::error_line(&failed.message);
                ExitCode::from(failed.code)
            }
        },
    }
}
