//! `ply bench <family>`: a check-up of this machine's primitives — queues,
//! locks, worker start-up, IPC round trips, pool overhead — each family a
//! [`Report`] of rates printed as a table or JSON; and `ply bench checkup`,
//! the figures published tools report (see `checkup`), which can be saved,
//! compared with a saved run and drawn (see `saved`, `crate::plot`).

mod checkup;
mod cpus;
mod ipc;
mod locks;
mod pool;
mod queues;
pub mod saved;
mod spawn;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::report::Report;

/// Most items one run may take (about a minute per family at the slowest).
pub const MAX_ITEMS: u64 = 1_000_000_000;

/// How each check-up row is defined (shown under `ply bench --help`).
pub const CHECKUP_HELP: &str = "\
ply bench checkup: each row defined as a published tool defines it, as a median
of 5 runs with their range, and as a multiple of the floor:
  cache-line round trip  the floor, measured first: two threads on two CPUs take
                         turns writing one cache line (ns per round trip)
  pipe round trip        a 4-byte message to another process and back through
                         two pipes: perf bench sched pipe (usecs/op), lmbench lat_pipe
  fork + exit + wait     the child _exits at once, the parent waits: lmbench
                         lat_proc fork
  futex wake-up          one thread per usable CPU blocked in FUTEX_WAIT, woken one
                         per FUTEX_WAKE: perf bench futex wake -t <CPUs> (per wake-all)
  context switch         two threads pinned to one CPU pass a token by futex, per
                         switch: lmbench lat_ctx -s 0 2 (which uses pipes and
                         subtracts their cost)
