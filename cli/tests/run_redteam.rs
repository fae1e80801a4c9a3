//! Regression tests from a hostile review of `ply run`: each one is a
//! misbehaviour found by trying the CLI as a user (or a fault) would.

mod common;

use common::*;

/// `-j4` (the value attached to the short flag) is how GNU parallel users
/// spell it; clap accepts it for every other short option with a value.
#[test]
fn attached_short_jobs_value_is_accepted() {
    for args in [
        &["run", "-j4", "-k", "echo", ":::", "a", "b"][..],
        &["run", "-j50%", "-k", "echo", ":::", "a", "b"],
        &["run", "-kj2", "echo", ":::", "a", "b"],
    ] {
        let out = ply(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "a\nb\n", "{args:?}");
    }
}

/// A joblog whose last line was cut short (a crash or a full disk while it
/// was written): `--resume` warns and runs that job again, and must then
/// append its own lines on a fresh line. Gluing the first new entry onto the
/// cut line hides it from the next `--resume`, which runs the job a third
/// time — a job that completed running twice.
#[test]
fn resume_after_a_cut_last_line_keeps_the_joblog_parseable() {
    let dir = TempDir::new("run-cutlog");
    let log = dir.path().join("joblog");
    let ran = dir.path().join("ran");
    let job = format!("echo {{}} >> {}", ran.display());
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut all: Vec<String> = ["run", "-j", "1", "--joblog"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        all.push(log.to_str().unwrap().to_owned());
        all.extend(extra.iter().map(|s| s.to_string()));
        all.push(job.clone());
        all.extend([":::", "a", "b", "c"].iter().map(|s| s.to_string()));
        all
    };
    let first = ply_cmd().args(args(&[])).output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    // Cut the last entry (job c) in the middle of its command.
    let text = std::fs::read(&log).unwrap();
    std::fs::write(&log, &text[..text.len() - 4]).unwrap();
    for _ in 0..2 {
        let out = ply_cmd().args(args(&["--resume"])).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let runs = std::fs::read_to_string(&ran).unwrap();
    let c_runs = runs.lines().filter(|l| *l == "c").count();
    assert_eq!(
        c_runs,
        2,
        "c ran once, was cut from the log, so runs once more, then never again; ran:\n{runs}\njoblog:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    for line in std::fs::read_to_string(&log).unwrap().lines() {
        assert_eq!(line.split('\t').count(), 9, "joblog line {line:?}");
    }
}

/// Out of file descriptors (a low `ulimit -n` and a high `-j`), a job that
/// cannot be started never ran: it must not be counted and logged as a job
/// that failed with 126 ("cannot start", no reason given), which `--resume`
/// then skips for good. GNU parallel caps the slots to the descriptors it
/// has; ply must at least run every job or stop with a clear error.
#[test]
fn running_out_of_descriptors_does_not_fail_jobs_that_never_ran() {
    let dir = TempDir::new("run-emfile");
    let log = dir.path().join("joblog");
    let script = format!(
        "ulimit -n 64 && seq 1 100 | exec {} run -j 100 --joblog {} 'sleep 0.2; echo {{}}'",
        env!("CARGO_BIN_EXE_ply"),
        log.display()
    );
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let err = stderr(&out);
    let printed = stdout(&out).lines().count();
    if out.status.code() == Some(255) {
        // Stopping with one clear error is acceptable; it must say why.
        assert!(err.contains("Too many open files"), "{err}");
    } else {
        assert!(out.status.success(), "status {:?}: {err}", out.status);
        assert_eq!(printed, 100, "{err}");
    }
    let logged_126 = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split('\t').nth(6) == Some("126"))
        .count();
    assert_eq!(
        logged_126, 0,
        "jobs that never started logged as failed; {err}"
    );
}

