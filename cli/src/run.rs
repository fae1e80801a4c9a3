//! `ply run`: run a command for every input, in parallel — GNU parallel's
//! interface, on ply-os's job trees ([`ply_os::job`]) and ply-core's
//! partitioning.
//!
//! The pieces: [`args`] (options, checked at parse time), [`input`] (the
//! sources, streamed), [`template`] (replacement strings, shell or direct
//! execution), [`feed`] (a thread reading inputs off the event loop),
//! [`engine`] (the event loop: slots, deadlines, term sequences, retries,
//! halt), [`capture`] and [`printer`] (output grouped, ordered or by line,
//! spilled to unnamed temporary files), [`joblog`] (GNU's TSV or JSON lines;
//! resume by content), [`shard`] (array jobs of Slurm, Kubernetes, AWS
//! Batch), [`progress`] (`--bar`, `--eta`).

mod args;
mod capture;
mod engine;
mod fdlimit;
mod feed;
mod halt;
mod input;
mod joblog;
mod printer;
mod progress;
mod shard;
mod sink;
mod template;
mod term;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub use args::RunArgs;
use engine::{Config, Ended, Engine};

/// Misuse and errors of ply's own: GNU parallel's status 255.
pub const EXIT_ERROR: u8 = 255;

/// How long ply's own last message may wait for a stalled stderr.
const MESSAGE_LIMIT: std::time::Duration = std::time::Duration::from_millis(200);

/// One line on stderr, exit 255.
fn error(message: &str) -> ExitCode {
    sink::message(&format!("error: {message}\n"), MESSAGE_LIMIT);
    ExitCode::from(EXIT_ERROR)
}

/// The exit for a failed write to stdout or stderr: quiet 141 on a broken
/// pipe, else one line and 255.
fn output_failed(e: &std::io::Error) -> ExitCode {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return ExitCode::from(crate::out::EXIT_BROKEN_PIPE);
    }
    error(&format!("writing output: {e}"))
}

/// The status for `failed` failed jobs: 0, the count up to 100, or 101.
fn failed_status(failed: u64) -> u8 {
    failed.min(101) as u8
}

/// The stop signals' self-pipe (read end) and the number of the last one.
type Signals = (std::os::unix::net::UnixStream, Arc<AtomicUsize>);

/// While set (from the first instant until the event loop watches the
/// self-pipe; for good in a dry run), a stop signal ends the process at once
/// with 128 + its number.
type SettingUp = Arc<AtomicBool>;

/// Registers SIGINT, SIGTERM and SIGHUP to write to a self-pipe (and record
/// which), so the event loop sees them; returns the pipe's read end.
///
/// Set-up (opening inputs, counting them, copying stdin, reading the joblog)
/// can wait without end on another party: a FIFO nobody opens, a stdin that
/// never ends. Until [`SettingUp`] is cleared, a stop signal therefore
/// exits on the spot, as its default action would (nothing to clean up
/// yet: no job has started, and set-up's temporary files are unnamed).
fn signal_pipe() -> std::io::Result<(Signals, SettingUp)> {
    let (read, write) = std::os::unix::net::UnixStream::pair()?;
    write.set_nonblocking(true)?;
    let last = Arc::new(AtomicUsize::new(0));
    let setting_up = Arc::new(AtomicBool::new(true));
    for sig in crate::interrupt::STOP_SIGNALS {
        signal_hook::flag::register_conditional_shutdown(
            sig,
            i32::from(crate::interrupt::code_for(sig)),
            Arc::clone(&setting_up),
        )?;
        // The number first, then the wake-up byte.
        signal_hook::flag::register_usize(sig, Arc::clone(&last), sig as usize)?;
        signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
    }
    Ok(((read, last), setting_up))
}

/// Set-up is over: from now on the event loop watches the self-pipe.
fn watching(setting_up: &SettingUp) {
    setting_up.store(false, Ordering::SeqCst);
}

