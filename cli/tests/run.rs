//! `ply run` end to end, with real commands: ordering, no interleaving,
//! whole job trees killed (setsid and double-fork escapees) on timeout,
//! halt and stop signals, resume after SIGKILL, shard coverage, joblogs good
//! and bad, a million input lines in bounded memory, `--pipe` order.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `ply run args` with `stdin` fed, under a 2-minute watchdog.
fn run_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut command = ply_cmd();
    command.arg("run").args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(Duration::from_secs(120)).is_err() {
        signal(pid, libc::SIGKILL);
        panic!("ply run {args:?} did not finish in 2 minutes");
    }
    let _ = writer.join();
    waiter.join().unwrap()
}

fn run(args: &[&str]) -> Output {
    run_with(args, b"", &[])
}

fn lines(out: &Output) -> Vec<String> {
    stdout(out).lines().map(str::to_owned).collect()
}

#[test]
fn arguments_files_and_stdin_with_product_and_link() {
    let out = run(&["-k", "echo", "{1}-{2}", ":::", "a", "b", ":::", "1", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out), ["a-1", "a-2", "b-1", "b-2"]);
    let out = run(&[
        "-k", "--link", "echo", ":::", "a", "b", "c", ":::", "1", "2",
    ]);
    assert_eq!(lines(&out), ["a 1", "b 2", "c 1"]);
    let dir = TempDir::new("run-inputs");
    let file = dir.path().join("list");
    std::fs::write(&file, "x.tar.gz\ny/z.txt\n").unwrap();
    let out = run(&[
        "-k",
        "echo",
        "{#}",
        "{.}",
        "{/}",
        "{//}",
        "::::",
        file.to_str().unwrap(),
    ]);
    assert_eq!(lines(&out), ["1 x.tar x.tar.gz .", "2 y/z z.txt y"]);
    let out = run_with(&["-k", "echo", "got"], b"one\ntwo words\n", &[]);
    assert_eq!(lines(&out), ["got one", "got two words"]);
    // No command: each input line is a command line for the shell.
    let out = run_with(&["-k"], b"echo a | tr a A\necho b\n", &[]);
    assert_eq!(lines(&out), ["A", "b"]);
}

#[test]
fn shell_commands_quote_values_and_direct_commands_pass_them_whole() {
    let nasty = "it's $(touch pwned) `x` \"q\"";
    let out = run(&["-k", "printf '%s\\n' {} | cat", ":::", nasty]);
    assert_eq!(lines(&out), [nasty]);
    // A plain command runs directly: each value is one argument, unquoted.
    let out = run(&["-k", "printf", "%s:", ":::", nasty, "a b"]);
    assert_eq!(stdout(&out), format!("{nasty}:a b:"));
    assert!(!std::path::Path::new("pwned").exists());
    let out = run(&["--dry-run", "echo {} | wc -c", ":::", "a b"]);
    assert_eq!(lines(&out), ["echo 'a b' | wc -c"]);
}

#[test]
fn keep_order_prints_in_input_order_whatever_finishes_first() {
    let out = run(&[
        "-k",
        "-j",
        "4",
        "sleep 0.{}; echo {}",
        ":::",
        "4",
        "3",
        "2",
        "1",
        "0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines(&out), ["4", "3", "2", "1", "0"]);
    // Without -k, output comes as jobs finish.
    let out = run(&["-j", "5", "sleep 0.{}; echo {}", ":::", "4", "0"]);
    assert_eq!(lines(&out), ["0", "4"]);
}

/// Checks that `text` is made of whole runs of one character per job, each
/// run `len` bytes of `c\n` lines: no job's output is cut by another's.
fn assert_grouped(text: &[u8], jobs: &[u8], len: usize) {
    let mut seen = BTreeSet::new();
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        assert!(seen.insert(c), "job {} printed in two pieces", c as char);
        let run = &text[i..(i + len).min(text.len())];
        assert!(
            run.chunks(2).all(|l| l == [c, b'\n']),
            "job {}'s output is interleaved",
            c as char
        );
        i += len;
    }
    assert_eq!(seen, jobs.iter().copied().collect());
}

#[test]
fn large_outputs_of_concurrent_jobs_never_interleave_and_spill_to_disk() {
    // Four jobs of 8 MiB each at once: 32 MiB, past the 16 MiB memory budget.
    let tmp = TempDir::new("run-large");
    let len = 8 << 20;
    let out = run_with(
        &[
            "-j",
            "4",
            "yes {} | head -c 8388608",
            ":::",
            "a",
            "b",
            "c",
            "d",
        ],
        b"",
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 4 * len);
    assert_grouped(&out.stdout, b"abcd", len);
    // The spill files have no name: nothing is left in TMPDIR.
    assert_eq!(tmp.entries(), Vec::<String>::new());
    // --line-buffer: lines may interleave, but every line is whole.
    let out = run(&[
        "--line-buffer",
        "-j",
        "4",
        "yes {} | head -c 2000000",
        ":::",
        "a",
        "b",
        "c",
        "d",
    ]);
    let text = stdout(&out);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        *counts.entry(line).or_default() += 1;
    }
    assert_eq!(
        counts.len(),
        4,
        "a mixed line: {:?}",
        counts.keys().collect::<Vec<_>>()
    );
    assert!(counts.values().all(|&n| n == 1_000_000));
}

