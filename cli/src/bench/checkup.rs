//! `ply bench checkup`: this machine's figures, defined as the tools people
//! publish figures with define them, so a figure here can be set beside a
//! figure there — and each as a multiple of the machine's own floor.
//!
//! - **The floor: a cache-line round trip between two CPUs.** Two threads,
//!   pinned to two CPUs, take turns writing one cache line: the least any
//!   two cores can do to hear from each other. Measured first; every other
//!   figure is also shown as a multiple of it, which tells more than the
//!   absolute figure when machines differ.
//! - **Pipe round trip between two processes**: a 4-byte message written
//!   into one pipe, read by the other process, written back through a
//!   second pipe — `perf bench sched pipe`'s `usecs/op` and lmbench's
//!   `lat_pipe`.
//! - **fork + exit**: `fork()`, the child `_exit`s at once, the parent
//!   waits for it — lmbench's `lat_proc fork`.
//! - **Futex wake-up**: as many threads as usable CPUs block in
//!   `FUTEX_WAIT`; the time for the waker to wake them all, one per
//!   `FUTEX_WAKE` — `perf bench futex wake` (its `-t` = the threads here,
//!   one wake per call, its default).
//! - **Context switch**: two threads pinned to the *same* CPU pass a token
//!   back and forth with futex wait/wake; each pass is one switch, reported
//!   per switch — lmbench's `lat_ctx -s 0 2` (which passes the token through
//!   pipes and subtracts the pipe's cost; a futex has none to subtract).
//!
//! Each figure is the median of [`RUNS`] runs, with their range: the
//! run-to-run spread that `--compare` holds a change against.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::saved::{Figure, Run};

/// Runs per figure.
pub const RUNS: usize = 5;

/// A spin that gives up: a peer that stops (SIGSTOP, a crash) fails the
/// measurement instead of hanging it.
const SPIN_LIMIT: Duration = Duration::from_secs(10);

fn figure(name: &str, matches: &str, samples: Vec<f64>) -> Figure {
    Figure {
        name: name.to_owned(),
        matches: matches.to_owned(),
        samples_ns: samples,
    }
}

/// Runs `once` [`RUNS`] times, or until a stop signal; each returns
/// nanoseconds per operation, `None` if it could not measure.
fn samples(mut once: impl FnMut() -> Option<f64>) -> Vec<f64> {
    (0..RUNS)
        .take_while(|_| !crate::interrupt::interrupted())
        .filter_map(|_| once())
        .collect()
}

/// Measures the whole check-up; `scale` multiplies the iteration counts.
/// `None` when a stop signal arrived.
pub fn run(scale: u64) -> Option<Run> {
    let cpus = ply_os::affinity::allowed_cpus().unwrap_or_default();
    let pair = super::cpus::pair();
    let stop = crate::interrupt::interrupted;
    let floor = figure(
        "cache-line round trip (the floor)",
        "two threads on two CPUs take turns writing one cache line",
        samples(|| cache_line_round_trip(pair, 20_000 * scale)),
    );
    if stop() {
        return None;
    }
    let mut rows = Vec::new();
    rows.push(figure(
        "pipe round trip, two processes",
        "perf bench sched pipe (usecs/op); lmbench lat_pipe",
        samples(|| pipe_round_trip(2_000 * scale)),
    ));
    if stop() {
        return None;
    }
    rows.push(figure(
        "fork + exit + wait",
        "lmbench lat_proc fork",
        samples(|| fork_exit(200 * scale)),
    ));
    if stop() {
        return None;
    }
    let waiters = cpus.len().max(1);
    rows.push(figure(
        "futex wake-up of all waiters",
        if waiters == 1 {
            "perf bench futex wake -t 1 (one wake per call)"
        } else {
            "perf bench futex wake -t <usable CPUs> (one wake per call)"
        },
        samples(|| futex_wake(waiters, 20 * scale)),
    ));
    if stop() {
        return None;
    }
    rows.push(figure(
        "context switch, one CPU",
        "lmbench lat_ctx -s 0 2 (per switch; token by futex, not pipe)",
        samples(|| context_switch(cpus.first().copied(), 5_000 * scale)),
    ));
    if stop() {
        return None;
    }
    Some(Run {
        machine: machine(),
        cpus: cpus.len(),
        date: date(),
        floor,
        rows,
    })
}