/// Runs `ply run`.
pub fn main(args: RunArgs) -> ExitCode {
    // Signals first, so none arriving during set-up is lost.
    let (signals, setting_up) = match signal_pipe() {
        Ok(s) => s,
        Err(e) => return error(&format!("installing signal handlers: {e}")),
    };
    let (words, sources) = match input::split_command(&args.command) {
        Ok(split) => split,
        Err(e) => return error(&e),
    };
    if let Some(option) = words.first().filter(|w| w.starts_with('-')) {
        // Options go before the command; a command never starts with '-'.
        return error(&format!(
            "unexpected argument '{option}' (see 'ply run --help')"
        ));
    }
    if args.pipe && !sources.is_empty() {
        return error("--pipe reads its data from stdin: give no ::: or :::: inputs");
    }
    if args.pipe && words.is_empty() {
        return error("--pipe needs a command to feed the blocks to");
    }
    let template = template::Template::parse(&words);
    let source_count = sources.len().max(1);
    if let Some(n) = template.max_source()
        && n > source_count
    {
        return error(&format!(
            "{{{n}}} is used but there are only {source_count} input source(s)"
        ));
    }
    let shard = match args
        .shard
        .map(|s| s.resolve(&|name| std::env::var(name).ok()))
    {
        Some(Ok(kn)) => Some(kn),
        Some(Err(e)) => return error(&e),
        None => None,
    };
    let resume = if args.resume || args.resume_failed {
        let path = args.joblog.as_deref().expect("clap requires --joblog");
        match joblog::read(path, &|warning| sink::message(warning, MESSAGE_LIMIT)) {
            Ok(outcomes) => Some((outcomes, args.resume_failed)),
            Err(e) => return error(&format!("reading the joblog for --resume: {e}")),
        }
    } else {
        None
    };
    let cpus = ply_os::affinity::allowed_cpus().map_or(1, |c| c.len().max(1));
    let slots = args.jobs.map_or(cpus, |j| j.slots(cpus));
    let counting = !args.pipe
        && (shard.is_some()
            || ((args.bar || args.eta) && std::io::IsTerminal::is_terminal(&std::io::stderr()))
            || args.halt.is_some_and(|h| h.needs_total()));
    let (feed, total) = if args.pipe {
        match feed::blocks(args.block as usize) {
            Ok(feed) => (feed, None),
            Err(e) => return error(&format!("starting the input thread: {e}")),
        }
    } else {
        let mut inputs = match input::JobInputs::open(sources, args.link, counting) {
            Ok(inputs) => inputs,
            Err(e) => return error(&e.to_string()),
        };
        let all = if counting {
            match inputs.total() {
                Ok(n) => Some(n),
                Err(e) => return error(&e.to_string()),
            }
        } else {
            None
        };
        let range = match (shard, all) {
            (Some((k, n)), Some(all)) => match shard::range(k, n, all) {
                Ok(r) => Some(r),
                Err(e) => return error(&e),
            },
            _ => None,
        };
        let total = range.as_ref().map_or(all, |r| Some(r.end - r.start));
        if args.dry_run {
            // It reads its inputs itself (a FIFO may keep it waiting), and
            // starts nothing: a stop signal ends it at any point.
            return dry_run(inputs, &template, range, &signals);
        }
        let keep = move |i: u64| range.as_ref().is_none_or(|r| r.contains(&i));
        match feed::values(inputs, keep) {
            Ok(feed) => (feed, total),
            Err(e) => return error(&format!("starting the input thread: {e}")),
        }
    };
    if args.dry_run {
        // --pipe: the command each block would be given to.
        let text = template.expand(&[], 1, 1).text().into_owned();
        let mut out = sink::Sink::stdout();
        out.push(format!("{text}\n").as_bytes());
        return finish_output(&mut out, &signals);
    }
    let joblog = match &args.joblog {
        Some(path) => match joblog::Joblog::open(path, args.joblog_format) {
            Ok((j, cut)) => {
                // With --resume, reading it already warned about that line.
                if cut > 0 && resume.is_none() {
                    sink::message(
                        &format!(
                            "ply: warning: {}: an unfinished last line ({cut} bytes) is cut off\n",
                            path.display()
                        ),
                        MESSAGE_LIMIT,
                    );
                }
                Some(j)
            }
            Err(e) => return error(&format!("{}: {e}", path.display())),
        },
        None => None,
    };
    let progress = match total {
        Some(t) if args.bar || args.eta => progress::Progress::start(t, args.bar),
        _ => None,
    };
    // Capped to the jobs the descriptors left can serve (GNU parallel's
    // file-handle check), after every file of ply's own is open.
    let slots = match fdlimit::current() {
        Some((limit, open)) if slots as u64 > fdlimit::affordable(limit, open) => {
            let fit = fdlimit::affordable(limit, open);
            sink::message(
                &format!(
                    "ply: warning: only enough file descriptors (ulimit -n {limit}) for {fit} job(s) at once, not {slots}\n"
                ),
                MESSAGE_LIMIT,
            );
            fit as usize
        }
        _ => slots,
    };
    let config = Config {
        slots,
        template,
        timeout: args.timeout,
        retries: args.retries,
        halt: args.halt,
        term_seq: args.term_seq,
        tag: args.tag,
        joblog,
        resume,
        containment: if args.no_cgroup {
            ply_os::job::Containment::ProcessGroup
        } else {
            ply_os::job::Containment::Cgroup
        },
        total,
        progress,
    };
    let printer = printer::Printer::new(
        args.keep_order,
        args.line_buffer,
        sink::Sink::stdout(),
        sink::Sink::stderr(),
    );
    watching(&setting_up);
    let engine = match Engine::new(config, feed, signals, printer) {
        Ok(engine) => engine,
        Err(e) => return error(&format!("setting up: {e}")),
    };
    match engine.run() {
        Ended::Done { failed } => ExitCode::from(failed_status(failed)),
        Ended::Halted { status } => ExitCode::from(status),
        Ended::Signalled(sig) => {
            sink::message(
                &format!(
                    "ply: stopped by {}; every running job was killed\n",
                    ply_os::fork::Signal::from_named_raw(sig)
                        .map_or_else(|| format!("signal {sig}").into(), ply_os::fork::signal_name)
                ),
                MESSAGE_LIMIT,
            );
            ExitCode::from(crate::interrupt::code_for(sig))
        }
        Ended::Output(e) => output_failed(&e),
        Ended::Error(message) => error(&message),
    }
}

