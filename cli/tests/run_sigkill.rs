//! `ply run` killed by SIGKILL: it runs no code on the way out, so its
//! watchman (a process outside ply's process group that sees ply's end of
//! a socket close) kills every job cgroup and removes the directories.
//!
//! The fault is injected at many points of ply's life (just started,
//! creating its cgroups, starting jobs, running them, its own cleanup) and
//! in the watchman's (stopped, killed and replaced, beaten to the cleanup
//! by another ply). After each, every process the run started — jobs,
//! `setsid` and double-fork escapees, a job that keeps forking, the
//! watchman itself — ends, and no cgroup is left. Every wait polls for its
//! condition with a generous deadline; none relies on a delay.
//!
//! Without cgroup v2 delegation nothing can end the jobs of a SIGKILLed ply
//! (the README says so): the tests that need cgroups say they were skipped.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Patience for a condition on a loaded machine; met in milliseconds when
/// all is well.
const PATIENCE: Duration = Duration::from_secs(30);

/// Job 1 ends at once and job 2 when `$DIR/go` exists (sweeps run as they
/// end, which must spare the watchman); job 3 leaves a `setsid` and a
/// double-forked `sleep 1000` behind a foreground one; job 4 keeps forking
/// `setsid sleep 1000`s until killed.
fn job(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        "case {{}} in \
           1) exit 0;; \
           2) until [ -e {d}/go ]; do sleep 0.05; done;; \
           3) setsid sleep 1000 & (sh -c 'sleep 1000 &' &); sleep 1000;; \
           4) while :; do setsid sleep 1000 & sleep 0.01; done;; \
         esac"
    )
}

/// A cgroup of the test's own, where the plys of one test run: their
/// `ply-<pid>-<n>` directories are created in it, so no ply of another
/// test (or another user of this machine) removes them as stale — which
/// would end a dead ply's jobs and hide a watchman that did not. Removed
/// when dropped (once every process in it ended).
struct Arena(std::path::PathBuf);

