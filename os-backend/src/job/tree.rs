//! [`Job`]: one started command and everything it starts.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cgroup::JobCgroup;
use crate::fork::Signal;

/// How long [`Job::finish`] waits for the leader to exit.
pub(super) const LEFTOVER_LIMIT: Duration = Duration::from_secs(2);

/// A job not yet released: its leader (and process group id), and its
/// serial number, which is in its environment (`PLY_JOB_ID=<host
/// pid>-<serial>`). The host's sweep leaves alone the orphans it can tell
/// belong to one of these.
#[derive(Debug)]
pub(super) struct Live {
    pub pid: u32,
    pub serial: u64,
}

/// The jobs of a host not yet released, shared with each job so that a
/// job dropped unreleased takes itself off.
pub(super) type LiveJobs = Arc<Mutex<Vec<Live>>>;

/// A running command: its leader process (in a process group of its own,
/// with the leader's pid as the group id), a pidfd that becomes readable when
/// the leader exits, and — where the host has cgroups — the job's cgroup.
///
/// Dropping a job that was not [finished](Job::finish) kills its whole tree
/// and reaps the leader.
///
/// # Example
///
/// ```
/// use ply_os::job::{JobCommand, JobHost};
///
/// let mut host = JobHost::new(true)?;
/// let mut job = host.spawn(&JobCommand::new("true"))?;
/// let status = job.wait_timeout(std::time::Duration::from_secs(30))?;
/// assert!(status.is_some_and(|s| s.success()));
/// host.release(job);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a job is killed when dropped"]
pub struct Job {
    pub(super) pid: u32,
    pub(super) pidfd: OwnedFd,
    pub(super) stdio: [Option<OwnedFd>; 3],
    pub(super) cgroup: Option<JobCgroup>,
    pub(super) status: Option<ExitStatus>,
    pub(super) live: LiveJobs,
    pub(super) serial: u64,
}

/// Opens a pidfd for `pid` (Linux 5.3).
pub(super) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits up to `timeout` for `fd` to be readable; whether it is.
fn poll_readable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, and the count says one.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 {
            return Ok(true);
        }
        if rc == 0 {
            if left.is_zero() {
                return Ok(false);
            }
            continue;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

impl Job {
    /// The leader's process id (also the job's process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A pidfd of the leader: readable (`POLLIN`) once the leader has exited,
    /// for an event loop to wait on beside the job's output pipes.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Whether the job runs in a cgroup of its own.
    pub fn in_cgroup(&self) -> bool {
        self.cgroup.is_some()
    }

    /// Takes the host's end of the job's stdin pipe, if it was piped.
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdio[0].take().map(ChildStdin::from)
    }

    /// Takes the host's end of the job's stdout pipe, if it was piped.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdio[1].take().map(ChildStdout::from)
    }

    /// Takes the host's end of the job's stderr pipe, if it was piped.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.stdio[2].take().map(ChildStderr::from)
    }

    /// Sends `sig` to the whole tree: the process group and, with a cgroup,
    /// every process in it (those that left the group included). Before the
    /// leader is reaped its pid cannot be reused, so neither can the group id.
    ///
    /// # Errors
    ///
    /// Reading the cgroup's member list failed.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        let sig = sig.as_raw();
        if self.status.is_none() {
            // SAFETY: kill has no memory-safety preconditions. The group id is
            // the pid of our unreaped leader, which holds it.
            unsafe { libc::kill(-(self.pid as libc::pid_t), sig) };
        }
        match &self.cgroup {
            Some(cgroup) => cgroup.signal(sig),
            None => Ok(()),
        }
    }

    /// Whether the leader has exited (without reaping it).
    pub fn leader_exited(&self) -> io::Result<bool> {
        if self.status.is_some() {
            return Ok(true);
        }
        poll_readable(self.pidfd.as_fd(), Duration::ZERO)
    }

    /// Waits up to `timeout` for the leader to exit, then [finishes](Self::finish)
    /// the job; `None` if the leader still runs.
    ///
    /// # Errors
    ///
    /// As [`finish`](Self::finish).
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() && !poll_readable(self.pidfd.as_fd(), timeout)? {
            return Ok(None);
        }
        self.finish().map(Some)
    }

    /// Ends the job once its leader has exited (or after it was killed):
    /// SIGKILLs every process it left behind — the rest of its process group
    /// and, with a cgroup, everything in the cgroup — then reaps the leader
    /// and returns its status. It does not wait for the leftovers to die:
    /// their cgroup is reused only once it is empty (see
    /// [`JobHost::release`](super::JobHost::release)). Without a cgroup,
    /// leftovers that left the group are re-parented to the host, a
    /// subreaper; [`JobHost::sweep`](super::JobHost::sweep) ends them once
    /// the job is released.
    ///
    /// Call it when [`pidfd`](Self::pidfd) is readable, or after a SIGKILL:
    /// it waits at most two seconds for the leader to exit.
    ///
    /// # Errors
    ///
    /// The leader did not exit within two seconds (`TimedOut`; the job is
    /// left as it was), or reaping failed.
    pub fn finish(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        if !poll_readable(self.pidfd.as_fd(), LEFTOVER_LIMIT)? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("job {} has not exited", self.pid),
            ));
        }
        // Leftovers in the group, while the zombie leader still holds the id.
        // SAFETY: as in `signal`.
        unsafe { libc::kill(-(self.pid as libc::pid_t), libc::SIGKILL) };
        let mut raw = 0;
        // SAFETY: `raw` is a valid out-pointer; the leader is our unreaped
        // child (its pidfd is readable: it has exited), which only this job
        // reaps (the host's sweep leaves live jobs' leaders alone).
        if unsafe { libc::waitpid(self.pid as libc::pid_t, &mut raw, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let status = ExitStatus::from_raw(raw);
        self.status = Some(status);
        if let Some(cgroup) = &self.cgroup
            && cgroup.populated()?
        {
            cgroup.signal(libc::SIGKILL)?;
        }
        Ok(status)
    }

    /// Takes the job off its host's list of live jobs.
    pub(super) fn unlist(&self) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|l| l.serial != self.serial);
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.signal(Signal::KILL);
            let _ = self.finish();
        }
        // A cgroup still here (the job was not released) is killed until
        // empty and removed by its own drop.
        self.unlist();
    }
}