/// Waits until `out` has written everything or a stop signal arrives
/// (then 128 + the signal); the exit status.
fn finish_output(out: &mut sink::Sink, signals: &Signals) -> ExitCode {
    match wait_for_room(out, signals, 0) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// Waits, answering stop signals, until `out` holds at most `at_most`
/// bytes; `Err` with the exit status on a signal or a write error.
fn wait_for_room(out: &mut sink::Sink, signals: &Signals, at_most: usize) -> Result<(), ExitCode> {
    use std::os::fd::AsRawFd;
    loop {
        out.flush();
        if let Some(e) = out.error() {
            return Err(output_failed(&e));
        }
        if out.pending() <= at_most {
            return Ok(());
        }
        let mut fds = [
            libc::pollfd {
                fd: out.poll_fd().expect("bytes wait"),
                events: libc::POLLOUT,
                revents: 0,
            },
            libc::pollfd {
                fd: signals.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: a valid array of two pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, 1000) };
        if fds[1].revents != 0 {
            let sig = signals.1.load(std::sync::atomic::Ordering::Relaxed) as i32;
            return Err(ExitCode::from(crate::interrupt::code_for(sig)));
        }
    }
}

/// `--dry-run`: prints each job's command (slot 1) and runs none.
fn dry_run(
    mut inputs: input::JobInputs,
    template: &template::Template,
    range: Option<std::ops::Range<u64>>,
    signals: &Signals,
) -> ExitCode {
    let mut out = sink::Sink::stdout();
    let mut index = 0u64;
    loop {
        let values = match inputs.next_job() {
            Ok(Some(v)) => v,
            Ok(None) => break,
            Err(e) => return error(&e.to_string()),
        };
        let i = index;
        index += 1;
        if range.as_ref().is_some_and(|r| !r.contains(&i)) {
            continue;
        }
        let mut line = template.expand(&values, i + 1, 1).text().into_owned();
        line.push('\n');
        out.push(line.as_bytes());
        if !out.has_room()
            && let Err(code) = wait_for_room(&mut out, signals, sink::QUEUE_LIMIT / 2)
        {
            return code;
        }
    }
    finish_output(&mut out, signals)
}