/// The kernel and the CPU model, from `uname` and `/proc/cpuinfo`.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    format!("{model}, Linux {kernel}")
}

/// Seconds since the Unix epoch, as an ISO date (UTC).
fn date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Civil from days (Howard Hinnant's algorithm).
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Spins until `done()`, giving up after [`SPIN_LIMIT`]; whether it held.
fn spin_until(done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    let mut spins = 0u32;
    while !done() {
        spins = spins.wrapping_add(1);
        if spins % 4096 == 0 && start.elapsed() > SPIN_LIMIT {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Nanoseconds per cache-line round trip between the two CPUs of `pair`.
fn cache_line_round_trip(pair: Option<(usize, usize)>, trips: u64) -> Option<f64> {
    /// The one cache line, alone on it (128 bytes: adjacent-line prefetch).
    #[repr(align(128))]
    struct Line(AtomicU64);
    let line = Line(AtomicU64::new(0));
    let line = &line.0;
    let ok = std::sync::atomic::AtomicBool::new(true);
    let elapsed = super::cpus::timed_threads(2, pair, |t| {
        // Thread 0 writes odd numbers, thread 1 answers with the next even.
        // Acquire/release: each side reads the other's write of the line.
        for i in 0..trips {
            let (wait_for, write) = if t == 0 {
                (2 * i, 2 * i + 1)
            } else {
                (2 * i + 1, 2 * i + 2)
            };
            if !spin_until(|| line.load(Ordering::Acquire) == wait_for) {
                ok.store(false, Ordering::Relaxed);
                return;
            }
            line.store(write, Ordering::Release);
        }
    });
    ok.load(Ordering::Relaxed)
        .then(|| elapsed.as_nanos() as f64 / trips as f64)
}

/// A pipe: (read end, write end), close-on-exec.
fn pipe() -> Option<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: fresh fds nothing else owns.
    Some(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads or writes exactly 4 bytes; whether it did.
fn word(fd: &OwnedFd, write: bool, value: &mut [u8; 4]) -> bool {
    // SAFETY: `value` is valid for 4 bytes of reads and writes.
    let n = unsafe {
        if write {
            libc::write(fd.as_raw_fd(), value.as_ptr().cast(), 4)
        } else {
            libc::read(fd.as_raw_fd(), value.as_mut_ptr().cast(), 4)
        }
    };
    n == 4
}

/// Nanoseconds per round trip of a 4-byte message to a forked process
/// through two pipes (as `perf bench sched pipe`). A watchdog kills the
/// child if the trips take longer than [`SPIN_LIMIT`] (a stopped child):
/// its pipe ends close and the parent's read returns.
fn pipe_round_trip(trips: u64) -> Option<f64> {
    let (there_r, there_w) = pipe()?;
    let (back_r, back_w) = pipe()?;
    // The child's copies of the parent's ends: closed in the child, or it
    // would never read end-of-file on `there` once the parent is done.
    let parents_ends = [there_w.as_raw_fd(), back_r.as_raw_fd()];
    let child = ply_os::fork::fork_child(move || {
        for fd in parents_ends {
            // SAFETY: in the child, these descriptors are the child's own
            // copies, and nothing in the child uses them.
            unsafe { libc::close(fd) };
        }
        let mut v = [0u8; 4];
        while word(&there_r, false, &mut v) {
            if !word(&back_w, true, &mut v) {
                break;
            }
        }
        0
    })
    .ok()?; // the closure, unrun here, drops the parent's copies of the child's ends
    let pid = child.pid();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(SPIN_LIMIT).is_err() {
            // SAFETY: kill has no memory-safety preconditions; the child is
            // not reaped before this thread is joined, so `pid` is still it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let start = Instant::now();
    let mut ok = true;
    for i in 0..trips {
        let mut v = (i as u32).to_ne_bytes();
        if !word(&there_w, true, &mut v) || !word(&back_r, false, &mut v) {
            ok = false;
            break;
        }
    }
    let elapsed = start.elapsed();
    drop(done);
    let _ = watchdog.join();
    drop(there_w); // the child reads end-of-file and exits
    let mut child = child;
    // Killed on drop if it has not exited by then.
    let _ = child.wait_timeout(SPIN_LIMIT);
    ok.then(|| elapsed.as_nanos() as f64 / trips as f64)
}

/// Nanoseconds per `fork()` + `_exit(0)` in the child + `waitpid` (as
/// lmbench's `lat_proc fork`).
fn fork_exit(forks: u64) -> Option<f64> {
    let start = Instant::now();
    for _ in 0..forks {
        // SAFETY: the child calls only `_exit`, which is async-signal-safe,
        // so forking a multi-threaded process is sound here.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) };
        }
        if pid < 0 {
            return None;
        }
        // SAFETY: `pid` is our child; a null status pointer is allowed.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
    Some(start.elapsed().as_nanos() as f64 / forks as f64)
}

fn futex(word: &AtomicU32, op: i32, value: u32, timeout: Option<&libc::timespec>) -> i64 {
    // SAFETY: the futex word is a live AtomicU32 (4-byte aligned); the
    // timeout, if any, is a valid timespec; the other arguments are unused.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op | libc::FUTEX_PRIVATE_FLAG,
            value,
            timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec),
        )
    }
}

/// Whether thread `tid` of this process sleeps (state `S`).
fn sleeping(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('S'))
        })
        .unwrap_or(false)
}

