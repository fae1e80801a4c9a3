//! The event loop of `ply run`: start jobs into free slots, wait on all of
//! them at once, stop them on deadlines, and account for every one.
//!
//! One thread waits in `poll(2)` on: each running job's pidfd (readable when
//! its leader exits), its stdout and stderr pipes, its stdin pipe in `--pipe`
//! mode, the feeder's eventfd (inputs ready), and the self-pipe that
//! signal-hook writes SIGINT/SIGTERM/SIGHUP to. The poll timeout is the
//! nearest deadline: a job's `--timeout`, the next step of a `--term-seq`, a
//! job's output drain after its leader exited. So nothing waits without a
//! deadline, and ply's own signals are seen within one loop turn.
//!
//! ply's own stdout and stderr are polled too: output goes through
//! non-blocking sinks (`sink`), so a reader that stops reading never stalls
//! the loop. While a sink is full, no new job starts and, with
//! `--line-buffer`, the jobs' pipes are not read (the jobs block on their
//! writes, and a finished job's pipes are not given up on); grouped output
//! keeps going to the captures, which spill to temporary files. At the end,
//! the loop waits for the output to leave — for as long as the reader
//! takes, still answering signals; after a stop signal, for at most
//! [`OUTPUT_GRACE`].
//!
//! A job ends in three steps: its leader exits (pidfd), [`Job::finish`]
//! kills what it left behind and reaps the leader, and its pipes are read to
//! the end (or for at most [`DRAIN_LIMIT`] if an escaped process holds them).
//! Then it is retried, or logged, printed and counted for `--halt`.

use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::time::{Duration, Instant, SystemTime};

use ply_os::job::{Io, Job, JobCommand, JobHost, SetupError};

use super::args::TimeoutSpec;
use super::capture::Capture;
use super::feed::{Feed, Item};
use super::halt::Halt;
use super::joblog::{Entry, Joblog, Outcomes};
use super::printer::{Finished, Printer, Stream};
use super::progress::Progress;
use super::template::{Invocation, Template};
use super::term::TermSeq;

/// How long a finished job's pipes may stay open (held by a process that
/// escaped every containment) before they are closed.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);
/// Bytes read from one pipe per loop turn, so one chatty job cannot starve
/// the others.
const READ_PER_TURN: usize = 256 << 10;
/// How often orphans are swept while jobs end.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// After a stop signal, how long output already finished may take to leave
/// ply (a reader that stalls loses the rest).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// What the run is configured to do.
pub struct Config {
    pub slots: usize,
    pub template: Template,
    pub timeout: Option<TimeoutSpec>,
    pub retries: u64,
    pub halt: Option<Halt>,
    pub term_seq: TermSeq,
    pub tag: bool,
    pub joblog: Option<Joblog>,
    /// `--resume` (skip any logged) / `--resume-failed` (skip succeeded).
    pub resume: Option<(Outcomes, bool)>,
    pub containment: ply_os::job::Containment,
    /// Jobs in the run (known when counting was needed).
    pub total: Option<u64>,
    pub progress: Option<Progress>,
}

/// How the run ended.
pub enum Ended {
    /// Every job ran (or was skipped): this many failed.
    Done { failed: u64 },
    /// `--halt` stopped it; the status of the job that caused it.
    Halted { status: u8 },
    /// A stop signal (its number).
    Signalled(i32),
    /// Writing ply's own output failed.
    Output(io::Error),
    /// Something else went wrong (input, joblog, spawning machinery).
    Error(String),
}

/// A job waiting to start (new or retried).
struct Pending {
    order: u64,
    seq: u64,
    values: Vec<String>,
    block: Option<Vec<u8>>,
    tries: u64,
    /// The command text, fixed on the first try (so retries and the joblog
    /// agree).
    text: Option<String>,
}

/// Stopping a job: the next `--term-seq` step and when it is due.
struct Stopping {
    step: usize,
    next_at: Instant,
}

/// A running job.
struct Running {
    pending: Pending,
    slot: usize,
    text: String,
    job: Option<Job>,
    /// Set for a job that could not start (127/126), with its message.
    spawn_failure: Option<i32>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    stdin: Option<ChildStdin>,
    sent: usize,
    out: Capture,
    err: Capture,
    partial_out: Vec<u8>,
    partial_err: Vec<u8>,
    started: Instant,
    started_wall: SystemTime,
    deadline: Option<Instant>,
    stopping: Option<Stopping>,
    timed_out: bool,
    /// ply stopped it on its way out (a stop signal, `--halt now`, an
    /// error) before it ended on its own: it did not finish its work.
    cut_short: bool,
    status: Option<std::process::ExitStatus>,
    drain_until: Option<Instant>,
}

