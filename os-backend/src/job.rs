//! Running external commands as whole process trees: start a command, wait
//! for it with a deadline, and kill *everything* it started — including the
//! processes that tried to leave.
//!
//! Killing a command's pid, or even its process group, is not enough: a
//! command may `setsid` (a new session and group) or double-fork a daemon.
//! GNU parallel, xargs, rust-parallel and rush all lose those. Here, a
//! [`JobHost`] contains each job three ways at once:
//!
//! 1. **A process group per job.** The command is spawned (with
//!    `posix_spawn`, through `std::process::Command`) as the leader of a new
//!    group; signals go to the whole group. The leader is reaped only after
//!    the group is killed, so the group id cannot be reused in between.
//! 2. **A cgroup v2 per job**, where the host may create one (under its own
//!    cgroup: `<own>/ply-<pid>-<n>/job-<k>`). A cgroup keeps every descendant,
//!    whatever it does; `cgroup.kill` ends them all at once. The leader is
//!    moved in right after the spawn returns; a process the leader forked
//!    before that (a busy machine can delay the move) is outside the cgroup,
//!    and is covered by 1 and 3: the sweep kills orphans found outside every
//!    job cgroup.
//! 3. **Child subreaper.** The host's process is made a child subreaper, so
//!    descendants whose parent died are re-parented to it rather than to init;
//!    [`JobHost::sweep`] kills (without cgroups) and reaps them.
//!
//! A cgroup migration per job costs about as much as a third of spawning
//! `/bin/true` on a small VM. [`Containment::RunCgroup`] trades the per-job
//! cgroup for one cgroup for the whole run, which the host's process joins
//! so its jobs are born inside (no migration): nothing can outlive the host,
//! and within the run jobs are told apart by process group and sweep.
//!
//! [`Job::finish`] ends a job whose leader exited: it kills what is left of
//! its group and cgroup, and reaps the leader. Every wait has a deadline: the
//! leader's pidfd is polled with a timeout, cgroups are emptied with a
//! deadline. A job dropped unfinished is killed whole.
//!
//! Without cgroups (no cgroup v2, or not allowed), a process that left its job
//! by a double fork can no longer be told apart from other orphans: the sweep
//! kills every orphan, whichever job it came from.
//!
//! References: `prctl(2)` (`PR_SET_CHILD_SUBREAPER`), `pidfd_open(2)`, the
//! kernel's cgroup v2 documentation (`cgroup.kill`, `cgroup.events`).

mod cgroup;
mod reaper;
mod tree;

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub use tree::Job;

use cgroup::{CgroupRoot, JobCgroup};

/// How a [`JobHost`] contains its jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Containment {
    /// A cgroup v2 per job, plus a process group and the subreaper sweep:
    /// every descendant is known per job. Moving each leader into its cgroup
    /// costs a cgroup migration per job (about 60 µs on the 2-CPU VM).
    Cgroup,
    /// One cgroup v2 for the whole run, which the host's own process joins
    /// (so jobs are born in it: no migration per job) and leaves when the
    /// host is dropped, then kills everything still in it. Per job, a process
    /// group and the subreaper sweep, as [`ProcessGroup`](Self::ProcessGroup).
    RunCgroup,
    /// A process group per job and the subreaper sweep only.
    ProcessGroup,
}

/// Starts jobs and keeps track of what they leave behind. See the module
/// docs. One host per process is the intended use (the subreaper setting is
/// process-wide); dropping it kills and removes any cgroup still populated.
///
/// # Example
///
/// ```
/// use std::process::Command;
/// use std::time::Duration;
/// use ply_os::job::JobHost;
///
/// let mut host = JobHost::new(true)?;
/// // A job that leaves a process behind in a new session.
/// let mut job = host.spawn(Command::new("sh").args(["-c", "setsid sleep 1000 & exit 3"]))?;
/// let status = job.wait_timeout(Duration::from_secs(30))?.expect("sh exits");
/// assert_eq!(status.code(), Some(3));
/// host.release(job);
/// // Whatever was left was killed; orphans re-parented to us are reaped.
/// host.sweep(&|_| false);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct JobHost {
    /// `RunCgroup`: the cgroup this process and its jobs are in.
    run: Option<JobCgroup>,
    cgroups: Option<CgroupRoot>,
    /// Empty job cgroups, ready for the next job.
    free: Vec<JobCgroup>,
    created: u64,
}

impl JobHost {
    /// A host; with `cgroups`, one cgroup per job where this process may
    /// create cgroups (see [`containment`](Self::containment)).
    ///
    /// # Errors
    ///
    /// Becoming a child subreaper failed.
    pub fn new(cgroups: bool) -> io::Result<JobHost> {
        JobHost::with_containment(if cgroups {
            Containment::Cgroup
        } else {
            Containment::ProcessGroup
        })
    }

