//! `ply run`'s options and their parsers. Every bound is checked here, at
//! parse time: misuse is one line on stderr and exit 255 (GNU parallel's
//! status for it).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::halt::Halt;
use super::shard::ShardSpec;
use super::term::TermSeq;

/// Exit statuses, as GNU parallel's (shown under `ply run --help`).
pub const EXIT_HELP: &str = "\
Commands: a command with shell syntax (| & ; < > ( ) $ ` \\ \" ' * ? [ ] # ~ ! or
{ } outside replacement strings, or a word with spaces) runs as `/bin/sh -c`, every
substituted value shell-quoted; any other command is executed directly, each
value one argument. With no replacement string the values are appended.

Replacement strings: {} the value(s), {.} without extension, {/} basename,
{//} directory, {/.} basename without extension, {#} job number, {%} job slot,
{N} the N-th input source's value (also {N.} {N/} {N//} {N/.}).

Exit status (as GNU parallel's, so scripts keep working):
  0        every job succeeded
  1-100    that many jobs failed
  101      more than 100 jobs failed
  255      misuse or another error of ply's own
  with --halt, the status of the job that caused the halt
  129/130/143  stopped by SIGHUP/SIGINT/SIGTERM (every job's tree killed)

Jobs ply stops on its way out (a stop signal, --halt now, an error such as an
input line that is not text) did not finish: as GNU parallel does, their
output is dropped and they are not logged, so --resume runs them again. So
is a failed job whose retries the stop took away. A job that never started
for want of resources (file descriptors, processes, memory) is not failed
either: -j is capped to the descriptors `ulimit -n` leaves, and a start
refused anyway waits for a running job to end (with none running, ply stops
with status 255 and the reason); any other failure to set a job up (a pipe,
its cgroup) stops the run the same way.";

/// Most jobs at once.
pub const MAX_JOBS: u64 = 4096;
/// Largest `--pipe` block.
pub const MAX_BLOCK: u64 = 1 << 30;
/// Most runs of one job (`--retries`).
pub const MAX_RETRIES: u64 = 1000;

/// `ply run`'s options. The command and its inputs follow them.
#[derive(Args, Debug)]
#[command(after_help = EXIT_HELP)]
pub struct RunArgs {
    /// Jobs at once: N, or N% of the CPUs this process may use
    /// [default: every CPU this process may use].
    #[arg(short = 'j', long = "jobs", value_parser = parse_jobs, value_name = "N|N%")]
    pub jobs: Option<JobsSpec>,
    /// Print each job's output in input order (still one job at a time).
    #[arg(short = 'k', long = "keep-order")]
    pub keep_order: bool,
    /// Print output as soon as whole lines are ready; lines of different
    /// jobs may interleave, but never within a line.
    #[arg(long, conflicts_with = "keep_order")]
    pub line_buffer: bool,
    /// Prefix each output line with the job's arguments and a tab.
    #[arg(long)]
    pub tag: bool,
    /// Print the commands that would run, one per line, and run none.
    #[arg(long)]
    pub dry_run: bool,
    /// Pair the input sources' values (the n-th of each) instead of taking
    /// their cartesian product; shorter sources wrap around.
    #[arg(long)]
    pub link: bool,
    /// Kill a job (its whole tree, by --term-seq) that runs longer than this:
    /// a duration (30s, 2m, 1h, 500ms; a bare number is seconds) or a
    /// percentage of the median runtime of the jobs that succeeded so far
    /// (300%).
    #[arg(long, value_parser = parse_timeout, value_name = "DURATION|N%")]
    pub timeout: Option<TimeoutSpec>,
    /// Runs of a failing job in all, as GNU parallel counts them
    /// (1: no retry; at most 1000).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_RETRIES))]
    pub retries: u64,
    /// When to stop: now|soon,fail=N|fail=N%|success=N|success=N%|done=N|done=N%.
    /// `now` kills running jobs, `soon` lets them finish; no new job starts.
    #[arg(long, value_parser = Halt::parse, value_name = "WHEN,COND=N")]
    pub halt: Option<Halt>,
    /// How a job is stopped: signals and the milliseconds to wait after
    /// each, ending with KILL (default: TERM, 1 s for the job to exit, then KILL).
    #[arg(long, value_parser = TermSeq::parse, default_value = "TERM,1000,KILL,25", value_name = "SIG,MS,...")]
    pub term_seq: TermSeq,
    /// Append one line per finished job to FILE, written and flushed as the
    /// job ends: GNU parallel's tab-separated columns (Seq Host Starttime
    /// JobRuntime Send Receive Exitval Signal Command), or JSON lines.
    #[arg(long, value_name = "FILE")]
    pub joblog: Option<PathBuf>,
    /// The joblog's format.
    #[arg(long, value_enum, default_value_t = JoblogFormat::Tsv, requires = "joblog")]
    pub joblog_format: JoblogFormat,
    /// Skip every job whose exact command the joblog records as run to the
    /// end (succeeded or failed); jobs are matched by content, not number.
    /// Jobs ply stopped on its way out are not in the joblog: they run.
    #[arg(long, requires = "joblog", conflicts_with = "resume_failed")]
    pub resume: bool,
    /// Skip every job whose exact command the joblog records as succeeded;
    /// run the failed ones again, and those not yet run.
    #[arg(long, requires = "joblog")]
    pub resume_failed: bool,
    /// Run only shard K of N (1-based K), a contiguous share of the jobs
    /// by job number: `K/N`, or `auto` from a Slurm array
    /// (SLURM_ARRAY_TASK_*), an AWS Batch array (AWS_BATCH_JOB_ARRAY_*), or
    /// `auto/N` with a Kubernetes Indexed Job's JOB_COMPLETION_INDEX.
    #[arg(long, value_parser = ShardSpec::parse, value_name = "K/N|auto|auto/N")]
    pub shard: Option<ShardSpec>,
    /// Split stdin into blocks (see --block) cut at line ends, and give each
    /// block to a job on its stdin.
    #[arg(long, conflicts_with_all = ["resume", "resume_failed", "shard"])]
    pub pipe: bool,
    /// Block size for --pipe: bytes, or with K, M, G (1024-based); at most 1G.
    #[arg(long, default_value = "1M", value_parser = parse_size, requires = "pipe")]
    pub block: u64,
    /// A progress bar on stderr (only when stderr is a terminal; counts the
    /// jobs first).
    #[arg(long)]
    pub bar: bool,
    /// Estimated time left on stderr (only when stderr is a terminal).
    #[arg(long)]
    pub eta: bool,
    /// Contain jobs with process groups and the subreaper sweep only, even
    /// where a cgroup v2 per job could be created (see the README for what
    /// that cannot see).
    #[arg(long)]
    pub no_cgroup: bool,
    /// The command, then its inputs: `::: value...` (arguments), `:::: file...`
    /// (lines of files; - is stdin). Without either, lines of stdin.
    #[arg(trailing_var_arg = true, num_args = 0.., value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `-j`: a count or a share of the CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobsSpec {
    Count(usize),
    Percent(u64),
}

impl JobsSpec {
    /// The job slots for `cpus` usable CPUs (at least 1).
    pub fn slots(self, cpus: usize) -> usize {
        match self {
            JobsSpec::Count(n) => n,
            JobsSpec::Percent(p) => ((cpus as u64 * p) / 100).clamp(1, MAX_JOBS) as usize,
        }
    }
}

fn parse_jobs(text: &str) -> Result<JobsSpec, String> {
    if let Some(p) = text.strip_suffix('%') {
        let p: u64 = p.parse().map_err(|_| format!("'{text}' is not N or N%"))?;
        if p == 0 || p > 10_000 {
            return Err(format!("{p}% is not in 1%..=10000%"));
        }
        return Ok(JobsSpec::Percent(p));
    }
    let n: u64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not N or N%"))?;
    if n == 0 || n > MAX_JOBS {
        return Err(format!("{n} is not in 1..={MAX_JOBS}"));
    }
    Ok(JobsSpec::Count(n as usize))
}

/// `--timeout`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeoutSpec {
    Fixed(Duration),
    /// Percent of the median runtime of succeeded jobs.
    Percent(f64),
}

/// A duration: a number with an optional unit (ms, s, m, h, d; default s).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (like 30s, 2m, 500ms)"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => {
            return Err(format!(
                "'{unit}' in '{text}' is not a unit (ms, s, m, h, d)"
            ));
        }
    };
    let secs = value * scale;
    if !(secs > 0.0 && secs <= 365.0 * 86400.0) {
        return Err(format!("'{text}' is not between 1 ms and 365 days"));
    }
    Ok(Duration::from_secs_f64(secs).max(Duration::from_millis(1)))
}

