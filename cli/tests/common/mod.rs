//! Helpers shared by the `ply` binary's tests: running it, signalling it once
//! its handlers are installed, watchdogs, temporary directories that remove
//! themselves, and finding processes a run left behind.
#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The `ply` binary under test.
pub fn ply_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ply"))
}

/// Runs `ply args` to completion.
pub fn ply(args: &[&str]) -> Output {
    ply_cmd().args(args).output().expect("run ply")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Misuse: exit `code` with exactly one line on stderr mentioning `expected`,
/// and nothing on stdout.
pub fn assert_misuse_code(args: &[&str], code: i32, expected: &str) {
    let out = ply(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "args {args:?}: {err}");
    assert!(
        out.stdout.is_empty(),
        "args {args:?}: stdout {:?}",
        stdout(&out)
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line, got:\n{err}"
    );
    assert!(err.starts_with("error:"), "{args:?}: {err}");
    assert!(
        err.contains(expected),
        "{args:?}: {err:?} should mention {expected:?}"
    );
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ply-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Entries directly inside.
    pub fn entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The signal mask of handled signals (`SigCgt`) of a live process.
fn caught_signals(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

/// Waits (up to a minute) until `child` handles `sig`, so a signal sent now is
/// ply's to handle rather than the default action's.
pub fn wait_until_handling(child: &mut Child, sig: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while caught_signals(child.id()) & (1 << (sig - 1)) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "ply ended early");
        assert!(Instant::now() < deadline, "ply never installed its handler");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Waits for `child` with a watchdog: kills it and fails after `limit`.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ply did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Live (not zombie) processes whose environment holds `marker` (a
/// `NAME=value` the test set for ply, inherited by everything it started).
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if zombie {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|v| v == marker.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Waits (up to 30 s: killed processes take a moment to go, more on a
/// loaded machine) until no live process carries `marker`; fails naming
/// those left (and kills them).
pub fn assert_none_left(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for &pid in &left {
                signal(pid, libc::SIGKILL);
            }
            panic!("processes left behind: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A marker unique to this test: `PLY_TEST_MARK=<name>-<pid>-<n>`.
pub fn marker(name: &str) -> (String, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let value = format!("{name}-{}-{n}", std::process::id());
    (format!("PLY_TEST_MARK={value}"), value)
}

/// Spawns `ply args` with the marker in its environment and TMPDIR set,
/// stdout discarded, stderr piped.
pub fn spawn_marked(args: &[&str], mark: &str, tmp: &Path) -> Child {
    ply_cmd()
        .args(args)
        .env("PLY_TEST_MARK", mark)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ply")
}

/// Reads what is left of the child's stderr.
pub fn drain_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

/// How many children ply process `pid` has besides its watchman (the
/// `/bin/sh` that ends the jobs' cgroups should ply die by SIGKILL): the
/// leaders of its running jobs.
pub fn job_children(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|child| child.parse().ok())
        .filter(|&child| !is_watchman(child))
        .count()
}

/// Whether `pid` is a ply watchman (`sh -c … ply-watchman <dir>`).
pub fn is_watchman(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == b"ply-watchman"))
}

/// The cgroup v2 directory this test process is in (and so a `ply` it
/// starts): the `cgroup2` mount point joined with the `0::` path.
pub fn own_cgroup_dir() -> Option<std::path::PathBuf> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = membership.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mounts.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4))?
    })?;
    Some(std::path::Path::new(mount).join(path.trim_start_matches('/')))
}

/// The cgroup directories (`ply-<pid>-<n>`) ply process `pid` left in this
/// test process's own cgroup.
pub fn cgroups_left_by(pid: u32) -> Vec<String> {
    own_cgroup_dir().map_or_else(Vec::new, |dir| cgroups_left_in(&dir, pid))
}

/// The cgroup directories (`ply-<pid>-<n>`) ply process `pid` left in `dir`.
pub fn cgroups_left_in(dir: &std::path::Path, pid: u32) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("ply-{pid}-")))
                .collect()
        })
        .unwrap_or_default()
}