#[test]
fn tag_prefixes_lines_and_stderr_stays_separate() {
    let out = run(&[
        "-k",
        "--tag",
        "echo out {}; echo err {} >&2",
        ":::",
        "x",
        "y z",
    ]);
    assert_eq!(lines(&out), ["x\tout x", "y z\tout y z"]);
    assert_eq!(stderr(&out), "x\terr x\ny z\terr y z\n");
}

#[test]
fn exit_status_counts_failures_like_gnu_parallel() {
    let out = run(&["exit {}", ":::", "0", "1", "2", "0", "3"]);
    assert_eq!(out.status.code(), Some(3));
    let many: Vec<String> = (0..102).map(|i| i.to_string()).collect();
    let mut args = vec!["-j", "8", "false", ":::"];
    args.extend(many.iter().map(String::as_str));
    assert_eq!(run(&args).status.code(), Some(101));
    // A command that does not exist is one failed job (127), the rest run.
    let dir = TempDir::new("run-127");
    let log = dir.path().join("log");
    let out = run(&[
        "--joblog",
        log.to_str().unwrap(),
        "-k",
        "{}",
        ":::",
        "/nonexistent/ply-nope",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/ply-nope: command not found"));
    let text = std::fs::read_to_string(&log).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    let exit_of = |cmd: &str| rows.iter().find(|r| r[8] == cmd).map(|r| r[6]);
    assert_eq!(exit_of("/nonexistent/ply-nope"), Some("127"));
    assert_eq!(exit_of("true"), Some("0"));
    assert_eq!(
        text.lines().next(),
        Some("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand")
    );
}

#[test]
fn misuse_and_bad_settings_are_one_line_and_255() {
    for (args, expected) in [
        (&["run", "-j", "0", "true"][..], "0"),
        (&["run", "-j", "99999", "true"], "99999"),
        (&["run", "--timeout", "0", "true"], "0"),
        (&["run", "--timeout", "3y", "true"], "3y"),
        (&["run", "--halt", "sometime", "true"], "sometime"),
        (&["run", "--term-seq", "NOPE,10", "true"], "NOPE"),
        (&["run", "--shard", "5/4", "true"], "5/4"),
        (&["run", "--retries", "0", "true"], "0"),
        (&["run", "--pipe", "--block", "2G", "cat"], "2G"),
        (&["run", "--resume", "true"], "--joblog"),
        (&["run", "echo", ":::"], ":::"),
        (&["run", "echo", "{3}", ":::", "a"], "{3}"),
        (&["run", "--nope"], "--nope"),
    ] {
        assert_misuse_code(args, 255, expected);
    }
    let out = ply_cmd()
        .args(["run", "--shard", "auto", "true", ":::", "a"])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("AWS_BATCH_JOB_ARRAY_INDEX")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("none of SLURM_ARRAY_TASK_ID"),
        "{}",
        stderr(&out)
    );
    let help = stdout(&ply(&["run", "--help"]));
    assert!(
        help.contains("101      more than 100 jobs failed"),
        "{help}"
    );
}

/// A job that starts a `setsid sleep` and a double-forked daemon, then waits
/// (or does `then`).
const ESCAPING: &str = "setsid sleep 1000 & (sh -c 'sleep 1000 &' &); sleep 1000";

/// Runs `ply run args` marked, optionally sending `sig` once `ready` lines
/// are in the joblog or after jobs started; checks the exit status and that
/// no process of the run is left.
fn run_marked(args: &[&str], sig: Option<i32>, expect: i32) -> String {
    run_marked_as(args, sig, expect, None)
}

/// As [`run_marked`], ply running as user `uid` if given (the test must be
/// root then); also checks that ply removed every cgroup it created.
fn run_marked_as(args: &[&str], sig: Option<i32>, expect: i32, uid: Option<u32>) -> String {
    let (marker_var, mark) = marker("run");
    let tmp = TempDir::new("run-marked");
    let mut child = {
        use std::os::unix::process::CommandExt;
        let mut command = ply_cmd();
        command
            .arg("run")
            .args(args)
            .env("PLY_TEST_MARK", &mark)
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(uid) = uid {
            command.uid(uid).gid(uid);
        }
        command.spawn().expect("spawn ply")
    };
    if let Some(sig) = sig {
        wait_until_handling(&mut child, sig);
        // Wait until the jobs' escapees exist (a leader and two sleeps each).
        let deadline = Instant::now() + Duration::from_secs(30);
        while processes_with(&marker_var)
            .iter()
            .filter(|&&p| is_sleep(p))
            .count()
            < 4
        {
            assert!(
                Instant::now() < deadline,
                "the jobs never started their escapees"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        signal(child.id(), sig);
    }
    let status = wait_or_kill(&mut child, Duration::from_secs(60));
    let err = drain_stderr(&mut child);
    assert_eq!(status.code(), Some(expect), "{args:?}: {err}");
    assert_none_left(&marker_var);
    let cgroups = cgroups_left_by(child.id());
    assert!(cgroups.is_empty(), "{args:?}: cgroups left: {cgroups:?}");
    err
}

fn is_sleep(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
}

#[test]
fn a_timeout_kills_the_whole_job_tree_with_and_without_cgroups() {
    for extra in [&[][..], &["--no-cgroup"]] {
        let mut args = vec!["--timeout", "0.5s", "-j", "2"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[ESCAPING, ":::", "1", "2"]);
        run_marked(&args, None, 2);
    }
}

#[test]
fn a_job_ending_spares_the_helpers_a_running_job_still_needs() {
    // Job h starts two helpers that outlive their parents (one double
    // forked, one also in a new session), then waits while five other jobs
    // end, each leaving a process behind that ply kills; at the end h
    // checks that its helpers still run.
    let dir = TempDir::new("run-helpers");
    let d = dir.path().display();
    let helper = format!(
        "(sh -c 'sleep 1000 & echo $! > {d}/helper1' &); \
         (setsid sh -c 'sleep 1000 & echo $! > {d}/helper2' &); \
         until [ -s {d}/helper1 ] && [ -s {d}/helper2 ] && \
               [ \"$(wc -l < {d}/ends 2>/dev/null)\" -ge 5 ]; do sleep 0.05; done; \
         sleep 0.5; kill -0 $(cat {d}/helper1) && kill -0 $(cat {d}/helper2)"
    );
    let quick = format!("setsid sleep 1000 & sleep 0.2; echo {{}} >> {d}/ends");
    let job = format!("if [ {{}} = h ]; then {helper}; else {quick}; fi");
    for extra in [&[][..], &["--no-cgroup"]] {
        let _ = std::fs::remove_file(dir.path().join("ends"));
        let mut args = vec!["-j", "2"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&job, ":::", "h", "1", "2", "3", "4", "5"]);
        run_marked(&args, None, 0);
    }
}

/// Job `t` leaves a `setsid` escapee and is stopped (by `stop`: a timeout,
/// or its failure under `--halt soon`), while job `h`, running beside it,
/// has two helpers that outlived their parents (one double forked, one also
/// in a new session). `h` ignores TERM (so the timeout's TERM, which reaches
/// it too, does not end it), waits until `t`'s escapee is gone, lets ply
/// sweep a few times, then records whether its helpers still run.
fn stopping_one_job_spares_its_neighbour(stop: &[&str], t_ends: &str, expect: i32) {
    let dir = TempDir::new("run-neighbour");
    let d = dir.path().display();
    let t = format!("setsid sleep 1000 & echo $! > {d}/t; {t_ends}");
    let h = format!(
        "trap '' TERM; \
         (sh -c 'sleep 1000 & echo $! > {d}/h1' &); \
         (setsid sh -c 'sleep 1000 & echo $! > {d}/h2' &); \
         until [ -s {d}/h1 ] && [ -s {d}/h2 ] && [ -s {d}/t ]; do sleep 0.02; done; \
         while kill -0 $(cat {d}/t) 2>/dev/null; do sleep 0.02; done; \
         sleep 0.5; \
         if kill -0 $(cat {d}/h1) && kill -0 $(cat {d}/h2); then echo alive; else echo killed; fi > {d}/verdict"
    );
    let job = format!("if [ {{}} = h ]; then {h}; else {t}; fi");
    for extra in [&[][..], &["--no-cgroup"]] {
        for file in ["t", "h1", "h2", "verdict"] {
            let _ = std::fs::remove_file(dir.path().join(file));
        }
        let mut args = vec!["-j", "2"];
        args.extend_from_slice(stop);
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&job, ":::", "t", "h"]);
        run_marked(&args, None, expect);
        let verdict = std::fs::read_to_string(dir.path().join("verdict")).unwrap_or_default();
        assert_eq!(verdict, "alive\n", "{stop:?} {extra:?}: h's helpers");
    }
}