/// Ctrl-C, then `--resume`: the usual way to pause a long run. The jobs ply
/// itself killed on the way out never finished their work, so `--resume`
/// must run them. Today they are logged as ended by signal 15 and `--resume`
/// skips them for good.
#[test]
fn resume_after_ctrl_c_runs_the_jobs_ply_killed() {
    let dir = TempDir::new("run-resume-int");
    let log = dir.path().join("joblog");
    let done = dir.path().join("done");
    // A job records that it got to the end of its work.
    let job = format!("sleep 2; echo {{}} >> {}", done.display());
    let args = [
        "run",
        "-j",
        "2",
        "--joblog",
        log.to_str().unwrap(),
        &job,
        ":::",
        "a",
        "b",
        "c",
    ];
    let mut first = ply_cmd()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until_handling(&mut first, libc::SIGINT);
    // Both slots are busy once two `sleep 2` children exist; then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if job_children(first.id()) >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "jobs never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    signal(first.id(), libc::SIGINT);
    let status = wait_or_kill(&mut first, std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(130));
    let mut resume = args.to_vec();
    resume.insert(1, "--resume");
    let out = ply_cmd().args(&resume).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&done).unwrap_or_default();
    let mut finished: Vec<&str> = text.lines().collect();
    finished.sort_unstable();
    assert_eq!(
        finished,
        ["a", "b", "c"],
        "every job's work done once after the resume; joblog:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// A FIFO at `path`.
fn mkfifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Ctrl-C, SIGTERM and SIGHUP stop `ply run` while it is still setting up:
/// opening an input nobody writes to, counting an input that never ends
/// (`--shard`), copying a stdin that never ends (read twice); and a
/// `--dry-run` waiting for its next input line. ply caught
/// the signals from its first instant but looked at them only once its
/// event loop ran, so there it could not be stopped except by SIGKILL.
#[test]
fn a_stop_signal_ends_a_run_still_setting_up() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = TempDir::new("run-setup-signal");
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    // A writer that never writes: opening the FIFO read-write never blocks.
    let _writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .unwrap();
    let nobody_writes = dir.path().join("lonely");
    mkfifo(&nobody_writes);
    // (arguments, stdin: a pipe the test keeps open and never writes, signal)
    let cases: [(&[&str], bool, i32); 5] = [
        (
            &["run", "--dry-run", "echo", "::::", fifo],
            false,
            libc::SIGTERM,
        ),
        (
            &["run", "echo", "::::", nobody_writes.to_str().unwrap()],
            false,
            libc::SIGTERM,
        ),
        (
            &["run", "--shard", "1/2", "echo", "::::", fifo],
            false,
            libc::SIGINT,
        ),
        (
            &["run", "--halt", "soon,fail=50%", "echo", "::::", fifo],
            false,
            libc::SIGHUP,
        ),
        (
            &["run", "echo", ":::", "a", "::::", "-"],
            true,
            libc::SIGTERM,
        ),
    ];
    for (args, piped, sig) in cases {
        let mut child = ply_cmd()
            .args(args)
            .stdin(if piped {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_until_handling(&mut child, sig);
        signal(child.id(), sig);
        let status = wait_or_kill(&mut child, std::time::Duration::from_secs(20));
        assert_eq!(status.code(), Some(128 + sig), "{args:?}");
    }
}

/// An input line without end (`/dev/zero`, a stream with no newline) is an
/// error naming the input, not a line read into memory until the allocator
/// aborts with a backtrace. Run under a 1 GB address-space limit, so the
/// old behaviour fails fast instead of eating the machine's memory.
#[test]
fn an_endless_input_line_is_an_error_not_an_abort() {
    let ply = env!("CARGO_BIN_EXE_ply");
    for (script, name) in [
        (
            format!("exec {ply} run echo :::: /dev/zero"),
            "/dev/zero:1:",
        ),
        (format!("exec {ply} run echo < /dev/zero"), "stdin:1:"),
    ] {
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", &format!("ulimit -v 1000000 && {script}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_or_kill(&mut child, std::time::Duration::from_secs(30));
        let err = drain_stderr(&mut child);
        assert_eq!(status.code(), Some(255), "{script}: {err}");
        assert_eq!(err.lines().count(), 1, "{script}: {err}");
        assert!(
            err.starts_with(&format!("error: {name} a line longer than")),
            "{script}: {err}"
        );
    }
}

/// A joblog must be a regular file. Appending to a FIFO (which ply opened
/// read-write, so it was its own reader) blocked the event loop for good
/// once 64 KiB of lines filled the pipe, deaf even to SIGTERM; `--resume`
/// read `/dev/zero` without end. Each is now refused before any job runs.
#[test]
fn a_joblog_that_is_not_a_regular_file_is_refused() {
    let dir = TempDir::new("run-joblog-kind");
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let ran = dir.path().join("ran");
    let job = format!("echo {{}} >> {}", ran.display());
    for args in [
        &["run", "--joblog", fifo, &job, ":::", "1"][..],
        &["run", "--resume", "--joblog", fifo, &job, ":::", "1"],
        &["run", "--resume", "--joblog", "/dev/zero", &job, ":::", "1"],
    ] {
        let mut child = ply_cmd()
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_or_kill(&mut child, std::time::Duration::from_secs(20));
        let err = drain_stderr(&mut child);
        assert_eq!(status.code(), Some(255), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
        assert!(!ran.exists(), "{args:?}: a job ran");
    }
}

/// `--pipe` extends a block to the end of its last line; a stdin without
/// newlines (`/dev/zero`) was read into memory without end, each read
/// searching the whole block again (quadratic). A line over 1 GiB is now an
/// error, reached in time linear in its length. Under a 4 GB address-space
/// limit, so the old behaviour fails instead of eating the machine's memory.
#[test]
fn an_endless_line_on_pipe_is_an_error_not_an_abort() {
    let ply = env!("CARGO_BIN_EXE_ply");
    let script = format!("ulimit -v 4000000 && exec {ply} run --pipe --block 1k wc -c < /dev/zero");
    let mut child = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_or_kill(&mut child, std::time::Duration::from_secs(60));
    let err = drain_stderr(&mut child);
    assert_eq!(status.code(), Some(255), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: stdin: a line longer than 1024 MiB"),
        "{err}"
    );
}
