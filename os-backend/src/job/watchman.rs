//! A process that outlives the host to end its jobs if the host dies without
//! ending them itself.
//!
//! A host that is killed by `SIGKILL` (an operator's `kill -9`, the OOM
//! killer, a supervisor's stop timeout) or aborts runs no code on the way
//! out, so its jobs' cgroups would keep running until the next host removes
//! them as stale. The watchman closes that gap: a small `/bin/sh` started
//! beside the host, in its own process group (so a signal to the host's
//! group, such as the terminal's Ctrl-C, does not take it first), reading a
//! socket whose other end only the host holds. A host that ends normally
//! writes `done` and the watchman exits. If the socket reaches end-of-file
//! without `done`, the host is gone, and so is every process that could
//! still create a directory there: the watchman writes `cgroup.kill` of
//! the host's cgroup directory (listing and killing its members where the
//! kernel has no `cgroup.kill`), which ends every process in every job
//! cgroup under it whatever they did to escape, then removes the
//! directories once empty.
//!
//! Its one question is whether the host's directory still exists, never
//! which step it took last: the directory may be removed under it by the
//! host's own shutdown (killed half-way), or by another host that found it
//! stale and removed it first. It exits 0 once the directory is gone, 1 if
//! it is still there after about 30 seconds (a process that does not die:
//! the next host's stale sweep gets another try).
//!
//! The host starts it *before* it creates the directory, so no moment
//! exists at which the directory exists unwatched; a watchman whose host
//! died before creating it finds nothing and exits.
//!
//! Signals: it ignores `SIGHUP`, `SIGINT`, `SIGQUIT`, `SIGTERM` and
//! `SIGPIPE`. When the host dies, the watchman's process group is orphaned;
//! if the watchman was stopped then, the kernel sends it `SIGHUP` and
//! `SIGCONT`, and the hangup must not kill it. A watchman that dies anyway
//! while the host lives (`SIGKILL`) is noticed at the next job start and
//! replaced ([`Watchman::alive`]).
//!
//! The socket, not `PR_SET_PDEATHSIG`, tells the watchman: the death signal
//! follows the *thread* that started a process, and the host may start the
//! watchman from a thread that ends long before the host does. (A socket
//! rather than a pipe: `done` is sent with `MSG_NOSIGNAL`, so a watchman
//! that died cannot raise `SIGPIPE` in a host that did not ignore it.) The
//! host's end is close-on-exec, so jobs never hold it; a process the host
//! forks *without* exec (a fork-based pool in the same program) holds it
//! until it exits, and delays the watchman by as long.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The watchman's program: `$1` is the host's cgroup directory.
const SCRIPT: &str = r#"trap '' HUP INT QUIT TERM PIPE
read -r line
[ "$line" = done ] && exit 0
i=0
while [ -d "$1" ]; do
  { [ -e "$1/cgroup.kill" ] && echo 1 > "$1/cgroup.kill"; } 2>/dev/null ||
    kill -9 $(cat "$1/cgroup.procs" "$1"/*/cgroup.procs 2>/dev/null) 2>/dev/null
  rmdir "$1"/*/ 2>/dev/null
  rmdir "$1" 2>/dev/null && exit 0
  [ "$i" -ge 300 ] && exit 1
  i=$((i + 1))
  sleep 0.1 2>/dev/null || sleep 1
done
exit 0
"#;

/// The name the watchman runs under (its `$0`), for `ps` and tests.
pub(crate) const NAME: &str = "ply-watchman";

/// How long a host that ends normally waits for its watchman to exit.
const EXIT_PATIENCE: Duration = Duration::from_secs(2);

/// The running watchman of one host cgroup directory.
#[derive(Debug)]
pub(crate) struct Watchman {
    child: Child,
    /// The host's end of the socket the watchman reads.
    told: UnixStream,
}

impl Watchman {
    /// Starts the watchman of `dir` (a host's `ply-<pid>-<n>` cgroup, which
    /// need not exist yet).
    ///
    /// # Errors
    ///
    /// `/bin/sh` could not be started.
    pub(crate) fn start(dir: &Path) -> io::Result<Watchman> {
        let (told, theirs) = UnixStream::pair()?;
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg(NAME)
            .arg(dir)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Watchman { child, told })
    }

    /// The watchman's process id: a child of the host that is none of its
    /// jobs, which a sweep of orphans must leave alone.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the watchman still reads its socket. The watchman never
    /// writes, so the host's end turns readable (end-of-file) exactly when
    /// the watchman's end closed: it died.
    pub(crate) fn alive(&self) -> bool {
        let mut fds = [rustix::event::PollFd::new(
            &self.told,
            rustix::event::PollFlags::IN,
        )];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(0))
    }

    /// Closes the host's end without `done`, as the host's death would, and
    /// waits (at most `limit`) for the watchman to exit.
    #[cfg(test)]
    fn abandon(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        // The reader sees end-of-file, as if the descriptor were closed.
        rustix::net::shutdown(&self.told, rustix::net::Shutdown::Write).ok()?;
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return None, // Drop kills and reaps it
            }
        }
    }
}

