//! `ply demo <workload>`: the classic threads-vs-processes experiments, run for
//! real on each backend and printed as one table.
//!
//! Every workload runs on the chosen backends in the order seq, threads,
//! processes, each timed on its own; the result of each is checked against the
//! others (a difference is an error, exit 1, never a success line).
//!
//! With `--scaling`, seq runs once as the baseline and each parallel backend
//! runs at every worker count of a list (1, 2, 4, ... up to the usable CPUs,
//! or the `-j` values): the speed-up curves of the threads-vs-processes
//! lesson, printed as the same table and, with `--plot FILE.svg`, drawn
//! beside the ideal line (`crate::plot`).

mod copy;
mod counter;
mod pipeline;
mod primes;
mod sleep;
mod squares;

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use ply_os::process::MAX_MAP_WORKERS;

pub use crate::interrupt::interrupted;
use crate::report::{Align, Table};

/// Largest `--n` for primes (trial division to 10⁹ takes minutes per core).
pub const MAX_PRIMES_N: u64 = 1_000_000_000;
/// Most limits primes takes in one run.
pub const MAX_PRIMES_LIMITS: usize = 64;
/// Largest `--n` for squares (about a minute on one core).
pub const MAX_SQUARES_N: u64 = 100_000_000_000;
/// Largest `--n` (increments in all) for counter.
pub const MAX_COUNTER_N: u64 = 1_000_000_000;
/// Most items pipeline moves (its arrival check keeps one bit per item).
pub const MAX_PIPELINE_ITEMS: u64 = 1_000_000_000;
/// Most bytes copy writes in total (files × size), so a typo cannot fill a disk.
pub const MAX_COPY_MIB: u64 = 64 << 10;

/// How to run a workload.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// One thread, no parallelism: the baseline.
    Seq,
    /// ply's thread pool (shared memory, one process).
    Threads,
    /// ply's process backend (fork; isolation, no shared heap).
    Processes,
    /// All three, one after the other.
    All,
}

/// A backend that actually runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Seq,
    Threads,
    Processes,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Seq => "seq",
            Backend::Threads => "threads",
            Backend::Processes => "processes",
        }
    }
}

/// Options every workload takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Which backend(s) to run.
    #[arg(long, value_enum, default_value_t = BackendChoice::All)]
    pub backend: BackendChoice,
    /// Workers for the parallel backends (default: available parallelism;
    /// at most 256, the process map's limit).
    /// The table's peak RSS is this process's high-water mark for seq and
    /// threads, and the largest worker's for processes.
    /// With --scaling, a comma-separated list of worker counts.
    #[arg(short = 'j', long, value_delimiter = ',', num_args = 1,
          value_parser = clap::value_parser!(u64).range(1..=MAX_MAP_WORKERS as u64))]
    pub jobs: Vec<u64>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// A scaling curve: one seq run (the baseline), then each parallel
    /// backend at 1, 2, 4, ... workers up to the usable CPUs (or at each
    /// -j value), each with its speed-up over seq.
    #[arg(long)]
    pub scaling: bool,
    /// With --scaling: draw speed-up against workers, one curve per backend
    /// and the ideal line, into FILE.svg.
    #[arg(long, value_name = "FILE.svg", requires = "scaling")]
    pub plot: Option<std::path::PathBuf>,
}

