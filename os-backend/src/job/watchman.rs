//! A process that outlives the host to end its jobs if the host dies without
//! ending them itself.
//!
//! A host that is killed by `SIGKILL` (an operator's `kill -9`, the OOM
//! killer, a supervisor's stop timeout) or aborts runs no code on the way
//! out, so its jobs' cgroups would keep running until the next host removes
//! them as stale. The watchman closes that gap: a small `/bin/sh` started
//! beside the host, in its own process group (so a signal to the host's
//! group, such as the terminal's Ctrl-C, does not take it first), reading
//! a socket whose other end only the host holds. A host that ends normally
//! writes `done` and the watchman exits. If the socket reaches end-of-file without
//! `done`, the host is gone: the watchman writes `cgroup.kill` of the
//! host's cgroup directory, which ends every process in every job cgroup
//! under it whatever they did to escape, then removes the directories once
//! empty (for at most ten seconds; the next host removes whatever is left).
//!
//! The socket, not `PR_SET_PDEATHSIG`, tells the watchman: the death signal
//! follows the *thread* that started a process, and the host may start the
//! watchman from a thread that ends long before the host does.
//!
//! (A socket rather than a pipe: `done` is sent with `MSG_NOSIGNAL`, so a
//! watchman that died cannot raise `SIGPIPE` in a host that did not ignore
//! it.) The host's end is close-on-exec, so jobs never hold it; a process the
//! host forks *without* exec (a fork-based pool in the same program) holds
//! it until it exits, and delays the watchman by as long.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The watchman's program: `$1` is the host's cgroup directory.
const SCRIPT: &str = r#"read line
[ "$line" = done ] && exit 0
echo 1 > "$1/cgroup.kill"
i=0
while [ "$i" -lt 100 ]; do
  rmdir "$1"/job-* 2>/dev/null
  rmdir "$1" 2>/dev/null && exit 0
  sleep 0.1
  i=$((i + 1))
done
exit 1
"#;

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
    /// Starts the watchman of `dir` (a host's `ply-<pid>-<n>` cgroup).
    ///
    /// # Errors
    ///
    /// `/bin/sh` could not be started.
    pub(crate) fn start(dir: &Path) -> io::Result<Watchman> {
        let (told, theirs) = UnixStream::pair()?;
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("ply-watchman")
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