--save FILE keeps a run (JSON, every run's figure); --compare FILE prints each row
then and now and calls it regressed or improved only beyond its run-to-run spread
(the larger of the two runs' slowest minus fastest run); --load FILE takes this run from a
saved file instead of measuring (compare two machines: --load B --compare A);
--plot FILE.svg draws this run and the --compare/--also runs side by side
(without a family or --load: only the --also runs).";

/// `ply bench`'s options.
#[derive(Args, Debug)]
#[command(after_help = CHECKUP_HELP)]
pub struct BenchArgs {
    /// What to measure (none: only draw saved check-ups, with --plot and
    /// --also).
    family: Option<BenchFamily>,
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
    /// checkup: save this run to FILE (JSON).
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
    /// checkup: compare this run with a saved one, row by row.
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
    /// Draw check-ups side by side into FILE.svg: this run, the --compare
    /// run and every --also run.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// A saved check-up to draw beside the others (repeatable; needs --plot).
    #[arg(long, value_name = "FILE", requires = "plot")]
    also: Vec<PathBuf>,
    /// Take this run from a saved check-up instead of measuring: to print
    /// it again, or to compare two saved runs (--load NEW --compare OLD).
    #[arg(long, value_name = "FILE", conflicts_with = "family")]
    load: Option<PathBuf>,
}

/// A failed `ply bench`: the exit status and one line.
pub struct BenchError {
    pub code: u8,
    pub message: String,
}

fn misuse(message: impl Into<String>) -> BenchError {
    BenchError {
        code: 2,
        message: message.into(),
    }
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
    /// The figures published tools report (perf bench, lmbench), beside
    /// this machine's floor: see below.
    Checkup,
}

impl BenchFamily {
    fn run(self, items: u64) -> Result<Report, String> {
        Ok(match self {
            BenchFamily::Queues => queues::run(items),
            BenchFamily::Locks => locks::run(items),
            BenchFamily::Pool => pool::run(items.min(1_000_000)),
            BenchFamily::Spawn => spawn::run((items / 1000).clamp(100, 5000))?,
            BenchFamily::Ipc => ipc::run((items / 100).clamp(1000, 100_000))?,
            BenchFamily::All | BenchFamily::Checkup => unreachable!("handled by the caller"),
        })
    }
}

/// Saved check-ups named on the command line: the `--compare` run, and the
/// `--also` runs with the names they are drawn under.
type SavedRuns = (Option<saved::Run>, Vec<(String, saved::Run)>);

/// Checks the check-up options and reads the saved runs they name, before
/// anything is measured (misuse and unreadable files: exit 2).
fn check_options(args: &BenchArgs) -> Result<SavedRuns, BenchError> {
    let checkup = matches!(args.family, Some(BenchFamily::Checkup)) || args.load.is_some();
    if !checkup && (args.save.is_some() || args.compare.is_some()) {
        return Err(misuse(
            "--save and --compare work with `ply bench checkup` (or --load FILE)",
        ));
    }
    if args.json && args.compare.is_some() {
        return Err(misuse(
            "--compare prints a table: drop --json (--save keeps the JSON)",
        ));
    }
    match (&args.family, &args.plot) {
        (None, None) if args.load.is_none() => {
            return Err(misuse("ply bench needs a family (see 'ply bench --help')"));
        }
        (None, Some(_)) if args.also.is_empty() && args.load.is_none() => {
            return Err(misuse(
                "--plot without a family draws saved runs: give them with --also FILE",
            ));
        }
        (Some(f), Some(_)) if !checkup => {
            return Err(misuse(format!(
                "--plot draws check-ups: use `ply bench checkup`, not {}",
                f.to_possible_value()
                    .map_or("this family".into(), |v| v.get_name().to_owned())
            )));
        }
        _ => {}
    }
    if let Some(plot) = &args.plot
        && plot.extension().is_none_or(|e| e != "svg")
    {
        return Err(misuse(format!(
            "--plot {}: the file name must end in .svg",
            plot.display()
        )));
    }
    // A run is not measured only to be lost for want of a directory.
    for (option, path) in [("--save", &args.save), ("--plot", &args.plot)] {
        if let Some(path) = path {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            if !dir.is_dir() {
                return Err(misuse(format!(
                    "{option} {}: {} is not a directory",
                    path.display(),
                    dir.display()
                )));
            }
        }
    }
    let compare = match &args.compare {
        Some(path) => Some(saved::Run::load(path).map_err(misuse)?),
        None => None,
    };
    let also = args
        .also
        .iter()
        .map(|p| {
            Ok((
                p.display().to_string(),
                saved::Run::load(p).map_err(misuse)?,
            ))
        })
        .collect::<Result<Vec<_>, BenchError>>()?;
    Ok((compare, also))
}

/// `ply bench checkup`, `--load`, and the drawing of saved runs.
fn run_checkup(
    args: &BenchArgs,
    compare: Option<saved::Run>,
    also: Vec<(String, saved::Run)>,
) -> Result<Option<String>, BenchError> {
    let scale = if args.full { 5 } else { 1 };
    let now = match (&args.load, args.family) {
        (Some(path), _) => Some((
            path.display().to_string(),
            saved::Run::load(path).map_err(misuse)?,
        )),
        (None, Some(_)) => match checkup::run(scale) {
            Some(run) => Some((format!("this run ({})", run.date), run)),
            None => return Ok(None),
        },
        (None, None) => None,
    };
    let mut text = String::new();
    if let Some((_, run)) = &now {
        text = if args.json {
            format!("{}\n", run.to_json())
        } else {
            run.to_table()
        };
        if let (Some(then), Some(path)) = (&compare, &args.compare) {
            text.push_str(&saved::compare(then, run, &path.display().to_string()));
        }
        if let Some(path) = &args.save {
            run.save(path)
                .map_err(|message| BenchError { code: 1, message })?;
        }
    }
    if let Some(path) = &args.plot {
        let mut runs: Vec<(String, saved::Run)> = now.into_iter().collect();
        if let (Some(then), Some(p)) = (compare, &args.compare) {
            runs.push((p.display().to_string(), then));
        }
        runs.extend(also);
        crate::plot::checkups(path, &runs).map_err(|message| BenchError { code: 1, message })?;
    }
    Ok(Some(text))
}

/// Runs the chosen families; returns the text to print, or `None` if a stop
/// signal arrived between two families.
///
/// # Errors
///
/// Misused options (exit 2), or a file that could not be written (exit 1).
pub fn run(args: &BenchArgs) -> Result<Option<String>, BenchError> {
    let (compare, also) = check_options(args)?;
    let family = match args.family {
        None | Some(BenchFamily::Checkup) => return run_checkup(args, compare, also),
        Some(family) => family,
    };
    let items = args
        .items
        .unwrap_or(if args.full { 10_000_000 } else { 2_000_000 });
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
    let mut reports = Vec::new();
    for family in families {
        if crate::interrupt::interrupted() {
            return Ok(None);
        }
        reports.push(family.run(items).map_err(|message| BenchError {
            code: 1,
            message: format!(
                "bench {}: {message}",
                clap::ValueEnum::to_possible_value(&family)
                    .map_or_else(String::new, |v| v.get_name().to_owned())
            ),
        })?);
    }
    if crate::interrupt::interrupted() {
        return Ok(None);
    }
    Ok(Some(if args.json && reports.len() == 1 {
        format!("{}\n", reports[0].to_json())
    } else if args.json {
        let all: Vec<String> = reports.iter().map(Report::to_json).collect();
        format!("[{}]\n", all.join(","))
    } else {
        let tables: Vec<String> = reports.iter().map(Report::to_table).collect();
        tables.join("\n")
    }))
}
