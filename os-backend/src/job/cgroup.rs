//! Cgroup v2 directories for jobs: where this process may create them, and
//! the few operations a job needs (move a process in, kill everything in it,
//! check that it is empty, remove it).
//!
//! A cgroup holds every process forked inside it, whatever the processes do
//! afterwards: `setsid`, a double fork, a new process group. Killing it
//! (`cgroup.kill`, Linux 5.14) is the only way to end a tree some of whose
//! members have left. See the kernel's `Documentation/admin-guide/cgroup-v2.rst`
//! ("Core Interface Files", "Delegation").

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Prefix of the directories ply creates, followed by `<owner pid>-<n>`.
const PREFIX: &str = "ply-";

/// The cgroup v2 directory of this process: the `cgroup2` mount point (from
/// `/proc/self/mountinfo`) joined with the `0::` path of `/proc/self/cgroup`.
pub(crate) fn own_cgroup() -> Option<(PathBuf, String)> {
    let path = cgroup_of("self")?;
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    // mountinfo: "id parent major:minor root mount-point options ... - fstype source ..."
    let mount = mounts.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4))?
    })?;
    Some((Path::new(mount).join(path.trim_start_matches('/')), path))
}

/// The cgroup v2 path (`0::<path>` in `/proc/<pid>/cgroup`) of a process
/// (`"self"` or a pid).
pub(crate) fn cgroup_of(pid: &str) -> Option<String> {
    let membership = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    membership
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
}

/// The directory this process creates for its jobs (`<own>/ply-<pid>-<n>`), with
/// one sub-directory per job (reused once empty).
#[derive(Debug)]
pub(crate) struct CgroupRoot {
    dir: PathBuf,
    /// The same directory as a cgroup path (`/…/ply-<pid>-<n>`).
    name: String,
    /// The cgroup this process was in when the root was created.
    origin: PathBuf,
}

impl CgroupRoot {
    /// Creates `<own cgroup>/ply-<pid>-<n>`, after removing the directories of
    /// earlier ply processes that are gone (killed by SIGKILL, say): their
    /// jobs are killed first. `None` where there is no cgroup v2 or this
    /// process may not create a cgroup there.
    pub(crate) fn create() -> Option<CgroupRoot> {
        let (own, own_name) = own_cgroup()?;
        remove_stale(&own);
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let leaf = format!("{PREFIX}{}-{n}", std::process::id());
        let dir = own.join(&leaf);
        fs::create_dir(&dir).ok()?;
        let name = format!("{}/{leaf}", own_name.trim_end_matches('/'));
        // Creating is not enough: moving a process in must be allowed too.
        let root = CgroupRoot {
            dir,
            name,
            origin: own,
        };
        let probe = root.dir.join("probe");
        let usable =
            fs::create_dir(&probe).is_ok() && fs::metadata(probe.join("cgroup.procs")).is_ok();
        let _ = fs::remove_dir(&probe);
        usable.then_some(root)
    }

    /// A new, empty job directory named `name`.
    pub(crate) fn job(&self, name: &str) -> io::Result<JobCgroup> {
        let dir = self.dir.join(name);
        fs::create_dir(&dir)?;
        JobCgroup::open(dir)
    }

    /// The directory, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves this process back to the cgroup it was in at creation.
    pub(crate) fn return_home(&self) -> io::Result<()> {
        fs::OpenOptions::new()
            .write(true)
            .open(self.origin.join("cgroup.procs"))?
            .write_all(std::process::id().to_string().as_bytes())
    }

    /// Whether process `pid` is in one of this root's job cgroups.
    pub(crate) fn contains(&self, pid: libc::pid_t) -> bool {
        cgroup_of(&pid.to_string())
            .is_some_and(|path| path.starts_with(&self.name) && path.len() > self.name.len())
    }
}

impl Drop for CgroupRoot {
    fn drop(&mut self) {
        // Job directories are removed by their owners; anything left (a job
        // that could not be emptied) is killed and removed here.
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.path().is_dir()
                    && let Ok(job) = JobCgroup::open(entry.path())
                {
                    drop(job); // killed and removed
                }
            }
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Removes `ply-<pid>-<n>` directories under `parent` whose process is gone,
/// killing what is left in them.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue; // its owner (or at least some process of that pid) lives
        }
        let root = CgroupRoot {
            dir: entry.path(),
            name: String::new(),
            origin: PathBuf::new(),
        };
        drop(root); // kills and removes every job directory, then itself
    }
}

/// One job's cgroup directory, with its `cgroup.procs` and `cgroup.events`
/// kept open (a job start and end then cost a write and a read, no path
/// lookups).
#[derive(Debug)]
pub(crate) struct JobCgroup {
    dir: PathBuf,
    procs: fs::File,
    events: fs::File,
}

impl JobCgroup {
    fn open(dir: PathBuf) -> io::Result<JobCgroup> {
        Ok(JobCgroup {
            procs: fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))?,
            events: fs::File::open(dir.join("cgroup.events"))?,
            dir,
        })
    }

    /// Moves process `pid` (and so its future children) into this cgroup.
    pub(crate) fn add(&self, pid: u32) -> io::Result<()> {
        (&self.procs).write_all(pid.to_string().as_bytes())
    }

    /// Whether any live process is in the cgroup (`populated 1` in
    /// `cgroup.events`; zombies do not count).
    pub(crate) fn populated(&self) -> io::Result<bool> {
        let mut buf = [0u8; 128];
        let n = std::os::unix::fs::FileExt::read_at(&self.events, &mut buf, 0)?;
        Ok(buf[..n].split(|&b| b == b'\n').any(|l| l == b"populated 1"))
    }

    /// Sends `sig` to every process in the cgroup. SIGKILL goes through
    /// `cgroup.kill`, which also catches processes forked while it runs.
    pub(crate) fn signal(&self, sig: i32) -> io::Result<()> {
        if sig == libc::SIGKILL
            && fs::OpenOptions::new()
                .write(true)
                .open(self.dir.join("cgroup.kill"))
                .and_then(|mut f| f.write_all(b"1"))
                .is_ok()
        {
            return Ok(());
        }
        let procs = fs::read_to_string(self.dir.join("cgroup.procs"))?;
        for pid in procs.lines().filter_map(|l| l.parse::<libc::pid_t>().ok()) {
            // SAFETY: kill has no memory-safety preconditions. The pid was
            // listed as a member a moment ago; a member that died since and
            // whose pid was reused is the unavoidable race of signalling by
            // pid, which `cgroup.kill` (used for SIGKILL) does not have.
            unsafe { libc::kill(pid, sig) };
        }
        Ok(())
    }

    /// Sends `sig` to every process in the cgroup but this one.
    pub(crate) fn signal_others(&self, sig: i32) {
        let me = std::process::id() as libc::pid_t;
        let procs = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.parse::<libc::pid_t>().ok()) {
            if pid != me {
                // SAFETY: kill has no memory-safety preconditions (the pid
                // race is as in `signal`).
                unsafe { libc::kill(pid, sig) };
            }
        }
    }

    /// Kills every process in the cgroup and waits until it is empty, for at
    /// most `limit`.
    pub(crate) fn kill_until_empty(&self, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_micros(50);
        loop {
            if !self.populated()? {
                return Ok(());
            }
            self.signal(libc::SIGKILL)?;
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} still has live processes", self.dir.display()),
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

impl Drop for JobCgroup {
    /// Kills everything in the cgroup and removes the directory.
    fn drop(&mut self) {
        let _ = self.kill_until_empty(Duration::from_secs(1));
        let _ = fs::remove_dir(&self.dir);
    }
}
