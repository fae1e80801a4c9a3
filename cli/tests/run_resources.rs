//! `ply run` out of resources (file descriptors here): a job that could not
//! be started never ran, so it is neither failed nor logged — it starts
//! later, or the run stops with the reason.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn children(pid: u32) -> usize {
    job_children(pid)
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Lowers the descriptor limit of a running ply under what its slots
/// need, so starts fail with EMFILE while jobs run: each waits for a job to
/// end and then runs; every job runs once and is logged once, as succeeded.
#[test]
fn starts_refused_for_descriptors_wait_for_a_running_job_to_end() {
    let dir = TempDir::new("run-emfile-late");
    let log = dir.path().join("joblog");
    let mut ply = ply_cmd()
        .args(["run", "-j", "4", "--joblog", log.to_str().unwrap()])
        // Jobs end 0.2 s apart (0.1, 0.3, 0.5, 0.7 s), one at a time.
        .arg("sleep 0.$(( {} % 4 * 2 + 1 )); echo {}")
        .arg(":::")
        .args((1..=16).map(|i| i.to_string()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = ply.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while children(pid) < 4 {
        assert!(Instant::now() < deadline, "jobs never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Two fewer than are open now, with all 4 slots busy (the count may
    // include the 2 child ends of a start just made): a job that ends gives
    // back less than a start needs (its pipes and pidfd, not its cgroup,
    // kept for the next job; a start holds both ends of two pipes and a
    // pidfd), so a start is refused until another job has ended.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit with no new limit writes the current one into `limit`.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            std::ptr::null(),
            &mut limit,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    limit.rlim_cur = open_fds(pid) - 2;
    // SAFETY: prlimit reads the one valid rlimit it is given.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    // The output is a few lines: it fits in the pipes until ply is done.
    let status = wait_or_kill(&mut ply, Duration::from_secs(120));
    let mut out = std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    std::io::Read::read_to_end(&mut ply.stdout.take().unwrap(), &mut out.stdout).unwrap();
    std::io::Read::read_to_end(&mut ply.stderr.take().unwrap(), &mut out.stderr).unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(
        err.contains("Too many open files"),
        "the reason is said: {err}"
    );
    let mut printed: Vec<u32> = stdout(&out).lines().map(|l| l.parse().unwrap()).collect();
    printed.sort_unstable();
    assert_eq!(printed, (1..=16).collect::<Vec<_>>(), "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut logged: Vec<u32> = text
        .lines()
        .skip(1)
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            assert_eq!((fields[6], fields[7]), ("0", "0"), "{l}");
            fields[0].parse().unwrap()
        })
        .collect();
    logged.sort_unstable();
    assert_eq!(logged, (1..=16).collect::<Vec<_>>(), "{text}");
}

/// With no job running to wait for, a start refused for descriptors ends
/// the run: status 255, one line with the reason, nothing logged as run.
/// Tried at every limit from too few to run ply at all to enough: each run
/// either stops with the reason or runs every job; none logs a job that
/// never ran.
#[test]
fn a_start_refused_with_nothing_running_stops_the_run_with_the_reason() {
    let dir = TempDir::new("run-emfile-none");
    let log = dir.path().join("joblog");
    let mut refused_at_start = 0;
    for limit in 8..=40 {
        let _ = std::fs::remove_file(&log);
        let script = format!(
            "ulimit -n {limit} && exec {} run --joblog {} 'echo {{}}' ::: a b c",
            env!("CARGO_BIN_EXE_ply"),
            log.display()
        );
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        let err = stderr(&out);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if out.status.success() {
            assert_eq!(stdout(&out).lines().count(), 3, "{limit}: {err}");
            assert_eq!(text.lines().count(), 4, "{limit}: {text}");
            continue;
        }
        assert_eq!(out.status.code(), Some(255), "{limit}: {err}");
        assert!(err.contains("Too many open files"), "{limit}: {err}");
        assert_eq!(stdout(&out), "", "{limit}");
        assert!(
            text.lines().count() <= 1,
            "{limit}: only the header: {text}"
        );
        if err.contains("cannot start job 1: ") {
            refused_at_start += 1;
        }
    }
    assert!(refused_at_start > 0, "no limit refused the first start");
}

/// A high `-j` under a low `ulimit -n` is capped to the jobs the
/// descriptors serve, with a warning; every job runs and succeeds.
#[test]
fn the_slots_are_capped_to_the_descriptors_and_every_job_runs() {
    let script = format!(
        "ulimit -n 48 && seq 1 30 | exec {} run -j 50 'echo {{}}'",
        env!("CARGO_BIN_EXE_ply"),
    );
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("only enough file descriptors (ulimit -n 48) for"),
        "{err}"
    );
    let mut printed: Vec<u32> = stdout(&out).lines().map(|l| l.parse().unwrap()).collect();
    printed.sort_unstable();
    assert_eq!(printed, (1..=30).collect::<Vec<_>>());
}