impl Drop for Watchman {
    /// Tells the watchman the host ended its jobs, and reaps it: within
    /// [`EXIT_PATIENCE`], else (a stopped watchman) it is killed first.
    fn drop(&mut self) {
        // A watchman that died cannot read this (EPIPE): nothing to tell.
        // Five bytes fit any socket buffer, so this send does not block.
        let _ = rustix::net::send(&self.told, b"done\n", rustix::net::SendFlags::NOSIGNAL);
        let deadline = Instant::now() + EXIT_PATIENCE;
        let mut pause = Duration::from_micros(200);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => break,
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
        }
        // SIGKILL ends even a stopped process, so this wait is short.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patience for a watchman on a loaded machine; a correct one takes
    /// milliseconds.
    const LIMIT: Duration = Duration::from_secs(60);

    fn signal(pid: u32, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // unreaped child's.
        unsafe { libc::kill(pid as libc::pid_t, sig) };
    }

    /// A directory that is gone by the time the host dies (its own
    /// shutdown removed it, or another host swept it as stale) leaves the
    /// watchman nothing to do: it exits 0 at once rather than retrying.
    #[test]
    fn a_directory_already_removed_ends_the_watchman_with_success() {
        let dir = std::env::temp_dir().join(format!("ply-watchman-gone-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let watchman = Watchman::start(&dir).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        let status = watchman.abandon(LIMIT).expect("the watchman exits");
        assert_eq!(status.code(), Some(0));
    }

    /// A stopped watchman of a dead host gets `SIGHUP` then `SIGCONT` from
    /// the kernel (an orphaned process group); the hangup must not end it
    /// before it did its work (here: removing the directory).
    #[test]
    fn hangup_and_termination_signals_do_not_end_the_watchman() {
        let dir = std::env::temp_dir().join(format!("ply-watchman-hup-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let watchman = Watchman::start(&dir).unwrap();
        // Until its `trap` ran, a HUP would kill it: wait until the shell
        // ignores SIGHUP (`SigIgn` in its status).
        let pid = watchman.pid();
        let deadline = Instant::now() + LIMIT;
        while !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("SigIgn:") && ignores(l, libc::SIGHUP))
        {
            assert!(
                Instant::now() < deadline,
                "the watchman never set its traps"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGQUIT] {
            signal(pid, sig);
        }
        assert!(watchman.alive());
        let status = watchman.abandon(LIMIT).expect("the watchman exits");
        assert_eq!(status.code(), Some(0));
        assert!(!dir.exists(), "the watchman removes the (empty) directory");
    }

    fn ignores(line: &str, sig: i32) -> bool {
        line.split_whitespace()
            .nth(1)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
    }

    /// `done` ends the watchman without touching the directory.
    #[test]
    fn done_leaves_the_directory_alone() {
        let dir = std::env::temp_dir().join(format!("ply-watchman-done-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let watchman = Watchman::start(&dir).unwrap();
        drop(watchman); // sends done, reaps
        assert!(dir.exists());
        std::fs::remove_dir(&dir).unwrap();
    }

    /// A dead watchman is seen as dead (the host then starts another).
    #[test]
    fn a_killed_watchman_is_seen_dead() {
        let dir = std::env::temp_dir().join(format!("ply-watchman-dead-{}", std::process::id()));
        let watchman = Watchman::start(&dir).unwrap();
        assert!(watchman.alive());
        signal(watchman.pid(), libc::SIGKILL);
        let deadline = Instant::now() + LIMIT;
        while watchman.alive() {
            assert!(Instant::now() < deadline, "a killed watchman still alive");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
