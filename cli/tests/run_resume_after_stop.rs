//! Jobs that ply itself stops on its way out did not finish their work:
//! they are not logged, and `--resume` runs them again — whatever stopped
//! the run (SIGTERM, a second SIGINT, `--halt now`, an input that is not
//! text). Each run stops while jobs `a` and `b` are in the middle of their
//! work, then `--resume` must get each one's work done exactly once.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A job: records that it started, then `a`/`b` work 2 s and record that
/// they finished; `x` waits (at most 30 s) for `a` and `b` to start, then
/// fails with 3. With `deaf`, the job ignores SIGTERM (and so does all it
/// starts: an ignored signal stays ignored across `execve`).
fn job(dir: &Path, deaf: bool) -> String {
    let d = dir.display();
    let trap = if deaf { "trap '' TERM; " } else { "" };
    format!(
        "{trap}touch {d}/started.{{}}; case {{}} in \
         x) i=0; while [ ! -e {d}/started.a ] || [ ! -e {d}/started.b ]; do \
            i=$((i+1)); [ $i -lt 3000 ] || exit 9; sleep 0.01; done; exit 3;; \
         *) sleep 2; echo {{}} >> {d}/done;; esac"
    )
}

fn args(dir: &Path, extra: &[&str], inputs: &[&str]) -> Vec<String> {
    let mut all = vec!["run".to_string(), "-j".into(), "3".into()];
    all.extend(["--joblog".into(), dir.join("joblog").display().to_string()]);
    all.extend(extra.iter().map(|s| s.to_string()));
    all.push(job(dir, extra.contains(&"--term-seq")));
    if !inputs.is_empty() {
        all.push(":::".into());
        all.extend(inputs.iter().map(|s| s.to_string()));
    }
    all
}

fn wait_until_started(dir: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(dir.join("started.a").exists() && dir.join("started.b").exists()) {
        assert!(child.try_wait().unwrap().is_none(), "ply ended early");
        assert!(Instant::now() < deadline, "jobs never started");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The joblog's entries: (command's value, exit value), after checking
/// every line has its 9 columns.
fn logged(dir: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("joblog")).unwrap_or_default();
    text.lines()
        .skip(1)
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            assert_eq!(fields.len(), 9, "{l:?}");
            let value = fields[8].split("started.").nth(1).unwrap_or("?");
            (value[..1].to_string(), fields[6].to_string())
        })
        .collect()
}