#[test]
fn a_timeout_kills_only_the_timed_out_jobs_tree() {
    // Both jobs time out (1 s); t dies of the TERM, h ignores it for the
    // 60 s grace, ends by itself, and counts as failed: 2 failed.
    stopping_one_job_spares_its_neighbour(
        &["--timeout", "1s", "--term-seq", "TERM,60000"],
        "sleep 1000",
        2,
    );
}

#[test]
fn halt_soon_kills_only_the_failed_jobs_leftovers() {
    stopping_one_job_spares_its_neighbour(&["--halt", "soon,fail=1"], "exit 3", 3);
}

#[test]
fn without_a_writable_cgroup_jobs_are_contained_by_process_groups() {
    // Run as an unprivileged user, ply may not create a cgroup beside its
    // own (owned by root): it falls back to process groups and the
    // subreaper sweep, and still leaves nothing behind. As root (where
    // cgroups are writable), the same jobs run in ply's cgroups.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot run ply as another user here");
        return;
    }
    let job = format!("grep '^0::' /proc/self/cgroup >&2; {ESCAPING}");
    let args = ["--timeout", "0.5s", "-j", "2", &job, ":::", "1", "2"];
    let unprivileged = run_marked_as(&args, None, 2, Some(65534));
    assert_eq!(unprivileged.matches("0::").count(), 2, "{unprivileged}");
    assert!(!unprivileged.contains("/ply-"), "{unprivileged}");
    if own_cgroup_dir().is_some_and(|d| d.join("cgroup.procs").exists()) {
        let root = run_marked_as(&args, None, 2, None);
        assert_eq!(root.matches("/ply-").count(), 2, "{root}");
    }
}

