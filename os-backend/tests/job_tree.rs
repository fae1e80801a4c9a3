//! `ply_os::job`: whole process trees killed — the process group, a `setsid`
//! escapee, a double-forked daemon — with cgroups and without.
//!
//! The host makes this test process a child subreaper, and a sweep reaps
//! every orphan: the tests run one at a time (a lock) so no test sweeps
//! another's processes.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ply_os::job::{Containment, Io, JobCommand, JobHost};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Whether `pid` runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Waits (up to 10 s) until the file holds as many pids as `count`.
fn pids_in(file: &Path, count: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids: Vec<u32> = std::fs::read_to_string(file)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.len() >= count {
            return pids;
        }
        assert!(Instant::now() < deadline, "the job never wrote its pids");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (up to 10 s, sweeping) until none of `pids` runs.
fn assert_all_dead(host: &JobHost, pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        host.sweep(&|_| false);
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for &pid in &left {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            panic!("still running: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A temporary file path, removed when dropped (a failing test too).
struct TmpFile(std::path::PathBuf);

impl std::ops::Deref for TmpFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tmp_file(name: &str) -> TmpFile {
    let path = std::env::temp_dir().join(format!("ply-job-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    TmpFile(path)
}

/// A shell that starts a `setsid sleep` and a double-forked daemon, writes
/// their pids, then (with `then`) exits or waits. With `in_cgroup`, it first
/// waits until it has been moved into its job's cgroup.
fn escaping_job(pids: &Path, then: &str, in_cgroup: bool) -> JobCommand {
    let wait = if in_cgroup {
        "until grep -q '^0::.*/ply-' /proc/$$/cgroup; do sleep 0.01; done; "
    } else {
        ""
    };
    let script = format!(
        "{wait}setsid sleep 1000 & echo $! >> {p}; \
         (sh -c 'sleep 1000 & echo $! >> {p}' &) ; \
         {then}",
        p = pids.display()
    );
    let mut command = JobCommand::new("sh");
    command.args(["-c", &script]).stdin(Io::Null);
    command
}

/// Runs `test` on a host of each containment this machine offers: process
/// groups only; a cgroup per job, started in it by `clone3`; and a cgroup
/// per job, started by `posix_spawn` and moved in.
fn each_host(mut test: impl FnMut(&mut JobHost)) {
    for (wanted, posix_spawn) in [
        (Containment::ProcessGroup, false),
        (Containment::Cgroup, false),
        (Containment::Cgroup, true),
    ] {
        let mut host = JobHost::with_containment(wanted).unwrap();
        if host.containment() != wanted {
            eprintln!("{wanted:?} is not available here");
            continue;
        }
        if posix_spawn {
            host.prefer_posix_spawn();
        }
        let dir = host.cgroup_dir().map(Path::to_path_buf);
        test(&mut host);
        drop(host);
        if let Some(dir) = dir {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }
}

#[test]
fn finishing_a_job_kills_what_it_left_behind() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    each_host(|host| {
        let file = tmp_file("left");
        let mut job = host.spawn(&escaping_job(&file, "exit 4", false)).unwrap();
        let escaped = pids_in(&file, 2);
        let status = job.wait_timeout(Duration::from_secs(30)).unwrap().unwrap();
        assert_eq!(status.code(), Some(4));
        host.release(job);
        assert_all_dead(host, &escaped);
    });
}

#[test]
fn killing_a_running_job_kills_its_escapees() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    each_host(|host| {
        let file = tmp_file("kill");
        let mut job = host
            .spawn(&escaping_job(&file, "sleep 1000", false))
            .unwrap();
        let escaped = pids_in(&file, 2);
        assert_eq!(job.wait_timeout(Duration::from_millis(20)).unwrap(), None);
        let leader = job.pid();
        job.signal(ply_os::fork::Signal::KILL).unwrap();
        let status = job.wait_timeout(Duration::from_secs(30)).unwrap().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        host.release(job);
        assert!(!alive(leader));
        assert_all_dead(host, &escaped);
    });
}

#[test]
fn a_dropped_job_is_killed_whole() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    each_host(|host| {
        let file = tmp_file("drop");
        let job = host
            .spawn(&escaping_job(&file, "sleep 1000", false))
            .unwrap();
        let escaped = pids_in(&file, 2);
        let leader = job.pid();
        drop(job);
        assert!(!alive(leader));
        assert_all_dead(host, &escaped);
    });
}

#[test]
fn a_term_signal_reaches_a_setsid_escapee_only_through_a_cgroup() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut host = JobHost::new(true).unwrap();
    if host.containment() != Containment::Cgroup {
        return;
    }
    let file = tmp_file("term");
    let mut job = host
        .spawn(&escaping_job(&file, "sleep 1000", true))
        .unwrap();
    let escaped = pids_in(&file, 2);
    job.signal(ply_os::fork::Signal::TERM).unwrap();
    // Both escapees die of the TERM itself (no KILL needed, no sweep).
    let deadline = Instant::now() + Duration::from_secs(10);
    while escaped.iter().any(|&p| alive(p)) {
        assert!(Instant::now() < deadline, "escapees ignored TERM");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = job.wait_timeout(Duration::from_secs(30)).unwrap();
    host.release(job);
    host.sweep(&|_| false);
}

#[test]
fn a_missing_program_is_not_found_and_cgroups_are_removed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut host = JobHost::new(true).unwrap();
    let err = host
        .spawn(&JobCommand::new("/nonexistent/ply-no-such-program"))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let dir = host.cgroup_dir().map(Path::to_path_buf);
    let mut job = host.spawn(&JobCommand::new("true")).unwrap();
    assert!(
        job.wait_timeout(Duration::from_secs(30))
            .unwrap()
            .unwrap()
            .success()
    );
    host.release(job);
    drop(host);
    if let Some(dir) = dir {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

/// Whether every one of `pids` runs.
fn alive_all(pids: &[u32]) -> bool {
    pids.iter().all(|&p| alive(p))
}

#[test]
fn a_job_ending_spares_the_helpers_another_job_still_needs() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    each_host(|host| {
        // B's helpers: a double-forked one (still in B's process group), and
        // one that double-forked *and* left the group and session — both
        // orphans, re-parented to the host while B runs.
        let helpers = tmp_file("helpers");
        let script = format!(
            "(sh -c 'sleep 1000 & echo $! >> {p}' &); \
             (setsid sh -c 'sleep 1000 & echo $! >> {p}' &); \
             sleep 1000",
            p = helpers.display()
        );
        let mut b = JobCommand::new("sh");
        b.args(["-c", &script]).stdin(Io::Null);
        let mut b = host.spawn(&b).unwrap();
        let b_helpers = pids_in(&helpers, 2);
        // A ends, leaving escapees of its own.
        let left = tmp_file("a-left");
        let mut a = host.spawn(&escaping_job(&left, "exit 0", false)).unwrap();
        let a_left = pids_in(&left, 2);
        assert!(a.wait_timeout(Duration::from_secs(30)).unwrap().is_some());
        host.release(a);
        // Sweeps until A's leftovers are gone: B's helpers live on.
        assert_all_dead(host, &a_left);
        for _ in 0..3 {
            host.sweep(&|_| false);
        }
        assert!(
            alive_all(&b_helpers),
            "B's helpers were killed when A ended"
        );
        assert_eq!(b.wait_timeout(Duration::ZERO).unwrap(), None);
        // B ends: its helpers go with it.
        b.signal(ply_os::fork::Signal::KILL).unwrap();
        assert!(b.wait_timeout(Duration::from_secs(30)).unwrap().is_some());
        host.release(b);
        assert_all_dead(host, &b_helpers);
    });
}

#[test]
fn jobs_start_in_their_cgroup_and_a_cgroup_is_reused_once_empty() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut host = JobHost::new(true).unwrap();
    if host.containment() != Containment::Cgroup {
        return;
    }
    let dir = host.cgroup_dir().unwrap().to_path_buf();
    let file = tmp_file("where");
    // The job records its cgroup as its first act.
    let mut command = JobCommand::new("sh");
    command.args([
        "-c",
        &format!("cat /proc/self/cgroup > {}; exit 0", file.display()),
    ]);
    for _ in 0..3 {
        let mut job = host.spawn(&command).unwrap();
        assert!(job.in_cgroup());
        assert!(
            job.wait_timeout(Duration::from_secs(30))
                .unwrap()
                .unwrap()
                .success()
        );
        host.release(job);
        let text = std::fs::read_to_string(&*file).unwrap();
        let name = dir.file_name().unwrap().to_str().unwrap();
        if host.starts_in_cgroup() {
            assert!(text.contains(&format!("/{name}/job-1")), "{text}");
        }
    }
    // One job at a time: one cgroup, reused.
    let jobs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(jobs.len(), 1);
}

#[test]
fn jobs_after_a_job_whose_leftovers_were_killed_run_normally() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    each_host(|host| {
        for _ in 0..3 {
            let file = tmp_file("killed-then");
            let mut job = host.spawn(&escaping_job(&file, "exit 0", false)).unwrap();
            let escaped = pids_in(&file, 2);
            assert!(
                job.wait_timeout(Duration::from_secs(30))
                    .unwrap()
                    .unwrap()
                    .success()
            );
            if host.containment() == Containment::Cgroup && host.starts_in_cgroup() {
                // Killed by finishing the job (all inside its cgroup, born
                // there): once they are gone, the cgroup is empty when
                // released, and could be handed out again.
                assert_all_dead(host, &escaped);
            }
            host.release(job);
            let mut next = host.spawn(&JobCommand::new("true")).unwrap();
            let status = next.wait_timeout(Duration::from_secs(30)).unwrap().unwrap();
            assert!(status.success(), "the next job ended with {status:?}");
            host.release(next);
            assert_all_dead(host, &escaped);
        }
    });
}

#[test]
fn the_job_gets_its_environment_and_its_streams() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    each_host(|host| {
        let mut command = JobCommand::new("sh");
        command
            .args([
                "-c",
                "read line; echo \"$line $GREETING $PLY_JOB_ID\"; echo oops >&2; exit 5",
            ])
            .env("GREETING", "hello")
            .stdin(Io::Piped)
            .stdout(Io::Piped)
            .stderr(Io::Piped);
        let mut job = host.spawn(&command).unwrap();
        let mut stdin = job.take_stdin().unwrap();
        let mut stdout = job.take_stdout().unwrap();
        let mut stderr = job.take_stderr().unwrap();
        use std::io::{Read, Write};
        stdin.write_all(b"given\n").unwrap();
        drop(stdin);
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        let mut err = String::new();
        stderr.read_to_string(&mut err).unwrap();
        let status = job.wait_timeout(Duration::from_secs(30)).unwrap().unwrap();
        assert_eq!(status.code(), Some(5));
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(&words[..2], ["given", "hello"]);
        assert!(
            words[2].starts_with(&format!("{}-", std::process::id())),
            "{out}"
        );
        assert_eq!(err, "oops\n");
        host.release(job);
        // A program that is not there, and one that cannot run.
        let missing = host.spawn(&JobCommand::new("ply-no-such-program-anywhere"));
        assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);
        use std::os::unix::fs::PermissionsExt;
        let file = tmp_file("not-a-program");
        std::fs::write(&*file, "\x01\x02 not a program").unwrap();
        std::fs::set_permissions(&*file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let denied = host.spawn(&JobCommand::new(&*file)).unwrap_err();
        assert_eq!(
            denied.kind(),
            std::io::ErrorKind::PermissionDenied,
            "{denied:?}"
        );
        std::fs::set_permissions(&*file, std::fs::Permissions::from_mode(0o755)).unwrap();
        let garbage = host.spawn(&JobCommand::new(&*file)).unwrap_err();
        assert_eq!(garbage.raw_os_error(), Some(libc::ENOEXEC), "{garbage:?}");
    });
}
