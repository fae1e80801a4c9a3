//! Running external commands as whole process trees: start a command, wait
//! for it with a deadline, and kill *everything* it started — including the
//! processes that tried to leave — and nothing that belongs to another job.
//!
//! Killing a command's pid, or even its process group, is not enough: a
//! command may `setsid` (a new session and group) or double-fork a daemon.
//! GNU parallel, xargs, rust-parallel and rush all lose those. Here, a
//! [`JobHost`] contains each job three ways at once:
//!
//! 1. **A process group per job.** The leader starts in a new group;
//!    signals go to the whole group. The leader is reaped only after the
//!    group is killed, so the group id cannot be reused in between.
//! 2. **A cgroup v2 per job**, where the host may create one (under its own
//!    cgroup: `<own>/ply-<pid>-<n>/job-<k>`). A cgroup keeps every
//!    descendant, whatever it does; `cgroup.kill` ends them all at once. The
//!    leader is started *inside* its cgroup (`clone3` with
//!    `CLONE_INTO_CGROUP`, see `spawn`), so it costs what `posix_spawn`
//!    costs, and there is no moment at which the job runs outside it. A
//!    job's cgroup is reused for the next job when the job left nothing
//!    behind (`cgroup.events` says it is empty), so a run creates about as
//!    many as it runs jobs at once (one per slot of `-j N`). When a job
//!    leaves processes behind, they are killed (`cgroup.kill`) and the
//!    cgroup is removed once empty, a new one taking its place (a cgroup
//!    that was killed is not reused: see `cgroup::JobCgroup::was_killed`).
//!    So a job's leftovers are exactly its own, and killing one job (a
//!    timeout, a halt) kills exactly that job's tree.
//! 3. **Child subreaper.** The host's process is made a child subreaper, so
//!    descendants whose parent died are re-parented to it rather than to
//!    init; [`JobHost::sweep`] reaps them and kills those that belong to no
//!    live job.
//!
//! A host that dies without cleaning up (`SIGKILL`, the OOM killer) runs
//! no code on the way out. With cgroups, a *watchman* process started
//! beside it, before its cgroup directory exists, notices (the socket it
//! reads closes) and kills every job cgroup at once (see `watchman` for
//! what it survives); without cgroups, the jobs of a killed host keep
//! running (their process groups are known only to the host). On the
//! `posix_spawn` path below, a leader started but not yet moved into its
//! cgroup when the host is killed escapes the watchman too.
//!
//! Where `clone3` is refused (a kernel before 5.7, a seccomp filter, an
//! architecture other than x86-64), the leader is started with
//! `posix_spawn` and moved into its cgroup (a cgroup migration, about 60 µs
//! on a small VM); a process it forks before the move lands outside the
//! cgroup, where only 1 and 3 contain it.
//!
//! **Without cgroups** (no cgroup v2, no permission, or
//! [`Containment::ProcessGroup`]), the sweep must tell which job an orphan
//! came from. It keeps an orphan whose process group is a live job's, or
//! whose environment (as of its last `execve`, from `/proc/<pid>/environ`)
//! holds a live job's `PLY_JOB_ID`; it kills the others. The limits, exactly:
//! an orphan that left its job's process group *and* dropped or changed
//! `PLY_JOB_ID` (`env -i`, a setuid program whose environment cannot be read)
//! is killed by the next sweep even while its job runs; a descendant that
//! left the group and whose parent still lives is not the host's child, so
//! no sweep sees it until that parent dies; and signals to a job (a timeout's
//! TERM) reach its process group only, not a member that left it.
//!
//! [`Job::finish`] ends a job whose leader exited: it kills what is left of
//! its group and cgroup, and reaps the leader, without waiting for the
//! leftovers to die. Every wait has a deadline: the leader's pidfd is polled
//! with a timeout, cgroups are emptied with a deadline. A job dropped
//! unfinished is killed whole.
//!
//! References: `clone(2)` (`CLONE_INTO_CGROUP`), `prctl(2)`
//! (`PR_SET_CHILD_SUBREAPER`), `pidfd_open(2)`, the kernel's cgroup v2
//! documentation (`cgroup.kill`, `cgroup.events`).