#[test]
fn timeout_percent_is_of_the_median_of_succeeded_jobs() {
    // Fast jobs set a median of ~0; the slow one is past 1000% of it.
    let out = run(&[
        "-j",
        "1",
        "--timeout",
        "1000%",
        "sleep",
        ":::",
        "0.05",
        "0.05",
        "0.05",
        "30",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn halt_now_kills_running_trees_and_exits_with_the_failing_status() {
    let job = format!("[ {{}} = 3 ] && sleep 0.5 && exit 7; {ESCAPING}");
    for extra in [&[][..], &["--no-cgroup"]] {
        let mut args = vec!["--halt", "now,fail=1", "-j", "3"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&job, ":::", "3", "1", "2"]);
        run_marked(&args, None, 7);
    }
    // soon: no new job starts after the failure; running ones finish.
    let out = run(&[
        "--halt",
        "soon,fail=1",
        "-j",
        "1",
        "exit {}",
        ":::",
        "0",
        "4",
        "0",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn stop_signals_kill_every_job_tree_and_exit_128_plus_the_signal() {
    for (sig, code) in [
        (libc::SIGINT, 130),
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
    ] {
        let err = run_marked(
            &["-j", "2", ESCAPING, ":::", "1", "2", "3"],
            Some(sig),
            code,
        );
        assert!(err.contains("stopped by"), "{err}");
    }
    run_marked(
        &["--no-cgroup", "-j", "2", ESCAPING, ":::", "1", "2"],
        Some(libc::SIGINT),
        130,
    );
}

/// Lines of the joblog (no header).
fn joblog_commands(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("Seq\t"))
        .map(|l| l.split('\t').nth(8).unwrap().to_owned())
        .collect()
}

#[test]
fn resume_after_sigkill_runs_every_job_once_more_at_most() {
    let dir = TempDir::new("run-resume");
    let log = dir.path().join("joblog");
    let ran = dir.path().join("ran");
    let (marker_var, mark) = marker("resume");
    // Each job notes its start with the run it belongs to.
    let job = format!("echo {{}} $RUN >> {}; sleep 0.05", ran.display());
    let values: Vec<String> = (1..=60).map(|i| i.to_string()).collect();
    let mut args = vec![
        "run",
        "-j",
        "4",
        "--joblog",
        log.to_str().unwrap(),
        &job,
        ":::",
    ];
    args.extend(values.iter().map(String::as_str));
    let mut first = ply_cmd()
        .args(&args)
        .env("RUN", "1")
        .env("PLY_TEST_MARK", &mark)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while joblog_commands(&log).len() < 20 {
        assert!(
            Instant::now() < deadline,
            "the first run never logged 20 jobs"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(first.id(), libc::SIGKILL);
    let _ = first.wait();
    // SIGKILL leaves ply no chance to clean up: its watchman ends the jobs
    // where cgroups exist; end them here otherwise, as a reboot would.
    for pid in processes_with(&marker_var) {
        signal(pid, libc::SIGKILL);
    }
    assert_none_left(&marker_var);
    let logged: BTreeSet<String> = joblog_commands(&log).into_iter().collect();
    let mut second: Vec<&str> = args.clone();
    second.insert(1, "--resume");
    let out = ply_cmd().args(&second).env("RUN", "2").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let runs: Vec<(String, String)> = std::fs::read_to_string(&ran)
        .unwrap()
        .lines()
        .map(|l| {
            let (v, r) = l.split_once(' ').unwrap();
            (v.to_owned(), r.to_owned())
        })
        .collect();
    for v in &values {
        assert!(runs.iter().any(|(x, _)| x == v), "job {v} never ran");
        let command = job.replace("{}", v);
        if logged.contains(&command) {
            assert!(
                !runs.iter().any(|(x, r)| x == v && r == "2"),
                "job {v} completed in the first run and ran again"
            );
        }
    }
    // After the resume every job is logged as done exactly once.
    let all = joblog_commands(&log);
    assert_eq!(all.len(), 60, "{all:?}");
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 60);
}

#[test]
fn resume_failed_reruns_only_failures() {
    let dir = TempDir::new("run-resume-failed");
    let log = dir.path().join("joblog");
    let flag = dir.path().join("fixed");
    let job = format!(
        "[ {{}} = 2 ] && [ ! -e {} ] && exit 1; echo {{}}",
        flag.display()
    );
    let args = [
        "-k",
        "--joblog",
        log.to_str().unwrap(),
        &job,
        ":::",
        "1",
        "2",
        "3",
    ];
    assert_eq!(run(&args).status.code(), Some(1));
    // --resume skips everything logged, failed or not.
    let mut resume = vec!["--resume"];
    resume.extend_from_slice(&args);
    let out = run(&resume);
    assert_eq!(lines(&out), Vec::<String>::new());
    std::fs::write(&flag, "").unwrap();
    let mut failed = vec!["--resume-failed"];
    failed.extend_from_slice(&args);
    let out = run(&failed);
    assert!(out.status.success());
    assert_eq!(lines(&out), ["2"]);
}

#[test]
fn a_bad_joblog_is_an_error_naming_file_and_line_and_runs_nothing() {
    let dir = TempDir::new("run-badlog");
    let log = dir.path().join("joblog");
    let marker_file = dir.path().join("ran");
    std::fs::write(&log, "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n1\t:\tyesterday\t1\t0\t0\t0\t0\ttrue\n").unwrap();
    let job = format!("touch {}", marker_file.display());
    let out = run(&[
        "--resume",
        "--joblog",
        log.to_str().unwrap(),
        &job,
        ":::",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(255));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:2:", log.display())), "{err}");
    assert!(err.contains("Starttime 'yesterday'"), "{err}");
    assert!(!marker_file.exists(), "a job ran despite the bad joblog");
    // A directory is unreadable as a joblog: also a clear error.
    let out = run(&[
        "--resume",
        "--joblog",
        dir.path().to_str().unwrap(),
        "true",
        ":::",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(255));
    assert!(stderr(&out).contains(dir.path().to_str().unwrap()));
}

#[test]
fn json_joblog_lines_have_gnu_fields() {
    let dir = TempDir::new("run-json");
    let log = dir.path().join("log.jsonl");
    let out = run(&[
        "--joblog",
        log.to_str().unwrap(),
        "--joblog-format",
        "json",
        "exit {}",
        ":::",
        "0",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let mut exits: Vec<i64> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            for field in [
                "seq",
                "host",
                "starttime",
                "runtime",
                "send",
                "receive",
                "signal",
                "command",
            ] {
                assert!(v.get(field).is_some(), "{field} missing: {l}");
            }
            v["exitval"].as_i64().unwrap()
        })
        .collect();
    exits.sort();
    assert_eq!(exits, [0, 3]);
}

#[test]
fn shards_cover_every_job_exactly_once_and_their_joblogs_concatenate() {
    let dir = TempDir::new("run-shards");
    let values: Vec<String> = (1..=23).map(|i| i.to_string()).collect();
    // Per scheduler: the --shard flags, and each array task's environment.
    type Env = Vec<(String, String)>;
    let schedulers: Vec<(Vec<&str>, Vec<Env>)> = vec![
        (
            vec!["--shard", "auto"],
            (0..4)
                .map(|k| {
                    vec![
                        ("SLURM_ARRAY_TASK_ID".into(), (10 + 2 * k).to_string()),
                        ("SLURM_ARRAY_TASK_MIN".into(), "10".into()),
                        ("SLURM_ARRAY_TASK_MAX".into(), "16".into()),
                        ("SLURM_ARRAY_TASK_STEP".into(), "2".into()),
                    ]
                })
                .collect(),
        ),
        (
            vec!["--shard", "auto/3"],
            (0..3)
                .map(|k| vec![("JOB_COMPLETION_INDEX".into(), k.to_string())])
                .collect(),
        ),
        (
            vec!["--shard", "auto"],
            (0..5)
                .map(|k| {
                    vec![
                        ("AWS_BATCH_JOB_ARRAY_INDEX".into(), k.to_string()),
                        ("AWS_BATCH_JOB_ARRAY_SIZE".into(), "5".into()),
                    ]
                })
                .collect(),
        ),
    ];
    for (n, (flags, envs)) in schedulers.iter().enumerate() {
        let mut seen: Vec<String> = Vec::new();
        let mut concatenated = String::new();
        for (k, env) in envs.iter().enumerate() {
            let log = dir.path().join(format!("log-{n}-{k}"));
            let mut args: Vec<&str> = flags.clone();
            args.extend_from_slice(&["--joblog", log.to_str().unwrap(), "echo", ":::"]);
            args.extend(values.iter().map(String::as_str));
            let env: Vec<(&str, &str)> =
                env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let out = run_with(&args, b"", &env);
            assert!(out.status.success(), "{env:?}: {}", stderr(&out));
            seen.extend(lines(&out));
            concatenated.push_str(&std::fs::read_to_string(&log).unwrap());
        }
        seen.sort_by_key(|v| v.parse::<u32>().unwrap());
        assert_eq!(seen, values, "scheduler {n}: every job exactly once");
        // The shards' joblogs, concatenated: a resume over them runs nothing.
        let all = dir.path().join(format!("all-{n}"));
        std::fs::write(&all, concatenated).unwrap();
        let mut args = vec!["--resume", "--joblog", all.to_str().unwrap(), "echo", ":::"];
        args.extend(values.iter().map(String::as_str));
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(lines(&out), Vec::<String>::new());
    }
}

/// Runs `command`; returns its exit code and its peak RSS in KiB, the last
/// `VmHWM` (a high-water mark, so only growing) read from `/proc` every
/// millisecond while it ran. `wait4`'s `ru_maxrss` cannot be used: it
/// includes this test process's memory, which the child had before `exec`.
fn run_measuring_rss(command: &mut Command) -> (i32, u64) {
    let mut child = command.spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        {
            peak = kib;
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code().unwrap_or(-1), peak);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run took more than 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_million_input_lines_are_streamed_in_bounded_memory() {
    let dir = TempDir::new("run-million");
    let input = dir.path().join("lines");
    let mut text = String::with_capacity(7 << 20);
    for i in 0..1_000_000 {
        text.push_str(&i.to_string());
        text.push('\n');
    }
    std::fs::write(&input, &text).unwrap();
    // Every line read (and counted) through the feeder; a thousandth of
    // them run, to keep the test short.
    let (code, kib) = run_measuring_rss(
        ply_cmd()
            .args([
                "run",
                "-j",
                "2",
                "--shard",
                "7/1000",
                "true",
                "::::",
                input.to_str().unwrap(),
            ])
            .stdout(Stdio::null()),
    );
    assert_eq!(code, 0);
    assert!(kib < 30 * 1024, "peak RSS {kib} KiB for 1M lines");
    // And from stdin, every line through the template.
    let (code, kib) = run_measuring_rss(
        ply_cmd()
            .args(["run", "--dry-run", "echo"])
            .stdin(std::fs::File::open(&input).unwrap())
            .stdout(Stdio::null()),
    );
    assert_eq!(code, 0);
    assert!(kib < 30 * 1024, "peak RSS {kib} KiB for 1M lines on stdin");
}

#[test]
fn resume_over_a_million_logged_jobs_holds_no_commands_in_memory() {
    let dir = TempDir::new("run-big-joblog");
    let log = dir.path().join("joblog");
    // A million logged jobs with 100-byte commands: 113 MB of joblog.
    let pad = "x".repeat(90);
    let mut text = String::with_capacity(120 << 20);
    text.push_str("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n");
    for i in 0..1_000_000u32 {
        let exit = u32::from(i == 7); // one failure, for --resume-failed
        text.push_str(&format!(
            "{i}\t:\t1.000\t0.000\t0\t0\t{exit}\t0\ttrue {pad}-{i}\n"
        ));
    }
    std::fs::write(&log, &text).unwrap();
    drop(text);
    let value = format!("{pad}-{{}}");
    let (code, kib) = run_measuring_rss(
        ply_cmd()
            .args(["run", "--resume-failed", "--joblog"])
            .arg(&log)
            .args(["true", &value, ":::", "5", "7", "999999", "1000000"])
            .stdout(Stdio::null()),
    );
    assert_eq!(code, 0);
    assert!(kib < 30 * 1024, "peak RSS {kib} KiB with a 1M-job joblog");
    // Only the failed job and the one never logged ran (and were logged).
    let mut tail: Vec<String> = joblog_commands(&log).into_iter().skip(1_000_000).collect();
    tail.sort();
    assert_eq!(
        tail,
        [format!("true {pad}-1000000"), format!("true {pad}-7")]
    );
}

#[test]
fn pipe_blocks_keep_records_whole_and_k_keeps_their_order() {
    let mut input = Vec::new();
    for i in 0..200_000 {
        input.extend_from_slice(format!("record {i}\n").as_bytes());
    }
    let out = run_with(
        &["--pipe", "--block", "64K", "-k", "-j", "4", "cat"],
        &input,
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stdout == input,
        "the blocks came back out of order or cut"
    );
    // Each job sees whole records: counting lines per block adds up.
    let out = run_with(&["--pipe", "--block", "10K", "wc", "-l"], &input, &[]);
    let total: u64 = lines(&out)
        .iter()
        .map(|l| l.trim().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 200_000);
    assert!(lines(&out).len() > 50, "blocks of about 10K");
}

#[test]
fn closed_output_is_quiet_141() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are fresh and owned by nothing else.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let out = ply_cmd()
        .args(["run", "echo", ":::", "a", "b"])
        .stdout(Stdio::from(writer))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}