impl Running {
    fn tag(&self, on: bool) -> Option<String> {
        on.then(|| self.pending.values.join(" "))
    }
}

/// The running median of succeeded jobs' runtimes (two heaps), for
/// `--timeout N%`.
#[derive(Default)]
struct Median {
    low: BinaryHeap<u64>,
    high: BinaryHeap<std::cmp::Reverse<u64>>,
}

impl Median {
    fn push(&mut self, micros: u64) {
        if self.low.peek().is_none_or(|&top| micros <= top) {
            self.low.push(micros);
        } else {
            self.high.push(std::cmp::Reverse(micros));
        }
        if self.low.len() > self.high.len() + 1 {
            let top = self.low.pop().unwrap_or_default();
            self.high.push(std::cmp::Reverse(top));
        } else if self.high.len() > self.low.len() {
            let std::cmp::Reverse(top) = self.high.pop().unwrap_or_default();
            self.low.push(top);
        }
    }

    fn get(&self) -> Option<Duration> {
        self.low.peek().map(|&m| Duration::from_micros(m))
    }
}

/// Sets `O_NONBLOCK` on a pipe `fd` (whose other status flags are unset,
/// as std creates its pipes: one `fcntl` instead of two).
fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on an fd we hold a borrow of; no pointers involved.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Finds `program` in `PATH` as `execvp` would (an executable regular file
/// in the first directory that has one); `None` if nowhere. Done once per
/// program name, so a run of 10,000 jobs does not retry every `PATH`
/// directory (one failed `execve` each) 10,000 times.
fn find_in_path(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).find_map(|dir| {
        let dir = if dir.as_os_str().is_empty() {
            ".".into()
        } else {
            dir
        };
        let candidate = dir.join(program);
        std::fs::metadata(&candidate)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .then_some(candidate)
    })
}

/// Whether a start failed for want of a resource of ply's or the system's
/// (descriptors, processes, memory) rather than for anything about the
/// job: such a job never ran, and may start once another job ends.
fn out_of_resources(e: &io::Error) -> bool {
    let cause = SetupError::of(e).map_or(e, SetupError::cause);
    matches!(
        cause.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EAGAIN | libc::ENOMEM)
    )
}

/// The loop's state.
pub struct Engine {
    config: Config,
    host: Option<JobHost>,
    feed: Feed,
    /// Items taken from the feeder, not yet started.
    fed: VecDeque<Item>,
    feed_done: bool,
    signals: UnixStream,
    /// The last stop signal's number (set by signal-hook beside the pipe).
    last_signal: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    printer: Printer,
    running: Vec<Running>,
    free_slots: Vec<usize>,
    retry: VecDeque<Pending>,
    next_order: u64,
    failed: u64,
    succeeded: u64,
    halt_status: Option<u8>,
    /// No new job starts (halt, signal, error).
    draining: bool,
    signal: Option<i32>,
    error: Option<Ended>,
    median: Median,
    /// Programs found in `PATH` (`None`: not found).
    programs: std::collections::HashMap<String, Option<std::path::PathBuf>>,
    last_sweep: Instant,
    /// Whether no sweep is due: set once a sweep leaves no orphan to reap,
    /// cleared when a job ends.
    swept_since_end: bool,
    /// When the first stop signal arrived; a second one ends the run at
    /// once, output or not.
    signalled_at: Option<Instant>,
    hurry: bool,
    /// Jobs' pipes were not read last turn (a full sink, line-buffer mode).
    paused: bool,
    /// A start failed for want of resources: none starts until a running
    /// job ends.
    starved: bool,
    /// Whether that was said on stderr (once a run).
    warned_resources: bool,
}

