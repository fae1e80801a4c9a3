//! `ply run` with a reader that stops reading its output (a consumer under
//! SIGSTOP, `| less` left waiting): ply must go on enforcing timeouts and
//! answering stop signals, whatever point the reader stopped at — before
//! any output, in the middle of a job's output, in the middle of a line —
//! and must print everything, lines whole, once the reader reads again.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The read end of ply's stdout (and, with `both`, stderr), read only
/// when the test says so.
struct Reader {
    fd: OwnedFd,
    got: Vec<u8>,
}

/// A pipe: (read end, write end), close-on-exec.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are fresh and owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Reader {
    /// Reads until `n` bytes have been read in all (EOF first: fewer),
    /// under a watchdog.
    fn read_until(&mut self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut buf = vec![0u8; 64 << 10];
        while self.got.len() < n {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 100) };
            assert!(Instant::now() < deadline, "ply wrote too little");
            if pfd.revents == 0 {
                continue;
            }
            let want = (n - self.got.len()).min(buf.len());
            // SAFETY: `buf` is valid for writes of `want` bytes.
            let r = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), want) };
            if r <= 0 {
                return;
            }
            self.got.extend_from_slice(&buf[..r as usize]);
        }
    }

    fn read_to_end(&mut self) {
        self.read_until(usize::MAX);
    }
}

/// Where the reader stops.
#[derive(Clone, Copy, Debug)]
enum Point {
    /// Before ply printed anything.
    BeforeOutput,
    /// In the middle of the first job's output.
    MidJob,
    /// In the middle of a line.
    MidLine,
}

impl Point {
    const ALL: [Point; 3] = [Point::BeforeOutput, Point::MidJob, Point::MidLine];

    /// Bytes read before stopping. Lines are 8 bytes (`abcdef1\n`).
    fn bytes(self) -> usize {
        match self {
            Point::BeforeOutput => 0,
            Point::MidJob => 100_000,
            Point::MidLine => 100_005,
        }
    }
}

/// Job 1 prints 400 kB of 8-byte lines and ends; job 2 prints as much,
/// then waits (in a tree with a `setsid` escapee) until it is killed. The
/// 800 kB fill any pipe (64 kB) but not ply's queue (1 MiB), so the jobs
/// themselves never wait for the reader.
const JOB: &str =
    "yes abcdef{} | head -c 400000; [ {} = 1 ] || { setsid sleep 1000 & sleep 1000; }";

/// Starts `ply run args JOB ::: 1 2` with stdout (and with `both`, stderr)
/// into a pipe the test reads.
fn start(args: &[&str], mark: &str, tmp: &TempDir, both: bool) -> (Child, Reader) {
    let (read, write) = pipe();
    let mut command = ply_cmd();
    command
        .arg("run")
        .args(args)
        .args([JOB, ":::", "1", "2"])
        .env("PLY_TEST_MARK", mark)
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(write.try_clone().unwrap()));
    if both {
        command.stderr(Stdio::from(write));
    } else {
        command.stderr(Stdio::piped());
    }
    let child = command.spawn().unwrap();
    (
        child,
        Reader {
            fd: read,
            got: Vec::new(),
        },
    )
}

/// Waits (up to a minute) until no process of the run but ply itself (and
/// its watchman) is left: the jobs' trees were killed while ply's output
/// was stalled.
fn wait_until_only_ply(marker_var: &str, ply: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: Vec<u32> = processes_with(marker_var)
            .into_iter()
            .filter(|&p| p != ply && !is_watchman(p))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "jobs still running while the output was stalled: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until job 2's `sleep`s run: both jobs have printed their output.
fn wait_for_sleepers(marker_var: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while processes_with(marker_var)
        .iter()
        .filter(|&&p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep")
        })
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "job 2 never reached its sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every line is one job's whole line (with `--tag`, tagged).
fn assert_whole_lines(text: &[u8], tagged: bool) {
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let ok = match line {
            b"abcdef1" | b"abcdef2" => !tagged,
            b"1\tabcdef1" | b"2\tabcdef2" => tagged,
            _ => false,
        };
        assert!(ok, "a broken line: {:?}", String::from_utf8_lossy(line));
    }
}