    /// A host containing jobs as `wanted`, or by process groups where
    /// cgroups cannot be created (see [`containment`](Self::containment)).
    /// [`Containment::RunCgroup`] moves the calling process into the run's
    /// cgroup until the host is dropped.
    ///
    /// # Errors
    ///
    /// Becoming a child subreaper failed.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::job::{Containment, JobHost};
    /// let host = JobHost::with_containment(Containment::RunCgroup)?;
    /// assert!(matches!(host.containment(), Containment::RunCgroup | Containment::ProcessGroup));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_containment(wanted: Containment) -> io::Result<JobHost> {
        reaper::become_subreaper()?;
        let cgroups = match wanted {
            Containment::ProcessGroup => None,
            _ => CgroupRoot::create(),
        };
        let run = match (&cgroups, wanted) {
            (Some(root), Containment::RunCgroup) => root
                .job("run")
                .and_then(|run| run.add(std::process::id()).map(|()| run))
                .ok(),
            _ => None,
        };
        let cgroups = if wanted == Containment::RunCgroup && run.is_none() {
            None // could not join it: process groups only
        } else {
            cgroups
        };
        Ok(JobHost {
            run,
            cgroups,
            free: Vec::new(),
            created: 0,
        })
    }

    /// How jobs are contained.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::job::{Containment, JobHost};
    /// let host = JobHost::new(false)?;
    /// assert_eq!(host.containment(), Containment::ProcessGroup);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn containment(&self) -> Containment {
        match (&self.run, &self.cgroups) {
            (Some(_), _) => Containment::RunCgroup,
            (None, Some(_)) => Containment::Cgroup,
            (None, None) => Containment::ProcessGroup,
        }
    }

    /// The host's cgroup directory, if it has one.
    pub fn cgroup_dir(&self) -> Option<&std::path::Path> {
        self.cgroups.as_ref().map(CgroupRoot::path)
    }

    /// Spawns `command` as a new job: the leader of a new process group, in
    /// a cgroup of its own when the host has cgroups. Set the command's
    /// stdio first (pipes are taken from the [`Job`]).
    ///
    /// # Errors
    ///
    /// The spawn error (`NotFound` for a missing program), or moving the
    /// leader into its cgroup failed (the leader is then killed).
    pub fn spawn(&mut self, command: &mut Command) -> io::Result<Job> {
        command.process_group(0);
        let mut child = command.spawn()?;
        let pidfd = match tree::pidfd_open(child.id()) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let mut job = Job {
            child,
            pidfd,
            cgroup: None,
            status: None,
            emptied: false,
        };
        if let (None, Some(root)) = (&self.run, &self.cgroups) {
            let cgroup = match self.free.pop() {
                Some(cgroup) => cgroup,
                None => {
                    self.created += 1;
                    root.job(&format!("job-{}", self.created))?
                }
            };
            cgroup.add(job.pid())?; // on error the job is dropped: killed, reaped
            job.cgroup = Some(cgroup);
        }
        Ok(job)
    }

    /// Takes back a finished job's cgroup for reuse (or kills what is in
    /// it, if the job was not finished, by dropping the job).
    pub fn release(&mut self, mut job: Job) {
        if job.emptied
            && let Some(cgroup) = job.cgroup.take()
        {
            self.free.push(cgroup);
        }
    }

    /// Ends the orphans re-parented to this process: children for which
    /// `keep(pid)` is false. `keep` must hold for the leaders of jobs not
    /// yet finished and for any child this process started by other means.
    /// With a cgroup per job, a live orphan inside a job's cgroup is left to
    /// it (killed when that job finishes); one outside every job cgroup
    /// (forked before its leader was moved in) is killed. Otherwise every
    /// orphan is killed. Returns how many orphans were seen.
    pub fn sweep(&self, keep: &dyn Fn(u32) -> bool) -> usize {
        let per_job = self.containment() == Containment::Cgroup;
        reaper::sweep(&|pid| u32::try_from(pid).is_ok_and(keep), &|pid| {
            !per_job || self.cgroups.as_ref().is_none_or(|root| !root.contains(pid))
        })
    }
}

impl Drop for JobHost {
    /// With a run cgroup: leaves it, then kills everything still in it.
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            if self
                .cgroups
                .as_ref()
                .is_some_and(|root| root.return_home().is_ok())
            {
                drop(run); // killed until empty, removed
            } else {
                // Still inside: killing the cgroup would kill this process.
                // Kill the others; the directories are left for the next
                // host's stale-cgroup removal, once this process is gone.
                run.signal_others(libc::SIGKILL);
                std::mem::forget(run);
                std::mem::forget(self.cgroups.take());
            }
        }
    }
}