/// The workloads.
#[derive(Subcommand, Debug)]
pub enum Workload {
    /// CPU-bound: sum of the primes <= n for each n (6k±1 trial division),
    /// split into fine chunks so speed-up approaches the core count.
    Primes {
        /// The limits, comma-separated (each at most 10⁹, at most 64 of them).
        #[arg(long = "n", value_delimiter = ',', num_args = 1.., default_values_t = [1_000_000u64, 2_000_000, 3_000_000],
              value_parser = clap::value_parser!(u64).range(0..=MAX_PRIMES_N))]
        limits: Vec<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// CPU-bound: the sum of i² for i < n, split across workers.
    Squares {
        /// How many squares (at most 10¹¹).
        #[arg(long, default_value_t = 100_000_000, value_parser = clap::value_parser!(u64).range(0..=MAX_SQUARES_N))]
        n: u64,
        #[command(flatten)]
        common: Common,
    },
    /// I/O-bound: T tasks each waiting D ms; threads and processes both
    /// overlap the waits, so wall time ≈ ceil(T / workers) × D.
    Sleep {
        /// Tasks.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        tasks: u64,
        /// Milliseconds each task waits.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        ms: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Real file I/O: writes K files of S MiB in a temporary directory, copies
    /// them with each backend, verifies every copy byte for byte, removes it
    /// all (also on Ctrl-C).
    Copy {
        /// Files.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        files: u64,
        /// MiB per file (files × size at most 64 GiB).
        #[arg(long = "size-mib", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
        size_mib: u64,
        #[command(flatten)]
        common: Common,
    },
    /// The race-condition lesson without undefined behaviour: the workers add
    /// 1, N times in all, as a separate load and store (updates get lost, and
    /// are counted), under a lock, and as one atomic fetch_add. Every backend
    /// does the same N increments, so speed-ups compare equal work.
    Counter {
        /// Increments in all, split across the workers (at most 10⁹).
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(0..=MAX_COUNTER_N))]
        n: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Producer/consumer: threads through ply's lock-free queues, processes
    /// through the shared-memory process queue; every item checked to arrive
    /// exactly once. A consumer and at least one producer: two workers even
    /// with -j 1, and the table says so.
    Pipeline {
        /// Items to move (at most 10⁹).
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=MAX_PIPELINE_ITEMS))]
        items: u64,
        #[command(flatten)]
        common: Common,
    },
}

/// A workload's body: run on a backend with this many workers.
type Job = dyn Fn(Backend, usize) -> Result<Outcome, String>;

/// What one backend produced.
pub struct Outcome {
    /// Shown in the table.
    pub shown: String,
    /// Compared between backends (must be equal).
    pub check: String,
    /// Workers that actually ran, when the workload needs more than asked
    /// (pipeline: a consumer and at least one producer).
    pub workers_used: Option<usize>,
}

impl Outcome {
    /// An outcome whose workers are the ones asked for.
    pub fn new(shown: String, check: String) -> Outcome {
        Outcome {
            shown,
            check,
            workers_used: None,
        }
    }
}

/// One backend's run.
struct Run {
    backend: Backend,
    workers: usize,
    wall: Duration,
    outcome: Outcome,
    peak_rss_kib: u64,
}

/// A failed demo: exit code, message, and any table to print first.
pub struct Failed {
    pub code: u8,
    pub message: String,
    pub output: String,
}

impl Failed {
    pub fn runtime(message: impl Into<String>) -> Failed {
        Failed {
            code: 1,
            message: message.into(),
            output: String::new(),
        }
    }

    fn misuse(message: impl Into<String>) -> Failed {
        Failed {
            code: 2,
            ..Failed::runtime(message)
        }
    }
}

/// The options every workload takes.
fn common_of(workload: &Workload) -> &Common {
    match workload {
        Workload::Primes { common, .. }
        | Workload::Squares { common, .. }
        | Workload::Sleep { common, .. }
        | Workload::Copy { common, .. }
        | Workload::Counter { common, .. }
        | Workload::Pipeline { common, .. } => common,
    }
}