impl Engine {
    /// Sets the loop up; `signals` is the read end of the signal self-pipe,
    /// `last_signal` the number of the last signal written to it.
    pub fn new(
        config: Config,
        feed: Feed,
        signals: (UnixStream, std::sync::Arc<std::sync::atomic::AtomicUsize>),
        printer: Printer,
    ) -> io::Result<Engine> {
        let (signals, last_signal) = signals;
        set_nonblocking(signals.as_fd())?;
        let host = JobHost::with_containment(config.containment)?;
        let slots = config.slots;
        Ok(Engine {
            config,
            host: Some(host),
            feed,
            fed: VecDeque::new(),
            feed_done: false,
            signals,
            last_signal,
            printer,
            running: Vec::with_capacity(slots),
            free_slots: (1..=slots).rev().collect(),
            retry: VecDeque::new(),
            next_order: 0,
            failed: 0,
            succeeded: 0,
            halt_status: None,
            draining: false,
            signal: None,
            error: None,
            median: Median::default(),
            programs: std::collections::HashMap::new(),
            last_sweep: Instant::now(),
            swept_since_end: true,
            signalled_at: None,
            hurry: false,
            paused: false,
            starved: false,
            warned_resources: false,
        })
    }

    fn host(&mut self) -> &mut JobHost {
        self.host
            .as_mut()
            .expect("the host lives until the run ends")
    }

    /// Runs every job; returns how the run ended.
    pub fn run(mut self) -> Ended {
        loop {
            self.start_jobs();
            if self.running.is_empty()
                && (self.draining || (self.feed_done && self.retry.is_empty()))
                && self.output_done()
            {
                break;
            }
            if let Err(e) = self.turn() {
                self.fail(Ended::Error(format!("waiting for jobs: {e}")));
            }
        }
        self.sweep(true);
        if let Some(progress) = self.config.progress.take() {
            progress.finish();
        }
        drop(self.host.take()); // removes the cgroups
        if let Some(sig) = self.signal {
            return Ended::Signalled(sig);
        }
        if let Some(error) = self.error.take() {
            return error;
        }
        if let Some(status) = self.halt_status {
            return Ended::Halted { status };
        }
        Ended::Done {
            failed: self.failed,
        }
    }

    /// Whether the run may end as far as output goes: everything printed,
    /// or printing given up (a write error, a second stop signal, or the
    /// grace after a stop signal over).
    fn output_done(&self) -> bool {
        self.printer.idle()
            || self.hurry
            || matches!(self.error, Some(Ended::Output(_)))
            || self
                .signalled_at
                .is_some_and(|at| at.elapsed() >= OUTPUT_GRACE)
    }

    /// Whether jobs' output pipes are read: not while a sink is full in
    /// line-buffer mode, where output goes straight to the sinks (grouped
    /// output goes to the captures, which spill to temporary files).
    fn reading(&self) -> bool {
        !self.printer.line_buffer || self.printer.has_room()
    }

    /// Records a fatal problem: no new jobs, the running ones are stopped.
    fn fail(&mut self, error: Ended) {
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.stop_all();
    }

    /// Stops every running job (by `--term-seq`) and starts no new one.
    /// The jobs it stops are cut short: not logged, so `--resume` runs
    /// them again — all but one already stopped by its own `--timeout`
    /// with no retry left, which failed whatever ply does next.
    fn stop_all(&mut self) {
        self.draining = true;
        let now = Instant::now();
        let retries = self.config.retries;
        for r in &mut self.running {
            if r.job.is_none() || r.status.is_some() {
                continue; // never started, or ended on its own
            }
            if !(r.timed_out && r.pending.tries >= retries) {
                r.cut_short = true;
            }
            if r.stopping.is_none() {
                r.stopping = Some(Stopping {
                    step: 0,
                    next_at: now,
                });
            }
        }
        self.advance_stops(now);
    }

