//! `ply_os::job`: whole process trees killed — the process group, a `setsid`
//! escapee, a double-forked daemon — with cgroups and without.
//!
//! The host makes this test process a child subreaper, and a sweep reaps
//! every orphan: the tests run one at a time (a lock) so no test sweeps
//! another's processes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ply_os::job::{Containment, JobHost};

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
fn escaping_job(pids: &Path, then: &str, in_cgroup: bool) -> Command {
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
    let mut command = Command::new("sh");
    command.args(["-c", &script]).stdin(Stdio::null());
    command
}

/// Runs `test` on a host of each containment this machine offers, one
/// host at a time (a run cgroup moves this process in and out).
fn each_host(mut test: impl FnMut(&mut JobHost)) {
    for wanted in [
        Containment::ProcessGroup,
        Containment::Cgroup,
        Containment::RunCgroup,
    ] {
        let before = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let mut host = JobHost::with_containment(wanted).unwrap();
        if host.containment() != wanted {
            eprintln!("{wanted:?} is not available here");
            continue;
        }
        test(&mut host);
        drop(host);
        // A run cgroup is left on drop: this process is back where it was.
        assert_eq!(
            std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            before
        );
    }
}

#[test]
fn finishing_a_job_kills_what_it_left_behind() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    each_host(|host| {
        let file = tmp_file("left");
        let mut job = host
            .spawn(&mut escaping_job(&file, "exit 4", false))
            .unwrap();
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
            .spawn(&mut escaping_job(&file, "sleep 1000", false))
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
            .spawn(&mut escaping_job(&file, "sleep 1000", false))
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
        .spawn(&mut escaping_job(&file, "sleep 1000", true))
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
        .spawn(&mut Command::new("/nonexistent/ply-no-such-program"))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    let dir = host.cgroup_dir().map(Path::to_path_buf);
    let mut job = host.spawn(&mut Command::new("true")).unwrap();
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

#[test]
fn nothing_outlives_a_run_cgroup_host() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut host = JobHost::with_containment(Containment::RunCgroup).unwrap();
    if host.containment() != Containment::RunCgroup {
        return;
    }
    let file = tmp_file("run");
    let mut job = host
        .spawn(&mut escaping_job(&file, "exit 0", false))
        .unwrap();
    let escaped = pids_in(&file, 2);
    assert!(
        job.wait_timeout(Duration::from_secs(30))
            .unwrap()
            .unwrap()
            .success()
    );
    host.release(job);
    // No sweep: dropping the host kills what is left in the run's cgroup.
    drop(host);
    let deadline = Instant::now() + Duration::from_secs(10);
    while escaped.iter().any(|&p| alive(p)) {
        assert!(Instant::now() < deadline, "escapees outlived the host");
        std::thread::sleep(Duration::from_millis(5));
    }
    JobHost::new(false).unwrap().sweep(&|_| false); // reap the zombies
}