/// Checks `-j`, `--scaling` and `--plot` together (exit 2, one line).
fn check_scaling(common: &Common) -> Result<(), Failed> {
    if !common.scaling {
        if common.jobs.len() > 1 {
            return Err(Failed::misuse(
                "several -j values draw a scaling curve: add --scaling",
            ));
        }
        return Ok(());
    }
    if common.backend == BackendChoice::Seq {
        return Err(Failed::misuse(
            "--scaling needs a parallel backend: --backend threads, processes or all",
        ));
    }
    if let Some(plot) = &common.plot {
        if plot.extension().is_none_or(|e| e != "svg") {
            return Err(Failed::misuse(format!(
                "--plot {}: the file name must end in .svg",
                plot.display()
            )));
        }
        let dir = match plot.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        if !dir.is_dir() {
            return Err(Failed::misuse(format!(
                "--plot {}: {} is not a directory",
                plot.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Checks the bounds that involve more than one option (exit 2, one line).
fn check_bounds(workload: &Workload) -> Result<(), Failed> {
    check_scaling(common_of(workload))?;
    match workload {
        Workload::Primes { limits, .. } if limits.len() > MAX_PRIMES_LIMITS => {
            Err(Failed::misuse(format!(
                "--n takes at most {MAX_PRIMES_LIMITS} limits, not {}",
                limits.len()
            )))
        }
        Workload::Copy {
            files, size_mib, ..
        } if files * size_mib > MAX_COPY_MIB => Err(Failed::misuse(format!(
            "--files {files} x --size-mib {size_mib} is {} MiB; at most {MAX_COPY_MIB} MiB (64 GiB)",
            files * size_mib
        ))),
        _ => Ok(()),
    }
}

/// Runs a workload; `Ok` with the text to print.
pub fn run(workload: Workload) -> Result<String, Failed> {
    check_bounds(&workload)?;
    let (name, params, common, job): (&str, serde_json::Value, Common, Box<Job>) = match workload {
        Workload::Primes { limits, common } => (
            "primes",
            serde_json::json!({ "n": limits }),
            common,
            Box::new(move |b, j| primes::run(b, j, &limits)),
        ),
        Workload::Squares { n, common } => (
            "squares",
            serde_json::json!({ "n": n }),
            common,
            Box::new(move |b, j| squares::run(b, j, n)),
        ),
        Workload::Sleep { tasks, ms, common } => (
            "sleep",
            serde_json::json!({ "tasks": tasks, "ms": ms }),
            common,
            Box::new(move |b, j| sleep::run(b, j, tasks, ms)),
        ),
        Workload::Copy {
            files,
            size_mib,
            common,
        } => {
            let params = serde_json::json!({ "files": files, "size_mib": size_mib });
            // Removed when dropped, whatever happened (and by the signal
            // watcher if it has to end the process by force).
            let result = copy::Workspace::create(files, size_mib)
                .map_err(Failed::runtime)
                .and_then(|dir| run_backends("copy", params, &common, &|b, j| dir.copy_with(b, j)));
            return finish(result);
        }
        Workload::Counter { n, common } => (
            "counter",
            serde_json::json!({ "n": n }),
            common,
            Box::new(move |b, j| counter::run(b, j, n)),
        ),
        Workload::Pipeline { items, common } => (
            "pipeline",
            serde_json::json!({ "items": items }),
            common,
            Box::new(move |b, j| pipeline::run(b, j, items)),
        ),
    };
    finish(run_backends(name, params, &common, &*job))
}

/// Exit 128 + the signal if a stop signal came (whatever the runs said), else
/// the runs' result.
fn finish(result: Result<String, Failed>) -> Result<String, Failed> {
    if let Some(code) = crate::interrupt::exit_code() {
        return Err(Failed {
            code,
            message: "interrupted; temporary files removed and child processes reaped".into(),
            output: String::new(),
        });
    }
    result
}

/// The CPUs this process may use, capped at the process map's limit.
fn usable_cpus() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_MAP_WORKERS)
}

/// The worker counts of a scaling curve: the `-j` values (sorted, each
/// once), else 1, 2, 4, ... below the usable CPUs, and the CPUs.
fn scaling_workers(common: &Common) -> Vec<usize> {
    let mut workers: Vec<usize> = if common.jobs.is_empty() {
        let cpus = usable_cpus();
        std::iter::successors(Some(1usize), |w| Some(w * 2))
            .take_while(|&w| w < cpus)
            .chain([cpus])
            .collect()
    } else {
        common.jobs.iter().map(|&j| j as usize).collect()
    };
    workers.sort_unstable();
    workers.dedup();
    workers
}

/// The runs to make, in order: (backend, workers).
fn plan(common: &Common) -> Vec<(Backend, usize)> {
    let parallel: &[Backend] = match common.backend {
        BackendChoice::Seq => &[],
        BackendChoice::Threads => &[Backend::Threads],
        BackendChoice::Processes => &[Backend::Processes],
        BackendChoice::All => &[Backend::Threads, Backend::Processes],
    };
    if common.scaling {
        let workers = scaling_workers(common);
        return std::iter::once((Backend::Seq, 1))
            .chain(
                parallel
                    .iter()
                    .flat_map(|&b| workers.iter().map(move |&w| (b, w))),
            )
            .collect();
    }
    let jobs = common
        .jobs
        .first()
        .map_or_else(usable_cpus, |&j| j as usize);
    let seq = matches!(common.backend, BackendChoice::Seq | BackendChoice::All);
    seq.then_some((Backend::Seq, 1))
        .into_iter()
        .chain(parallel.iter().map(|&b| (b, jobs)))
        .collect()
}

fn run_backends(
    name: &str,
    params: serde_json::Value,
    common: &Common,
    job: &dyn Fn(Backend, usize) -> Result<Outcome, String>,
) -> Result<String, Failed> {
    let progress = std::io::stderr().is_terminal() && !common.json;
    let mut runs: Vec<Run> = Vec::new();
    for (backend, workers) in plan(common) {
        if interrupted() {
            break;
        }
        let note = progress.then(|| Progress::after_a_second(name, backend, workers));
        let sampler = (backend == Backend::Processes).then(ChildPeakSampler::start);
        let start = Instant::now();
        let outcome = job(backend, workers);
        let wall = start.elapsed();
        drop(note);
        let peak_rss_kib = match sampler {
            Some(sampler) => sampler.finish(),
            None => own_peak_rss_kib(),
        };
        let outcome =
            outcome.map_err(|e| Failed::runtime(format!("{name} on {}: {e}", backend.name())))?;
        runs.push(Run {
            backend,
            workers: outcome.workers_used.unwrap_or(workers),
            wall,
            outcome,
            peak_rss_kib,
        });
    }
    let mismatch = runs
        .iter()
        .find(|r| r.outcome.check != runs[0].outcome.check)
        .map(|r| {
            format!(
                "{name}: {} gave {} but {} gave {}",
                r.backend.name(),
                r.outcome.shown,
                runs[0].backend.name(),
                runs[0].outcome.shown
            )
        });
    if let (Some(path), None, false) = (&common.plot, &mismatch, interrupted()) {
        let title = format!("ply demo {name} {params}: speed-up over seq");
        crate::plot::scaling(path, &title, &scaling_series(&runs)).map_err(Failed::runtime)?;
    }
    let text = if common.json {
        to_json(name, params, &runs)
    } else {
        to_table(name, &params, &runs, mismatch.is_none())
    };
    match mismatch {
        Some(message) => Err(Failed {
            output: text,
            ..Failed::runtime(format!("results differ: {message}"))
        }),
        None => Ok(text),
    }
}

/// A status line on stderr for a run that takes longer than a second; cleared
/// when dropped.
struct Progress {
    done: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn after_a_second(name: &str, backend: Backend, workers: usize) -> Progress {
        let line = format!(
            "{name}: running {} with {workers} worker(s)...",
            backend.name()
        );
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if finished.recv_timeout(Duration::from_secs(1)).is_ok() {
                return;
            }
            crate::out::stderr(&line);
            let _ = finished.recv();
            crate::out::stderr(&format!("\r{:width$}\r", "", width = line.len()));
        });
        Progress {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let _ = self.done.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// This process's peak resident memory (`VmHWM`, which unlike `getrusage`
/// starts afresh at `exec`), in KiB.
fn own_peak_rss_kib() -> u64 {
    crate::mem::status_field_kib(std::process::id(), "VmHWM:").unwrap_or(0)
}

/// Samples the peak RSS of this process's child processes every 20 ms while
/// alive; `finish` returns the largest (KiB). `getrusage(RUSAGE_CHILDREN)`
/// cannot be used: its maximum is inherited from whatever ran before `exec`
/// (under `cargo run`, the compiler).
struct ChildPeakSampler {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<u64>,
}

impl ChildPeakSampler {
    fn start() -> ChildPeakSampler {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let me = std::process::id() as i32;
            let mut peak = 0;
            loop {
                for child in ply_os::fork::children_of(me) {
                    let hwm = crate::mem::status_field_kib(child as u32, "VmHWM:");
                    peak = peak.max(hwm.unwrap_or(0));
                }
                match stopped.recv_timeout(Duration::from_millis(20)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => return peak,
                }
            }
        });
        ChildPeakSampler { stop, thread }
    }

    fn finish(self) -> u64 {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or(0)
    }
}

/// The curves of a scaling run: per parallel backend, in the order run,
/// (workers, speed-up over seq) at each worker count.
fn scaling_series(runs: &[Run]) -> Vec<(String, Vec<(usize, f64)>)> {
    let mut series: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    for r in runs.iter().filter(|r| r.backend != Backend::Seq) {
        let Some(x) = speedup(runs, r) else { continue };
        let name = r.backend.name();
        match series.iter_mut().find(|(n, _)| n == name) {
            Some((_, points)) => points.push((r.workers, x)),
            None => series.push((name.to_owned(), vec![(r.workers, x)])),
        }
    }
    series
}

/// Speed-up over the seq run (same work), if seq ran.
fn speedup(runs: &[Run], r: &Run) -> Option<f64> {
    runs.iter()
        .find(|r| r.backend == Backend::Seq)
        .map(|s| s.wall.as_secs_f64() / r.wall.as_secs_f64().max(1e-9))
}

fn to_table(name: &str, params: &serde_json::Value, runs: &[Run], agree: bool) -> String {
    let mut table = Table::new(&[
        ("backend", Align::Left),
        ("workers", Align::Right),
        ("wall", Align::Right),
        ("speed-up", Align::Right),
        ("efficiency", Align::Right),
        ("peak RSS", Align::Right),
        ("result", Align::Left),
    ]);
    for r in runs {
        let (speedup, efficiency) = match speedup(runs, r) {
            Some(x) => (
                format!("{x:.2}x"),
                format!("{:.0}%", 100.0 * x / r.workers as f64),
            ),
            None => ("-".into(), "-".into()),
        };
        table.row(vec![
            r.backend.name().into(),
            r.workers.to_string(),
            format!("{:.3} s", r.wall.as_secs_f64()),
            speedup,
            efficiency,
            format!("{:.1} MiB", r.peak_rss_kib as f64 / 1024.0),
            r.outcome.shown.clone(),
        ]);
    }
    let mut out = format!("ply demo {name} {params}\n{}", table.render());
    let mut backends: Vec<Backend> = runs.iter().map(|r| r.backend).collect();
    backends.dedup();
    if runs.len() > 1 && agree {
        if backends.len() == runs.len() {
            let _ = writeln!(out, "results agree across {} backends", runs.len());
        } else {
            let _ = writeln!(
                out,
                "results agree across {} runs on {} backends",
                runs.len(),
                backends.len()
            );
        }
    }
    out
}

fn to_json(name: &str, params: serde_json::Value, runs: &[Run]) -> String {
    let rows: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let speedup = speedup(runs, r);
            serde_json::json!({
                "backend": r.backend.name(),
                "workers": r.workers,
                "wall_s": r.wall.as_secs_f64(),
                "speedup": speedup,
                "efficiency": speedup.map(|x| x / r.workers as f64),
                "peak_rss_kib": r.peak_rss_kib,
                "result": r.outcome.shown,
                "check": r.outcome.check,
                "matches_first": r.outcome.check == runs[0].outcome.check,
            })
        })
        .collect();
    let mut text =
        serde_json::json!({ "workload": name, "params": params, "runs": rows }).to_string();
    text.push('\n');
    text
}