mod cgroup;
mod command;
mod reaper;
mod setup;
mod spawn;
mod tree;
mod watchman;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicU64, Ordering};

pub use command::{Io, JobCommand};
pub use setup::SetupError;
pub use tree::Job;

use cgroup::{CgroupRoot, JobCgroup};
use tree::{Live, LiveJobs};

/// The environment variable that carries a job's token.
const JOB_ID: &str = "PLY_JOB_ID";

/// How a [`JobHost`] contains its jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Containment {
    /// A cgroup v2 per job (reused once empty), plus a process group and
    /// the subreaper sweep: every descendant is known per job.
    Cgroup,
    /// A process group per job and the subreaper sweep only (see the module
    /// docs for what this cannot see).
    ProcessGroup,
}

/// Starts jobs and keeps track of what they leave behind. See the module
/// docs. One host per process is the intended use (the subreaper setting is
/// process-wide); dropping it kills and removes any cgroup still populated.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::job::{JobCommand, JobHost};
///
/// let mut host = JobHost::new(true)?;
/// // A job that leaves a process behind in a new session.
/// let mut sh = JobCommand::new("sh");
/// sh.args(["-c", "setsid sleep 1000 & exit 3"]);
/// let mut job = host.spawn(&sh)?;
/// let status = job.wait_timeout(Duration::from_secs(30))?.expect("sh exits");
/// assert_eq!(status.code(), Some(3));
/// host.release(job);
/// // Whatever was left was killed; orphans re-parented to us are reaped.
/// host.sweep(&|_| false);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct JobHost {
    // Fields drop in this order: the job cgroups (killed until empty,
    // removed) before the directory that holds them.
    /// Empty job cgroups, ready for the next job.
    free: Vec<JobCgroup>,
    /// Cgroups of released jobs whose leftovers were killed (`cgroup.kill`)
    /// but may not be gone yet: removed once empty, never reused (see
    /// `JobCgroup::was_killed`).
    retiring: Vec<JobCgroup>,
    cgroups: Option<CgroupRoot>,
    created: u64,
    /// The child stack of `clone3` starts; `None` once `clone3` was refused.
    stack: Option<spawn::ChildStack>,
    null: OwnedFd,
    /// The environment jobs inherit, as `KEY=value` strings.
    environment: Vec<CString>,
    live: LiveJobs,
}

/// Serial numbers of jobs, unique in this process.
static SERIAL: AtomicU64 = AtomicU64::new(1);

impl JobHost {
    /// A host; with `cgroups`, one cgroup per job where this process may
    /// create cgroups (see [`containment`](Self::containment)).
    ///
    /// # Errors
    ///
    /// Becoming a child subreaper failed, or opening `/dev/null`.
    pub fn new(cgroups: bool) -> io::Result<JobHost> {
        JobHost::with_containment(if cgroups {
            Containment::Cgroup
        } else {
            Containment::ProcessGroup
        })
    }