    /// Takes the next job to start: a retry, or the next input item.
    fn next_pending(&mut self) -> Option<Pending> {
        if let Some(p) = self.retry.pop_front() {
            return Some(p);
        }
        loop {
            if self.fed.is_empty() {
                if self.feed_done {
                    return None;
                }
                match self.feed.items.try_recv() {
                    Ok(batch) => self.fed.extend(batch),
                    Err(crossbeam_channel::TryRecvError::Empty) => return None,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        self.feed_done = true;
                        return None;
                    }
                }
                continue;
            }
            let item = self.fed.pop_front().expect("not empty");
            let (index, values, block) = match item {
                Item::Values(index, values) => (index, values, None),
                Item::Block(index, bytes) => (index, Vec::new(), Some(bytes)),
                Item::Failed(message) => {
                    self.feed_done = true;
                    self.fail(Ended::Error(message));
                    return None;
                }
            };
            let mut pending = Pending {
                order: 0,
                seq: index + 1,
                values,
                block,
                tries: 0,
                text: None,
            };
            if let Some((outcomes, only_failed)) = &self.config.resume {
                // With `{%}`, the logged command is the one of the slot the
                // job ran in: any slot's counts (a success in any wins).
                // Slots above this run's -j (a first run with a higher -j)
                // are not tried: those jobs run again.
                let slots = if self.config.template.uses_slot() {
                    self.config.slots
                } else {
                    1
                };
                let mut logged = None;
                for slot in 1..=slots {
                    let text = self.command_text(&pending, slot);
                    match outcomes.get(&text) {
                        Some(true) => {
                            logged = Some(true);
                            break;
                        }
                        Some(false) => logged = Some(false),
                        None => {}
                    }
                    if slots == 1 {
                        pending.text = Some(text);
                    }
                }
                let skip = match logged {
                    Some(succeeded) => succeeded || !*only_failed,
                    None => false,
                };
                if skip {
                    if let Some(p) = &self.config.progress {
                        p.skipped();
                    }
                    continue;
                }
            }
            pending.order = self.next_order;
            self.next_order += 1;
            return Some(pending);
        }
    }

    /// The command for a job on `slot`.
    fn invocation(&self, pending: &Pending, slot: usize) -> Invocation {
        self.config
            .template
            .expand(&pending.values, pending.seq, slot)
    }

    fn command_text(&self, pending: &Pending, slot: usize) -> String {
        self.invocation(pending, slot).text().into_owned()
    }

    /// Starts jobs while slots are free and work is ready.
    fn start_jobs(&mut self) {
        // A full sink (a reader that stalls) holds new jobs back.
        while !self.draining
            && !self.starved
            && !self.free_slots.is_empty()
            && self.printer.has_room()
        {
            let Some(pending) = self.next_pending() else {
                return;
            };
            let slot = self.free_slots.pop().expect("a free slot");
            self.start(pending, slot);
        }
    }

    fn start(&mut self, mut pending: Pending, slot: usize) {
        pending.tries += 1;
        let invocation = self.invocation(&pending, slot);
        let text = pending
            .text
            .get_or_insert_with(|| invocation.text().into_owned())
            .clone();
        let mut command = match &invocation {
            Invocation::Direct(argv) if argv[0].contains('/') || argv[0].is_empty() => {
                let mut c = JobCommand::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            Invocation::Direct(argv) => {
                let found = self
                    .programs
                    .entry(argv[0].clone())
                    .or_insert_with(|| find_in_path(&argv[0]));
                // Not in PATH: spawning by name fails as "not found" below.
                let mut c =
                    JobCommand::new(found.as_deref().unwrap_or(std::path::Path::new(&argv[0])));
                c.arg0(&argv[0]).args(&argv[1..]);
                c
            }
            Invocation::Shell(text) => {
                let mut c = JobCommand::new("/bin/sh");
                c.arg("-c").arg(text);
                c
            }
        };
        command
            .stdin(if pending.block.is_some() {
                Io::Piped
            } else {
                Io::Null
            })
            .stdout(Io::Piped)
            .stderr(Io::Piped);
        let now = Instant::now();
        let mut running = Running {
            slot,
            text,
            job: None,
            spawn_failure: None,
            stdout: None,
            stderr: None,
            stdin: None,
            sent: 0,
            out: Capture::default(),
            err: Capture::default(),
            partial_out: Vec::new(),
            partial_err: Vec::new(),
            started: now,
            started_wall: SystemTime::now(),
            deadline: match self.config.timeout {
                Some(TimeoutSpec::Fixed(d)) => Some(now + d),
                Some(TimeoutSpec::Percent(p)) => {
                    self.median.get().map(|m| now + m.mul_f64(p / 100.0))
                }
                None => None,
            },
            stopping: None,
            timed_out: false,
            cut_short: false,
            status: None,
            drain_until: None,
            pending,
        };
        match self.host().spawn(&command) {
            Ok(mut job) => {
                running.stdout = job.take_stdout();
                running.stderr = job.take_stderr();
                running.stdin = job.take_stdin();
                for fd in [
                    running.stdout.as_ref().map(|f| f.as_fd()),
                    running.stderr.as_ref().map(|f| f.as_fd()),
                    running.stdin.as_ref().map(|f| f.as_fd()),
                ]
                .into_iter()
                .flatten()
                {
                    if let Err(e) = set_nonblocking(fd) {
                        self.fail(Ended::Error(format!("a job's pipe: {e}")));
                    }
                }
                running.job = Some(job);
            }
            Err(e) if out_of_resources(&e) || SetupError::of(&e).is_some() => {
                // Not the job's fault, and it never ran. For want of
                // resources, it starts again once a running job has given
                // them back. Otherwise, or with none running, the next
                // start would fare no better: the run stops, saying why.
                self.free_slots.push(slot);
                let mut pending = running.pending;
                if !out_of_resources(&e) || !self.running.iter().any(|r| r.job.is_some()) {
                    let message = format!("cannot start job {}: {e}", pending.seq);
                    self.fail(Ended::Error(message));
                    return;
                }
                if !self.warned_resources {
                    self.warned_resources = true;
                    let message = format!(
                        "ply: warning: cannot start more jobs now ({e}); each waits for a running one to end\n"
                    );
                    self.printer.err.push(message.as_bytes());
                }
                pending.tries -= 1;
                self.retry.push_front(pending);
                self.starved = true;
                return;
            }
            Err(e) => {
                // The command could not start: recorded per job, as a shell
                // would (127 not found, 126 not executable); the run goes on.
                let (code, what) = match e.kind() {
                    io::ErrorKind::NotFound => (127, "command not found".into()),
                    io::ErrorKind::PermissionDenied => (126, "permission denied".into()),
                    _ if e.raw_os_error() == Some(libc::ENOEXEC) => (126, "cannot execute".into()),
                    _ => (126, format!("cannot start: {e}")),
                };
                let program = match &invocation {
                    Invocation::Direct(argv) => argv[0].clone(),
                    Invocation::Shell(_) => "/bin/sh".into(),
                };
                let message = format!("ply: {program}: {what}\n");
                let _ = self.printer.arrived(
                    Stream::Err,
                    message.as_bytes(),
                    None,
                    &mut running.err,
                    &mut running.partial_err,
                );
                running.spawn_failure = Some(code);
            }
        }
        self.running.push(running);
    }

    /// One wait: poll everything, then handle what is ready and what is due.
    fn turn(&mut self) -> io::Result<()> {
        // What each pollfd is for.
        #[derive(Clone, Copy)]
        enum Slot {
            Signals,
            Feed,
            Exit(usize),
            Out(usize),
            Err(usize),
            In(usize),
            Sink,
        }
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(3 + 4 * self.running.len());
        let mut what: Vec<Slot> = Vec::with_capacity(fds.capacity());
        let mut add = |fd: RawFd, events: i16, slot: Slot| {
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            what.push(slot);
        };
        add(self.signals.as_raw_fd(), libc::POLLIN, Slot::Signals);
        if !self.feed_done
            && !self.draining
            && !self.free_slots.is_empty()
            && self.printer.has_room()
        {
            add(self.feed.ready_fd().as_raw_fd(), libc::POLLIN, Slot::Feed);
        }
        for fd in [self.printer.out.poll_fd(), self.printer.err.poll_fd()]
            .into_iter()
            .flatten()
        {
            add(fd, libc::POLLOUT, Slot::Sink);
        }
        let reading = self.reading();
        let stopping = self.signal.is_some() || self.error.is_some();
        if reading && self.paused {
            // Reading again: finished jobs get their full drain time back.
            let until = Instant::now() + DRAIN_LIMIT;
            for r in &mut self.running {
                if let Some(d) = &mut r.drain_until {
                    *d = (*d).max(until);
                }
            }
        }
        self.paused = !reading;
        let now = Instant::now();
        let mut deadline: Option<Instant> = None;
        let mut due = |at: Instant| {
            deadline = Some(deadline.map_or(at, |d: Instant| d.min(at)));
        };
        for (i, r) in self.running.iter().enumerate() {
            if let (Some(job), None) = (&r.job, r.status) {
                add(job.pidfd().as_raw_fd(), libc::POLLIN, Slot::Exit(i));
            }
            if let Some(f) = r.stdout.as_ref().filter(|_| reading) {
                add(f.as_raw_fd(), libc::POLLIN, Slot::Out(i));
            }
            if let Some(f) = r.stderr.as_ref().filter(|_| reading) {
                add(f.as_raw_fd(), libc::POLLIN, Slot::Err(i));
            }
            if let Some(f) = &r.stdin {
                add(f.as_raw_fd(), libc::POLLOUT, Slot::In(i));
            }
            if r.job.is_none() || (r.status.is_some() && r.stdout.is_none() && r.stderr.is_none()) {
                due(now); // ready to complete
            }
            if let Some(d) = r
                .deadline
                .filter(|_| r.stopping.is_none() && r.status.is_none())
            {
                due(d);
            }
            if let Some(s) = &r.stopping {
                due(s.next_at);
            }
            if let Some(d) = r.drain_until.filter(|_| reading || stopping) {
                due(d);
            }
        }
        if let Some(at) = self.signalled_at
            && !self.printer.idle()
        {
            due(at + OUTPUT_GRACE);
        }
        if self.config.progress.is_some() {
            due(now + Duration::from_millis(200));
        }
        if !self.swept_since_end {
            due(self.last_sweep + SWEEP_EVERY);
        }
        let timeout_ms = match deadline {
            Some(d) => d.saturating_duration_since(now).as_millis().min(60_000) as i32,
            None => 60_000,
        };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        let ready = |events: i16| {
            events & (libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLOUT) != 0
        };
        for (pfd, slot) in fds.iter().zip(&what) {
            if rc <= 0 || !ready(pfd.revents) {
                continue;
            }
            match *slot {
                Slot::Signals => self.read_signals(),
                Slot::Feed => self.feed.clear(),
                Slot::Exit(i) => self.leader_exited(i),
                Slot::Out(i) => self.read_pipe(i, Stream::Out)?,
                Slot::Err(i) => self.read_pipe(i, Stream::Err)?,
                Slot::In(i) => self.write_block(i),
                Slot::Sink => {} // written below
            }
        }
        let now = Instant::now();
        self.check_deadlines(now);
        self.advance_stops(now);
        if !self.swept_since_end && now >= self.last_sweep + SWEEP_EVERY {
            self.sweep(false);
        }
        self.complete_finished()?;
        self.print();
        if let Some(p) = &self.config.progress {
            p.tick();
        }
        Ok(())
    }

    /// Reads pending stop signals from the self-pipe.
    fn read_signals(&mut self) {
        let mut buf = [0u8; 16];
        while let Ok(n) = self.signals.read(&mut buf) {
            if n == 0 {
                break;
            }
            for _ in &buf[..n] {
                let sig = self.last_signal.load(std::sync::atomic::Ordering::Relaxed) as i32;
                if self.signal.is_some() {
                    // A second signal: no more grace, KILL now, and no
                    // waiting for output.
                    self.hurry = true;
                    for r in &mut self.running {
                        if let Some(s) = &mut r.stopping {
                            s.step = self.config.term_seq.steps.len() - 1;
                            s.next_at = Instant::now();
                        }
                    }
                } else {
                    self.signal = Some(sig);
                    self.signalled_at = Some(Instant::now());
                }
                self.stop_all();
            }
        }
    }

    /// Reads what a job's pipe holds now (up to a per-turn bound).
    fn read_pipe(&mut self, i: usize, stream: Stream) -> io::Result<()> {
        let mut buf = [0u8; 64 << 10];
        let mut total = 0;
        let tag = self.running[i].tag(self.config.tag);
        loop {
            let r = &mut self.running[i];
            let result = match stream {
                Stream::Out => r.stdout.as_mut().map(|f| f.read(&mut buf)),
                Stream::Err => r.stderr.as_mut().map(|f| f.read(&mut buf)),
            };
            match result {
                None => return Ok(()),
                Some(Ok(0)) => {
                    match stream {
                        Stream::Out => r.stdout = None,
                        Stream::Err => r.stderr = None,
                    }
                    return Ok(());
                }
                Some(Ok(n)) => {
                    let (capture, partial) = match stream {
                        Stream::Out => (&mut r.out, &mut r.partial_out),
                        Stream::Err => (&mut r.err, &mut r.partial_err),
                    };
                    if let Err(e) =
                        self.printer
                            .arrived(stream, &buf[..n], tag.as_deref(), capture, partial)
                    {
                        self.fail(Ended::Error(format!("capturing a job's output: {e}")));
                        return Ok(());
                    }
                    total += n;
                    if total >= READ_PER_TURN || !self.reading() {
                        return Ok(());
                    }
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) => {
                    match stream {
                        Stream::Out => r.stdout = None,
                        Stream::Err => r.stderr = None,
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Writes more of a `--pipe` block to the job's stdin; closes it at the
    /// end (or when the job stopped reading).
    fn write_block(&mut self, i: usize) {
        let r = &mut self.running[i];
        let Some(block) = &r.pending.block else {
            r.stdin = None;
            return;
        };
        let Some(stdin) = r.stdin.as_mut() else {
            return;
        };
        loop {
            if r.sent >= block.len() {
                r.stdin = None;
                return;
            }
            match stdin.write(&block[r.sent..]) {
                Ok(n) => r.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // The job closed its stdin (EPIPE): it reads no more.
                    r.stdin = None;
                    return;
                }
            }
        }
    }

    /// A leader exited: kill what its job left behind and reap it; its
    /// pipes then drain.
    fn leader_exited(&mut self, i: usize) {
        let r = &mut self.running[i];
        let Some(job) = r.job.as_mut() else {
            return;
        };
        match job.finish() {
            Ok(status) => {
                r.status = Some(status);
                r.stdin = None;
                r.drain_until = Some(Instant::now() + DRAIN_LIMIT);
                self.swept_since_end = false;
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {} // not yet: next turn
            Err(e) => {
                let message = format!("ending job {}: {e}", r.pending.seq);
                self.fail(Ended::Error(message));
            }
        }
    }

    /// Starts `--term-seq` for jobs past their `--timeout`.
    fn check_deadlines(&mut self, now: Instant) {
        for r in &mut self.running {
            if r.status.is_none() && r.stopping.is_none() && r.deadline.is_some_and(|d| now >= d) {
                r.timed_out = true;
                r.stopping = Some(Stopping {
                    step: 0,
                    next_at: now,
                });
            }
        }
    }

    /// Sends the due `--term-seq` signals.
    fn advance_stops(&mut self, now: Instant) {
        let steps = &self.config.term_seq.steps;
        for r in &mut self.running {
            if r.status.is_some() {
                continue;
            }
            let (Some(stopping), Some(job)) = (&mut r.stopping, &r.job) else {
                continue;
            };
            while stopping.next_at <= now && stopping.step < steps.len() {
                let (sig, wait) = steps[stopping.step];
                let _ = job.signal(sig);
                stopping.step += 1;
                stopping.next_at = now + wait;
            }
            if stopping.step >= steps.len() && stopping.next_at <= now {
                // KILL was sent; keep polling the pidfd at a steady pace.
                stopping.next_at = now + Duration::from_millis(50);
            }
        }
    }

    /// Reaps orphans (and, without cgroups, kills them); `all` at the end.
    fn sweep(&mut self, all: bool) {
        let Some(host) = &self.host else {
            return;
        };
        // The host knows its live jobs; ply starts no other children.
        let pending = if all {
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let pending = host.sweep(&|_| false);
                if pending == 0 || Instant::now() >= deadline {
                    break pending;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            host.sweep(&|_| false)
        };
        self.last_sweep = Instant::now();
        // Orphans killed but not yet reaped: sweep again at the next turn.
        self.swept_since_end = pending == 0;
    }

    /// Completes every job whose leader is reaped and whose pipes are done.
    fn complete_finished(&mut self) -> io::Result<()> {
        let now = Instant::now();
        // Pipes ply did not read (a full sink) are not given up on, unless
        // the run is being stopped, when their output no longer matters.
        let may_give_up = self.reading() || self.signal.is_some() || self.error.is_some();
        let mut i = 0;
        while i < self.running.len() {
            let r = &mut self.running[i];
            let drained = r.stdout.is_none() && r.stderr.is_none();
            let gave_up = may_give_up && r.drain_until.is_some_and(|d| now >= d);
            let done = r.spawn_failure.is_some() || (r.status.is_some() && (drained || gave_up));
            if !done {
                i += 1;
                continue;
            }
            let r = self.running.swap_remove(i);
            self.complete(r)?;
        }
        Ok(())
    }

    fn complete(&mut self, mut r: Running) -> io::Result<()> {
        let runtime = r.started.elapsed();
        let (exitval, signal) = match (r.spawn_failure, r.status) {
            (Some(code), _) => (code, 0),
            (None, Some(status)) => (status.code().unwrap_or(0), status.signal().unwrap_or(0)),
            (None, None) => (0, 0),
        };
        let ok = exitval == 0 && signal == 0 && !r.timed_out;
        self.free_slots.push(r.slot);
        self.starved = false;
        if let Some(job) = r.job.take()
            && let Some(host) = &mut self.host
        {
            host.release(job);
            // What it left outside its cgroup goes at the next sweep.
            self.swept_since_end = false;
        }
        // Retry a failure, unless the run is stopping.
        if !ok && r.pending.tries < self.config.retries && !self.draining {
            let pending = r.pending;
            r.out.discard(&mut self.printer.budget);
            r.err.discard(&mut self.printer.budget);
            self.retry.push_back(pending);
            return Ok(());
        }
        // A job cut short, or a failure whose retries the stop took away,
        // did not get to the end of its work. As GNU parallel does with the
        // jobs it kills on its way out, its output is dropped (what
        // `--line-buffer` printed already stays) and it is neither counted
        // nor logged, so `--resume` runs it again. Its turn in `-k` order
        // still passes.
        if r.cut_short || (!ok && r.pending.tries < self.config.retries) {
            r.out.discard(&mut self.printer.budget);
            r.err.discard(&mut self.printer.budget);
            let nothing = Finished {
                tag: None,
                out: Capture::default(),
                err: Capture::default(),
                entry: None,
            };
            self.printer.finished(r.pending.order, nothing);
            return Ok(());
        }
        if ok {
            self.succeeded += 1;
            self.median.push(runtime.as_micros() as u64);
        } else {
            self.failed += 1;
        }
        let entry = Entry {
            seq: r.pending.seq,
            host: ":".into(),
            starttime: r
                .started_wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            runtime: runtime.as_secs_f64(),
            send: r.sent as u64,
            receive: r.out.len() + r.partial_out.len() as u64,
            exitval,
            signal,
            command: r.text.clone(),
        };
        // Print (line-buffer: the unfinished last lines), then log: the
        // printer hands the entry back once the job's output is out.
        let tag = r.tag(self.config.tag);
        if self.printer.line_buffer {
            let mut out = Capture::default();
            let mut err = Capture::default();
            out.push(&r.partial_out, &mut self.printer.budget)?;
            err.push(&r.partial_err, &mut self.printer.budget)?;
            r.out = out;
            r.err = err;
        }
        let finished = Finished {
            tag,
            out: std::mem::take(&mut r.out),
            err: std::mem::take(&mut r.err),
            entry: self.config.joblog.is_some().then_some(entry),
        };
        self.printer.finished(r.pending.order, finished);
        if let Some(p) = &self.config.progress {
            p.done();
        }
        self.check_halt(exitval, signal, ok);
        Ok(())
    }

    /// Moves output into the sinks as far as they take it, logs the jobs
    /// whose output is now out, and stops the run on a write error.
    fn print(&mut self) {
        let mut printed = Vec::new();
        if let Err(e) = self.printer.pump(&mut printed) {
            self.fail(Ended::Error(format!("reading back a job's output: {e}")));
        }
        if let Some(joblog) = &mut self.config.joblog {
            for entry in &printed {
                if let Err(e) = joblog.write(entry) {
                    self.fail(Ended::Error(e));
                    break;
                }
            }
        }
        if let Some(e) = self.printer.error()
            && !matches!(self.error, Some(Ended::Output(_)))
        {
            // The output error wins over any other: it decides the status.
            self.error = None;
            self.fail(Ended::Output(e));
        }
    }

    fn check_halt(&mut self, exitval: i32, signal: i32, ok: bool) {
        let Some(halt) = self.config.halt else {
            return;
        };
        if self.halt_status.is_some()
            || !halt.reached(self.failed, self.succeeded, self.config.total)
        {
            return;
        }
        self.halt_status = Some(if ok {
            0
        } else if signal != 0 {
            u8::try_from(128 + signal).unwrap_or(255)
        } else {
            u8::try_from(exitval).unwrap_or(255).max(1)
        });
        if halt.now {
            self.stop_all();
        } else {
            self.draining = true;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Jobs still held (an early return) die whole with their `Job`s.
        self.running.clear();
    }
}