/// Resumes (the first run's options and `inputs`, or `stdin`) and checks
/// each of `a` and `b` did its work once, counting the stopped run.
fn resume_and_check(dir: &Path, extra: &[&str], inputs: &[&str], stdin: Option<&[u8]>) {
    let mut extra = extra.to_vec();
    extra.push("--resume");
    let mut resume = ply_cmd()
        .args(args(dir, &extra, inputs))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        resume.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let status = wait_or_kill(&mut resume, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut resume.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    let text = std::fs::read_to_string(dir.join("done")).unwrap_or_default();
    let mut done: Vec<&str> = text.lines().collect();
    done.sort_unstable();
    assert_eq!(done, ["a", "b"], "each job's work done once");
    let mut entries = logged(dir);
    entries.retain(|(v, _)| v != "x");
    entries.sort();
    assert_eq!(
        entries,
        [("a".into(), "0".into()), ("b".into(), "0".into())],
        "a and b logged once each, as succeeded"
    );
}

/// Starts the first run (stdin piped when `stdin`).
fn first_run(dir: &Path, extra: &[&str], inputs: &[&str], stdin: bool) -> Child {
    let mut child = ply_cmd()
        .args(args(dir, extra, inputs))
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_handling(&mut child, libc::SIGTERM);
    child
}

#[test]
fn jobs_stopped_by_sigterm_run_again_on_resume() {
    let dir = TempDir::new("run-stop-term");
    let mut first = first_run(dir.path(), &[], &["a", "b"], false);
    wait_until_started(dir.path(), &mut first);
    signal(first.id(), libc::SIGTERM);
    let status = wait_or_kill(&mut first, Duration::from_secs(60));
    assert_eq!(status.code(), Some(143));
    assert_eq!(logged(dir.path()), [], "no stopped job is logged");
    resume_and_check(dir.path(), &[], &["a", "b"], None);
}

#[test]
fn jobs_killed_by_a_second_sigint_run_again_on_resume() {
    let dir = TempDir::new("run-stop-int2");
    // The jobs ignore TERM (they do with --term-seq), so only the second
    // signal's KILL ends them.
    let mut first = first_run(
        dir.path(),
        &["--term-seq", "TERM,30000,KILL,25"],
        &["a", "b"],
        false,
    );
    wait_until_handling(&mut first, libc::SIGINT);
    wait_until_started(dir.path(), &mut first);
    // Two signals sent at once may arrive as one: send until ply is gone,
    // so one arrives after the first was handled.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "ply did not stop");
        signal(first.id(), libc::SIGINT);
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(logged(dir.path()), [], "no stopped job is logged");
    resume_and_check(
        dir.path(),
        &["--term-seq", "TERM,30000,KILL,25"],
        &["a", "b"],
        None,
    );
}

#[test]
fn jobs_killed_by_halt_now_run_again_on_resume() {
    let dir = TempDir::new("run-stop-halt");
    let mut first = first_run(
        dir.path(),
        &["--halt", "now,fail=1"],
        &["a", "b", "x"],
        false,
    );
    let status = wait_or_kill(&mut first, Duration::from_secs(60));
    assert_eq!(status.code(), Some(3));
    // The job that failed on its own is logged; those ply killed are not.
    assert_eq!(logged(dir.path()), [("x".into(), "3".into())]);
    resume_and_check(
        dir.path(),
        &["--halt", "now,fail=1"],
        &["a", "b", "x"],
        None,
    );
}

#[test]
fn jobs_stopped_by_an_input_error_run_again_on_resume() {
    let dir = TempDir::new("run-stop-input");
    let mut first = first_run(dir.path(), &[], &[], true);
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(b"a\nb\n").unwrap();
    wait_until_started(dir.path(), &mut first);
    // Not UTF-8: the run stops with an error.
    stdin.write_all(b"\xff\n").unwrap();
    drop(stdin);
    let status = wait_or_kill(&mut first, Duration::from_secs(60));
    assert_eq!(status.code(), Some(255));
    assert_eq!(logged(dir.path()), [], "no stopped job is logged");
    resume_and_check(dir.path(), &[], &[], Some(b"a\nb\n"));
}

/// A job that failed a try while the run was stopping is not retried; it
/// did not use the tries it was given, so it is not logged as failed
/// either, and `--resume` runs it again. Here `--halt soon` stops the run
/// when `x` has failed both its tries, and `y` fails its first try only
/// once ply has logged `x` (its second try would succeed).
#[test]
fn a_job_whose_retries_the_stop_took_away_runs_again_on_resume() {
    let dir = TempDir::new("run-stop-retry");
    let d = dir.path().display();
    let job = format!(
        "case {{}} in x) exit 3;; \
         y) if [ -e {d}/y.tried ]; then echo y >> {d}/done; exit 0; fi; touch {d}/y.tried; \
            i=0; until grep -q 'case x in' {d}/joblog; do \
            i=$((i+1)); [ $i -lt 3000 ] || {{ touch {d}/gave-up; exit 1; }}; sleep 0.01; done; exit 1;; esac"
    );
    let run = |resume: bool| {
        let mut args = vec!["run", "-j", "2", "--retries", "2", "--halt", "soon,fail=1"];
        if resume {
            args.push("--resume");
        }
        ply_cmd()
            .args(args)
            .arg("--joblog")
            .arg(dir.path().join("joblog"))
            .args([job.as_str(), ":::", "x", "y"])
            .output()
            .unwrap()
    };
    let first = run(false);
    assert_eq!(first.status.code(), Some(3), "{}", stderr(&first));
    assert!(!dir.path().join("gave-up").exists(), "y never saw x logged");
    assert_eq!(logged_commands(dir.path()), ["x"]);
    let second = run(true);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("done")).unwrap(),
        "y\n"
    );
    assert_eq!(logged_commands(dir.path()), ["x", "y"]);
}

/// The value (`x` or `y`) of each joblog entry's command, in log order.
fn logged_commands(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("joblog"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(8).unwrap()["case ".len()..][..1].to_string())
        .collect()
}

/// As GNU parallel does, the output of a job cut short is dropped (it runs
/// again, whole, on `--resume`), and with `-k` its turn still passes: the
/// output of a job after it, which ended on its own, is printed.
#[test]
fn a_cut_short_job_prints_nothing_and_keep_order_goes_past_it() {
    let dir = TempDir::new("run-stop-order");
    let d = dir.path().display();
    let job = format!(
        "case {{}} in a) echo start-a; touch {d}/started.a; sleep 30;; \
         b) echo b; touch {d}/done.b;; esac"
    );
    let mut first = ply_cmd()
        .args(["run", "-k", "-j", "2", "--joblog"])
        .arg(dir.path().join("joblog"))
        .args([job.as_str(), ":::", "a", "b"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_handling(&mut first, libc::SIGTERM);
    // b has ended and ply has reaped it: only a's leader is left.
    let pid = first.id();
    let children = || job_children(pid);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(dir.path().join("started.a").exists() && dir.path().join("done.b").exists())
        || children() != 1
    {
        assert!(Instant::now() < deadline, "jobs never got there");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(pid, libc::SIGTERM);
    let status = wait_or_kill(&mut first, Duration::from_secs(60));
    assert_eq!(status.code(), Some(143));
    let mut out = String::new();
    std::io::Read::read_to_string(&mut first.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(out, "b\n", "a's output dropped, b's printed");
    let text = std::fs::read_to_string(dir.path().join("joblog")).unwrap();
    let commands: Vec<&str> = text.lines().skip(1).map(|l| &l[l.len() - 4..]).collect();
    assert_eq!(commands, ["esac"], "one entry (b's): {text}");
    assert!(text.contains("case b in"), "{text}");
    assert!(!text.contains("case a in"), "{text}");
}