    /// A host containing jobs as `wanted`, or by process groups where
    /// cgroups cannot be created (see [`containment`](Self::containment)).
    ///
    /// # Errors
    ///
    /// Becoming a child subreaper failed, or opening `/dev/null`.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::job::{Containment, JobHost};
    /// let host = JobHost::with_containment(Containment::Cgroup)?;
    /// assert!(matches!(host.containment(), Containment::Cgroup | Containment::ProcessGroup));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_containment(wanted: Containment) -> io::Result<JobHost> {
        reaper::become_subreaper()?;
        let cgroups = match wanted {
            Containment::ProcessGroup => None,
            Containment::Cgroup => CgroupRoot::create(),
        };
        let environment = std::env::vars_os()
            .filter(|(k, _)| k != JOB_ID)
            .filter_map(|(k, v)| {
                let mut entry = k.into_vec();
                entry.push(b'=');
                entry.extend_from_slice(v.as_bytes());
                CString::new(entry).ok()
            })
            .collect();
        Ok(JobHost {
            free: Vec::new(),
            retiring: Vec::new(),
            cgroups,
            created: 0,
            stack: spawn::ChildStack::new().ok(),
            null: spawn::dev_null()?,
            environment,
            live: LiveJobs::default(),
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
        match &self.cgroups {
            Some(_) => Containment::Cgroup,
            None => Containment::ProcessGroup,
        }
    }

    /// Whether jobs start directly in their cgroup (`clone3` with
    /// `CLONE_INTO_CGROUP`); `false` before the first spawn only if this
    /// architecture has no such path, and after a spawn on which the kernel
    /// refused it (then leaders are moved into their cgroup after starting).
    pub fn starts_in_cgroup(&self) -> bool {
        self.stack.is_some() && cfg!(target_arch = "x86_64")
    }

    /// Starts later jobs with `posix_spawn` and moves each leader into its
    /// cgroup after it started, as on kernels that refuse `clone3` — for
    /// comparisons and tests of that path.
    pub fn prefer_posix_spawn(&mut self) {
        self.stack = None;
    }

    /// The host's cgroup directory, if it has one.
    pub fn cgroup_dir(&self) -> Option<&std::path::Path> {
        self.cgroups.as_ref().map(CgroupRoot::path)
    }

    /// An empty job cgroup: a reused one, or a new one.
    fn take_cgroup(&mut self, root: &CgroupRoot) -> io::Result<JobCgroup> {
        self.retiring.retain(|cgroup| !cgroup.remove_if_empty());
        match self.free.pop() {
            Some(cgroup) => Ok(cgroup),
            None => {
                self.created += 1;
                root.job(&format!("job-{}", self.created))
            }
        }
    }

    /// Starts `command` as a new job: the leader of a new process group,
    /// in a cgroup of its own when the host has cgroups, with
    /// `PLY_JOB_ID` in its environment. Take piped streams from the
    /// [`Job`].
    ///
    /// # Errors
    ///
    /// `NotFound` for a missing program, the `execve` error for one that
    /// cannot run (the job's failure), or a [`SetupError`] inside the error
    /// when the host could not set the job up (pipes, its cgroup, the clone:
    /// the job never ran). `posix_spawn`'s own failures (the fallback where
    /// `clone3` is refused) are not told apart from `execve`'s.
    pub fn spawn(&mut self, command: &JobCommand) -> io::Result<Job> {
        let Some(path) = spawn::resolve(&command.program) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: not found", command.program.to_string_lossy()),
            ));
        };
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let token = format!("{}-{serial}", std::process::id());
        // The host's ends and the child's ends of the standard streams.
        let mut ours: [Option<OwnedFd>; 3] = [None, None, None];
        let mut theirs: [Option<OwnedFd>; 3] = [None, None, None];
        for (i, io) in command.stdio.iter().enumerate() {
            if *io == Io::Piped {
                let (read, write) = spawn::pipe().map_err(SetupError::Pipe)?;
                let (host, child) = if i == 0 { (write, read) } else { (read, write) };
                ours[i] = Some(host);
                theirs[i] = Some(child);
            }
        }
        let cgroup = match self.cgroups.take() {
            Some(mut root) => {
                root.keep_watched();
                let cgroup = self.take_cgroup(&root);
                self.cgroups = Some(root);
                Some(cgroup.map_err(SetupError::Cgroup)?)
            }
            None => None,
        };
        let started = match self.start_in_cgroup(command, &path, &token, &theirs, cgroup.as_ref()) {
            Ok(Some(started)) => Ok(started),
            Ok(None) => self.start_and_move(command, &path, &token, theirs, cgroup.as_ref()),
            Err(e) => Err(e),
        };
        let started = match started {
            Ok(started) => started,
            Err(e) => {
                if let Some(cgroup) = cgroup {
                    self.free.push(cgroup); // nothing ran in it
                }
                return Err(e);
            }
        };
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Live {
                pid: started.pid,
                serial,
            });
        Ok(Job {
            pid: started.pid,
            pidfd: started.pidfd,
            stdio: ours,
            cgroup,
            status: None,
            live: self.live.clone(),
            serial,
        })
    }

    /// The fast path: `clone3` into the cgroup. `None` when it is refused
    /// (from then on, the host uses [`start_and_move`](Self::start_and_move)).
    fn start_in_cgroup(
        &mut self,
        command: &JobCommand,
        path: &std::path::Path,
        token: &str,
        theirs: &[Option<OwnedFd>; 3],
        cgroup: Option<&JobCgroup>,
    ) -> io::Result<Option<spawn::Started>> {
        let Some(stack) = &mut self.stack else {
            return Ok(None);
        };
        let c_path = spawn::c_string(path.as_os_str().as_bytes())?;
        let arg0 = command.arg0.as_ref().unwrap_or(&command.program);
        let argv_strings = std::iter::once(arg0)
            .chain(&command.args)
            .map(|a| spawn::c_string(a.as_bytes()))
            .collect::<io::Result<Vec<CString>>>()?;
        let mut argv: Vec<*const libc::c_char> = argv_strings.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let extra = command
            .env
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .chain(std::iter::once((JOB_ID.as_bytes(), token.as_bytes())))
            .map(|(k, v)| spawn::c_string(&[k, b"=", v].concat()))
            .collect::<io::Result<Vec<CString>>>()?;
        let overridden = |entry: &CString| {
            command.env.iter().any(|(k, _)| {
                let e = entry.as_bytes();
                e.len() > k.len() && e.starts_with(k.as_bytes()) && e[k.len()] == b'='
            })
        };
        let mut envp: Vec<*const libc::c_char> = self
            .environment
            .iter()
            .filter(|e| !overridden(e))
            .chain(&extra)
            .map(|e| e.as_ptr())
            .collect();
        envp.push(std::ptr::null());
        // Descriptors 0-2 of the host are moved out of the way first.
        let mut moved: Vec<OwnedFd> = Vec::new();
        let mut stdio = [-1; 3];
        for (i, io) in command.stdio.iter().enumerate() {
            let fd = match io {
                Io::Inherit => -1,
                Io::Null => self.null.as_raw_fd(),
                Io::Piped => spawn::raw(theirs[i].as_ref()),
            };
            stdio[i] = match spawn::above_stdio(fd).map_err(SetupError::Process)? {
                Some(copy) => {
                    let raw = copy.as_raw_fd();
                    moved.push(copy);
                    raw
                }
                None => fd,
            };
        }
        let plan = spawn::Plan {
            path: &c_path,
            argv: &argv,
            envp: &envp,
            stdio,
            cgroup: cgroup.map(JobCgroup::dir_fd),
        };
        match spawn::spawn(&plan, stack)? {
            spawn::Spawned::Started(started) => Ok(Some(started)),
            spawn::Spawned::Unsupported => {
                self.stack = None;
                Ok(None)
            }
        }
    }

    /// The fallback: `posix_spawn` (through std), then a move into the
    /// cgroup.
    fn start_and_move(
        &mut self,
        command: &JobCommand,
        path: &std::path::Path,
        token: &str,
        theirs: [Option<OwnedFd>; 3],
        cgroup: Option<&JobCgroup>,
    ) -> io::Result<spawn::Started> {
        let mut std_command = std::process::Command::new(path);
        std_command
            .arg0(command.arg0.as_ref().unwrap_or(&command.program))
            .args(&command.args)
            .env_clear()
            .envs(self.environment.iter().filter_map(|e| {
                let bytes = e.as_bytes();
                let (k, v) = bytes.split_at(bytes.iter().position(|&b| b == b'=')?);
                Some((
                    std::ffi::OsStr::from_bytes(k),
                    std::ffi::OsStr::from_bytes(&v[1..]),
                ))
            }))
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .env(JOB_ID, token)
            .process_group(0);
        let [stdin, stdout, stderr] = theirs;
        let stdio = |io: Io, fd: Option<OwnedFd>| match (io, fd) {
            (Io::Piped, Some(fd)) => std::process::Stdio::from(fd),
            (Io::Null, _) => std::process::Stdio::null(),
            _ => std::process::Stdio::inherit(),
        };
        std_command
            .stdin(stdio(command.stdio[0], stdin))
            .stdout(stdio(command.stdio[1], stdout))
            .stderr(stdio(command.stdio[2], stderr));
        let child = std_command.spawn()?;
        let pid = child.id();
        drop(child); // not a wait: the job reaps its leader
        let kill_and_reap = |e: io::Error| {
            // SAFETY: kill and waitpid have no memory-safety preconditions;
            // the pid is our unreaped child.
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
                libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
            }
            e
        };
        let pidfd = tree::pidfd_open(pid)
            .map_err(kill_and_reap)
            .map_err(SetupError::Process)?;
        if let Some(cgroup) = cgroup {
            cgroup
                .add(pid)
                .map_err(kill_and_reap)
                .map_err(SetupError::Cgroup)?;
        }
        Ok(spawn::Started { pid, pidfd })
    }

    /// Takes back a finished job's cgroup: reused for a later job if the
    /// job left nothing behind; otherwise (its leftovers were killed)
    /// removed once empty, a new cgroup taking its place. (A job not
    /// finished is killed whole, by dropping it.)
    pub fn release(&mut self, mut job: Job) {
        job.unlist();
        if job.status.is_none() {
            return; // dropped below: killed, reaped, its cgroup removed
        }
        if let Some(cgroup) = job.cgroup.take() {
            match cgroup.populated() {
                Ok(false) if !cgroup.was_killed() => self.free.push(cgroup),
                Ok(_) => {
                    if !cgroup.was_killed() {
                        let _ = cgroup.signal(libc::SIGKILL);
                    }
                    if !cgroup.remove_if_empty() {
                        self.retiring.push(cgroup);
                    }
                }
                Err(_) => drop(cgroup), // killed until empty, removed
            }
        }
    }

    /// Ends the orphans re-parented to this process: children for which
    /// `keep(pid)` is false and that are not live jobs' leaders. Dead ones
    /// are reaped. A live one is left alone if it belongs to a job not yet
    /// released — it is in a job's cgroup (killed with that cgroup), in a
    /// live job's process group, or carries a live job's `PLY_JOB_ID` —
    /// and killed and reaped otherwise; so is one in the cgroup of a
    /// released job whose leftovers were killed. Returns how many orphans
    /// were killed or found dead but could not be reaped yet (they are
    /// still dying): while it is not 0, sweep again a little later.
    pub fn sweep(&self, keep: &dyn Fn(u32) -> bool) -> usize {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let me = std::process::id();
        let watchman = self.cgroups.as_ref().and_then(CgroupRoot::watchman_pid);
        let leader = |pid: libc::pid_t| live.iter().any(|l| l.pid as libc::pid_t == pid);
        let belongs = |pid: libc::pid_t| {
            if let Some(job) = self.cgroups.as_ref().and_then(|root| root.job_of(pid)) {
                // A released job's leftovers, being killed, are not kept.
                return !self.retiring.iter().any(|c| c.name() == Some(job.as_ref()));
            }
            if reaper::process_group(pid).is_some_and(leader) {
                return true;
            }
            reaper::environment_value(pid, JOB_ID).is_some_and(|token| {
                live.iter()
                    .any(|l| token == format!("{me}-{}", l.serial).as_bytes())
            })
        };
        reaper::sweep(
            &|pid| {
                let pid = u32::try_from(pid).ok();
                pid.is_some_and(|p| keep(p) || leader(p as libc::pid_t) || Some(p) == watchman)
            },
            &|pid| !belongs(pid),
        )
    }
}