/// Nanoseconds for one waker to wake `waiters` threads blocked in
/// `FUTEX_WAIT`, one `FUTEX_WAKE` per thread (as `perf bench futex wake`),
/// averaged over `rounds` rounds.
fn futex_wake(waiters: usize, rounds: u64) -> Option<f64> {
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        let word = AtomicU32::new(0);
        let tids: Vec<AtomicU32> = (0..waiters).map(|_| AtomicU32::new(0)).collect();
        let woken = std::thread::scope(|s| {
            for slot in &tids {
                let word = &word;
                s.spawn(move || {
                    // SAFETY: gettid has no preconditions.
                    slot.store(unsafe { libc::gettid() } as u32, Ordering::Release);
                    let limit = libc::timespec {
                        tv_sec: SPIN_LIMIT.as_secs() as i64,
                        tv_nsec: 0,
                    };
                    while word.load(Ordering::Acquire) == 0 {
                        futex(word, libc::FUTEX_WAIT, 0, Some(&limit));
                    }
                });
            }
            // Every waiter asleep in the kernel before the clock starts.
            let all_asleep = spin_until(|| {
                tids.iter().all(|t| {
                    let tid = t.load(Ordering::Acquire);
                    tid != 0 && sleeping(tid as i32)
                })
            });
            word.store(1, Ordering::Release);
            let start = Instant::now();
            let mut woken = 0;
            let deadline = start + SPIN_LIMIT;
            while woken < waiters && Instant::now() < deadline {
                woken += futex(&word, libc::FUTEX_WAKE, 1, None).max(0) as usize;
            }
            total += start.elapsed();
            // Stragglers (a spurious wake-up raced the count) see the word.
            futex(&word, libc::FUTEX_WAKE, i32::MAX as u32, None);
            all_asleep && woken == waiters
        });
        if !woken {
            return None;
        }
    }
    Some(total.as_nanos() as f64 / rounds as f64)
}

/// Nanoseconds per switch between two threads pinned to `cpu`, passing a
/// token with futex wait and wake.
fn context_switch(cpu: Option<usize>, trips: u64) -> Option<f64> {
    let turn = AtomicU32::new(0);
    let ok = std::sync::atomic::AtomicBool::new(true);
    let elapsed = super::cpus::timed_threads(2, cpu.map(|c| (c, c)), |t| {
        let limit = libc::timespec {
            tv_sec: SPIN_LIMIT.as_secs() as i64,
            tv_nsec: 0,
        };
        let me = t as u32;
        for _ in 0..trips {
            let start = Instant::now();
            while turn.load(Ordering::Acquire) != me {
                futex(&turn, libc::FUTEX_WAIT, 1 - me, Some(&limit));
                if start.elapsed() > SPIN_LIMIT {
                    ok.store(false, Ordering::Relaxed);
                    turn.store(2, Ordering::Release);
                    futex(&turn, libc::FUTEX_WAKE, 1, None);
                    return;
                }
            }
            turn.store(1 - me, Ordering::Release);
            futex(&turn, libc::FUTEX_WAKE, 1, None);
        }
    });
    ok.load(Ordering::Relaxed)
        .then(|| elapsed.as_nanos() as f64 / (2 * trips) as f64)
}