fn parse_timeout(text: &str) -> Result<TimeoutSpec, String> {
    if let Some(p) = text.strip_suffix('%') {
        let p: f64 = p.parse().map_err(|_| format!("'{text}' is not N%"))?;
        if !(p > 0.0 && p <= 1_000_000.0) {
            return Err(format!("'{text}' is not in (0%, 1000000%]"));
        }
        return Ok(TimeoutSpec::Percent(p));
    }
    parse_duration(text).map(TimeoutSpec::Fixed)
}

/// A size: bytes, or with K, M, G (powers of 1024), at most [`MAX_BLOCK`].
fn parse_size(text: &str) -> Result<u64, String> {
    let upper = text.to_ascii_uppercase();
    let (number, shift) = match upper.trim_end_matches('B').chars().last() {
        Some('K') => (&upper[..upper.find('K').unwrap_or(0)], 10),
        Some('M') => (&upper[..upper.find('M').unwrap_or(0)], 20),
        Some('G') => (&upper[..upper.find('G').unwrap_or(0)], 30),
        _ => (upper.trim_end_matches('B'), 0),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size (like 64K, 1M)"))?;
    let bytes = n
        .checked_mul(1 << shift)
        .filter(|&b| (1..=MAX_BLOCK).contains(&b))
        .ok_or_else(|| format!("'{text}' is not between 1 byte and 1G"))?;
    Ok(bytes)
}

/// `--joblog-format`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoblogFormat {
    /// GNU parallel's tab-separated columns, with its header line.
    Tsv,
    /// One JSON object per line, with the same fields.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_accept_the_documented_forms_and_reject_the_rest() {
        assert_eq!(parse_jobs("4"), Ok(JobsSpec::Count(4)));
        assert_eq!(parse_jobs("50%"), Ok(JobsSpec::Percent(50)));
        assert!(
            parse_jobs("0").is_err() && parse_jobs("5000").is_err() && parse_jobs("x").is_err()
        );
        assert_eq!(JobsSpec::Percent(50).slots(2), 1);
        assert_eq!(JobsSpec::Percent(10).slots(2), 1);
        assert_eq!(JobsSpec::Percent(300).slots(2), 6);
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0").is_err() && parse_duration("3y").is_err());
        assert!(parse_duration("1000d").is_err());
        assert_eq!(parse_timeout("300%"), Ok(TimeoutSpec::Percent(300.0)));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1mb"), Ok(1 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("2G").is_err() && parse_size("0").is_err() && parse_size("x").is_err());
        assert!(parse_size("18446744073709551615K").is_err());
    }
}