impl Arena {
    fn new(name: &str) -> Arena {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let own = own_cgroup_dir().expect("cgroup v2");
        let dir = own.join(format!("ply-test-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).expect("create the test's cgroup");
        Arena(dir)
    }

    /// `ply args`, marked, leading its own process group, started in
    /// this cgroup (by a shell that moves itself in, then execs ply).
    fn spawn(&self, args: &[&str], mark: &str, tmp: &TempDir) -> Child {
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
            .arg(&self.0)
            .arg(env!("CARGO_BIN_EXE_ply"))
            .args(args)
            .env("PLY_TEST_MARK", mark)
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn ply")
    }

    /// A marked ply running [`job`] for inputs 1–4, two at a time.
    fn spawn_ply(&self, mark: &str, tmp: &TempDir) -> Child {
        let job = job(tmp.path());
        self.spawn(
            &["run", "-j", "2", &job, ":::", "1", "2", "3", "4"],
            mark,
            tmp,
        )
    }

    /// The cgroup directories (`ply-<pid>-<n>`) ply process `pid` left.
    fn left_by(&self, pid: u32) -> Vec<String> {
        cgroups_left_in(&self.0, pid)
    }

    /// Kills everything in the cgroup and removes every directory in it
    /// (deepest first), within [`PATIENCE`].
    fn clear(&self) {
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        let deadline = Instant::now() + PATIENCE;
        while remove_below(&self.0).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Removes the cgroup directories below `dir`, deepest first.
fn remove_below(dir: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_below(&entry.path())?;
            std::fs::remove_dir(entry.path())?;
        }
    }
    Ok(())
}

impl Drop for Arena {
    fn drop(&mut self) {
        self.clear();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Whether `pid` runs `sleep 1000` (the jobs' long sleeps, not job 2's
/// short ones).
fn is_long_sleep(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == b"sleep\x001000\x00")
}

/// The live watchmen among the marked processes.
fn watchmen(marker_var: &str) -> Vec<u32> {
    processes_with(marker_var)
        .into_iter()
        .filter(|&p| is_watchman(p))
        .collect()
}

/// Waits for `ready`, at most [`PATIENCE`]; fails (after `cleanup`) naming
/// `what`.
fn wait_for(what: &str, ready: &mut dyn FnMut() -> bool, cleanup: &mut dyn FnMut()) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        if Instant::now() >= deadline {
            cleanup();
            panic!("waited {PATIENCE:?} for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills and removes what the test's plys left, so that a failing test
/// leaks nothing; the assertion's message tells what was left.
fn clean_up(marker_var: &str, arena: &Arena) {
    for p in processes_with(marker_var) {
        signal(p, libc::SIGKILL);
    }
    arena.clear();
}

/// After ply `child` was SIGKILLed: it ends by SIGKILL, then every marked
/// process ends and every cgroup it created goes.
fn assert_everything_ends(child: &mut Child, marker_var: &str, arena: &Arena, case: &str) {
    let pid = child.id();
    let status = wait_or_kill(child, PATIENCE);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "{case}: {status:?}"
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = processes_with(marker_var);
        let cgroups = arena.left_by(pid);
        if left.is_empty() && cgroups.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            let described: Vec<String> = left
                .iter()
                .map(|p| {
                    let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    format!("{p}: {}", String::from_utf8_lossy(&cmd).replace('\0', " "))
                })
                .collect();
            clean_up(marker_var, arena);
            panic!("{case}: left after {PATIENCE:?}: {described:?}, cgroups {cgroups:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `ply run` contains its jobs in cgroups here (a job sees itself
/// in a `ply-…` cgroup); prints why the test is skipped otherwise.
fn has_cgroups() -> bool {
    let out = ply(&["run", "grep '^0::' /proc/self/cgroup", ":::", "1"]);
    let found = stdout(&out).contains("/ply-");
    if !found {
        eprintln!("no cgroup v2 delegation here: the watchman is not tested");
    }
    found
}

/// SIGKILL at spread-out moments from ply's start on: before its watchman
/// exists, while it creates its cgroups, while it starts jobs (and job 4
/// forks), while they run, and — as job 2 ends at once here — around its
/// sweeps. Whatever the moment, nothing is left.
#[test]
fn sigkill_at_any_moment_of_ply_leaves_nothing() {
    if !has_cgroups() {
        return;
    }
    let arena = Arena::new("any");
    for delay_ms in [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233] {
        let (marker_var, mark) = marker("sigkill-any");
        let tmp = TempDir::new("run-sigkill-any");
        std::fs::write(tmp.path().join("go"), "").unwrap();
        let mut child = arena.spawn_ply(&mark, &tmp);
        // Not a race to win: every delay must end the same way; the spread
        // only lands the kill at different points.
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(child.id(), libc::SIGKILL);
        assert_everything_ends(
            &mut child,
            &marker_var,
            &arena,
            &format!("after {delay_ms} ms"),
        );
    }
}

/// What happens between the jobs running and ply's SIGKILL.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Nothing: ply alone is killed.
    PlyOnly,
    /// `kill -9` of ply's whole process group (not the watchman's).
    ProcessGroup,
    /// The watchman is stopped; after ply's death it gets SIGHUP and
    /// SIGCONT, as the kernel sends a stopped, orphaned process group.
    WatchmanStopped,
    /// The watchman is SIGKILLed while ply runs; the next job start gives
    /// ply a new one.
    WatchmanKilled,
    /// The watchman is stopped while ply dies, and another ply removes the
    /// dead ply's cgroups first (as every ply does with a dead ply's); the
    /// watchman, continued, finds nothing to do.
    SweptByAnotherPly,
}

#[test]
fn sigkill_of_ply_ends_every_job_tree_whatever_its_watchman_went_through() {
    if !has_cgroups() {
        return;
    }
    for fault in [
        Fault::PlyOnly,
        Fault::ProcessGroup,
        Fault::WatchmanStopped,
        Fault::WatchmanKilled,
        Fault::SweptByAnotherPly,
    ] {
        let arena = Arena::new("fault");
        let (marker_var, mark) = marker("sigkill");
        let tmp = TempDir::new("run-sigkill");
        let go = tmp.path().join("go");
        if !matches!(fault, Fault::WatchmanKilled) {
            std::fs::write(&go, "").unwrap();
        }
        let mut child = arena.spawn_ply(&mark, &tmp);
        let pid = child.id();
        let mut cleanup = || {
            signal(pid, libc::SIGKILL);
            clean_up(&marker_var, &arena);
        };
        let case = format!("{fault:?}");
        wait_for(
            "a watchman",
            &mut || !watchmen(&marker_var).is_empty(),
            &mut cleanup,
        );
        if let Fault::WatchmanKilled = fault {
            // Jobs 1 and 2 run (2 waits for `go`): kill the watchman, then
            // let job 2 end so that job 4 starts, and ply notices.
            let first = watchmen(&marker_var)[0];
            signal(first, libc::SIGKILL);
            wait_for(
                "the first watchman's end",
                &mut || !watchmen(&marker_var).contains(&first),
                &mut cleanup,
            );
            std::fs::write(&go, "").unwrap();
            wait_for(
                "a second watchman",
                &mut || watchmen(&marker_var).iter().any(|&w| w != first),
                &mut cleanup,
            );
        }
        // Jobs 3 and 4 run: job 3's three long sleeps, at least three of
        // job 4's, which keeps forking through the kill.
        wait_for(
            "jobs 3 and 4",
            &mut || {
                processes_with(&marker_var)
                    .into_iter()
                    .filter(|&p| is_long_sleep(p))
                    .count()
                    >= 6
            },
            &mut cleanup,
        );
        let watchman = match watchmen(&marker_var)[..] {
            [one] => one,
            ref other => {
                cleanup();
                panic!("{case}: not one watchman but {other:?}");
            }
        };
        match fault {
            Fault::ProcessGroup => {
                // SAFETY: kill has no memory-safety preconditions; ply
                // leads its own process group (`spawn_ply`).
                unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
            }
            Fault::WatchmanStopped | Fault::SweptByAnotherPly => {
                signal(watchman, libc::SIGSTOP);
                signal(pid, libc::SIGKILL);
            }
            Fault::PlyOnly | Fault::WatchmanKilled => signal(pid, libc::SIGKILL),
        }
        if let Fault::WatchmanStopped | Fault::SweptByAnotherPly = fault {
            let _ = wait_or_kill(&mut child, PATIENCE);
            if let Fault::SweptByAnotherPly = fault {
                let mut other = arena.spawn(&["run", "true", ":::", "1"], "other", &tmp);
                let status = wait_or_kill(&mut other, PATIENCE);
                assert!(status.success(), "{case}: the other ply: {status:?}");
                // Its sweep of dead plys' cgroups waits a bounded time for
                // them to empty; on a loaded machine it may leave them to
                // the watchman. Both ways must end with nothing left.
                if !arena.left_by(pid).is_empty() {
                    eprintln!("{case}: the other ply left the cgroups to the watchman");
                }
            }
            signal(watchman, libc::SIGHUP);
            signal(watchman, libc::SIGCONT);
        }
        assert_everything_ends(&mut child, &marker_var, &arena, &case);
    }
}