#[test]
fn a_timeout_fires_while_the_reader_is_stopped_and_everything_prints_later() {
    for point in Point::ALL {
        for mode in [&["--tag"][..], &["--line-buffer"], &["-k"]] {
            let (marker_var, mark) = marker("stalled-timeout");
            let tmp = TempDir::new("stalled-timeout");
            let mut args = vec!["-j", "2", "--timeout", "3s"];
            args.extend_from_slice(mode);
            let (mut ply, mut reader) = start(&args, &mark, &tmp, false);
            reader.read_until(point.bytes());
            // The reader stops here. Job 2's timeout must still fire.
            wait_until_only_ply(&marker_var, ply.id());
            assert!(
                ply.try_wait().unwrap().is_none(),
                "{point:?} {mode:?}: ply ended with output not yet read"
            );
            reader.read_to_end();
            let status = wait_or_kill(&mut ply, Duration::from_secs(60));
            let err = drain_stderr(&mut ply);
            assert_eq!(status.code(), Some(1), "{point:?} {mode:?}: {err}");
            let tagged = mode == ["--tag"];
            assert_whole_lines(&reader.got, tagged);
            let line = if tagged { 10 } else { 8 };
            assert_eq!(reader.got.len() % line, 0, "a last line cut");
            if mode != ["--line-buffer"] {
                // Grouped: both jobs' whole output (a killed job's too).
                assert_eq!(reader.got.len(), 800_000 / 8 * line, "{point:?} {mode:?}");
            }
            if mode == ["-k"] {
                assert!(reader.got.starts_with(&b"abcdef1\n".repeat(50_000)));
            }
            assert_eq!(tmp.entries(), Vec::<String>::new());
        }
    }
}

#[test]
fn a_stop_signal_ends_the_run_while_the_reader_is_stopped() {
    for point in Point::ALL {
        for (mode, both) in [
            (&["--tag"][..], false),
            (&["--line-buffer"], false),
            (&[][..], true), // stdout and stderr into the same stalled pipe
        ] {
            let (marker_var, mark) = marker("stalled-signal");
            let tmp = TempDir::new("stalled-signal");
            let mut args = vec!["-j", "2"];
            args.extend_from_slice(mode);
            let (mut ply, mut reader) = start(&args, &mark, &tmp, both);
            wait_until_handling(&mut ply, libc::SIGTERM);
            reader.read_until(point.bytes());
            // Both jobs printed: ply's output is stalled for good.
            wait_for_sleepers(&marker_var);
            signal(ply.id(), libc::SIGTERM);
            // A watchdog, not a timing claim: ply must not wait for the reader.
            let status = wait_or_kill(&mut ply, Duration::from_secs(30));
            assert_eq!(status.code(), Some(143), "{point:?} {mode:?}");
            assert_none_left(&marker_var);
            assert_eq!(tmp.entries(), Vec::<String>::new());
            drop(reader);
        }
    }
}

#[test]
fn line_buffered_jobs_are_held_back_not_buffered_without_bound() {
    // Jobs that print without end, a reader that never reads: ply stops
    // reading the jobs' pipes (they block), its memory stays bounded, and a
    // SIGINT still ends everything.
    let (marker_var, mark) = marker("stalled-bound");
    let tmp = TempDir::new("stalled-bound");
    let (read, write) = pipe();
    let mut ply = ply_cmd()
        .args(["run", "-j", "2", "--line-buffer", "yes", ":::", "a", "b"])
        .env("PLY_TEST_MARK", &mark)
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_handling(&mut ply, libc::SIGINT);
    // `yes` can write as fast as it likes; wait until its output stops
    // moving: ply no longer reads it.
    let status = format!("/proc/{}/status", ply.id());
    let rss = || {
        std::fs::read_to_string(&status)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut last_read = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let read_now: u64 = processes_with(&marker_var)
            .iter()
            .filter(|&&p| p != ply.id())
            .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/io")).ok())
            .filter_map(|io| {
                io.lines()
                    .find_map(|l| l.strip_prefix("wchar: "))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum();
        if read_now == last_read && read_now > 0 {
            break; // every job is blocked on its pipe
        }
        last_read = read_now;
        assert!(Instant::now() < deadline, "the jobs never blocked");
    }
    let kib = rss();
    assert!(
        kib < 30 * 1024,
        "ply's peak RSS {kib} KiB with a stalled reader"
    );
    signal(ply.id(), libc::SIGINT);
    let status = wait_or_kill(&mut ply, Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    assert_none_left(&marker_var);
    drop(read);
}
