//! Cgroup v2 directories for jobs: where this process may create them, and
//! the few operations a job needs (start a process in it or move one in,
//! kill everything in it, check that it is empty, remove it).
//!
//! A cgroup holds every process forked inside it, whatever the processes do
//! afterwards: `setsid`, a double fork, a new process group. Killing it
//! (`cgroup.kill`, Linux 5.14) is the only way to end a tree some of whose
//! members have left. See the kernel's `Documentation/admin-guide/cgroup-v2.rst`
//! ("Core Interface Files", "Delegation").

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::watchman::Watchman;

/// Prefix of the directories ply creates, followed by `<owner pid>-<n>`.
const PREFIX: &str = "ply-";

/// The next `<n>` of this process's directories (each is created once).
static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
    /// Ends the jobs if this process dies without dropping the root; told
    /// to exit (and reaped) after the directory is removed, as fields drop
    /// after `drop`.
    watchman: Option<Watchman>,
}

impl CgroupRoot {
    /// Creates `<own cgroup>/ply-<pid>-<n>`, after removing the directories of
    /// earlier ply processes that are gone (killed by SIGKILL, say): their
    /// jobs are killed first. `None` where there is no cgroup v2 or this
    /// process may not create a cgroup there.
    pub(crate) fn create() -> Option<CgroupRoot> {
        let (own, own_name) = own_cgroup()?;
        remove_stale(&own);
        // SeqCst: `remove_stale` reads it after listing the directories.
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let leaf = format!("{PREFIX}{}-{n}", std::process::id());
        let dir = own.join(&leaf);
        let name = format!("{}/{leaf}", own_name.trim_end_matches('/'));
        // The watchman first: from the moment the directory exists, a
        // SIGKILL of this process has someone to remove it (and kill what
        // runs in it). Without a watchman (no /bin/sh), jobs outlive a
        // SIGKILLed host until the next host removes its directory as
        // stale: worse, but still contained.
        let watchman = Watchman::start(&dir).ok();
        fs::create_dir(&dir).ok()?;
        let root = CgroupRoot {
            dir,
            name,
            watchman,
        };
        // Creating is not enough: moving a process in must be allowed too.
        let probe = root.dir.join("probe");
        let usable =
            fs::create_dir(&probe).is_ok() && fs::metadata(probe.join("cgroup.procs")).is_ok();
        let _ = fs::remove_dir(&probe);
        usable.then_some(root)
    }

    /// Replaces a watchman that died (killed while this process lives), so
    /// that jobs started from now on, and those still running, are watched
    /// again. One `poll` when the watchman lives.
    pub(crate) fn keep_watched(&mut self) {
        if self.watchman.as_ref().is_some_and(|w| !w.alive()) {
            self.watchman = None; // reaps the dead one
            self.watchman = Watchman::start(&self.dir).ok();
        }
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

    /// The process id of the root's watchman (a child of this process that
    /// is no job's), if it has one.
    pub(crate) fn watchman_pid(&self) -> Option<u32> {
        self.watchman.as_ref().map(Watchman::pid)
    }

    /// The name of the job cgroup of this root that process `pid` is in
    /// (`job-<n>`), if it is in one.
    pub(crate) fn job_of(&self, pid: libc::pid_t) -> Option<String> {
        let path = cgroup_of(&pid.to_string())?;
        let rest = path.strip_prefix(&self.name)?.strip_prefix('/')?;
        let job = rest.split('/').next().filter(|j| !j.is_empty())?;
        Some(job.to_owned())
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
///
/// One that names this process's own pid was left by an earlier process
/// that had the same pid (reused; in a container, where a program often
/// gets the same pid each run, routinely): unless this process created it
/// (its `<n>` was taken here), it is stale too. Kept, it would stay for
/// this process's whole life, its jobs running, and take the name this
/// process's own directory needs when the numbers meet.
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let entries: Vec<fs::DirEntry> = entries.flatten().collect();
    // Read after the listing: a directory of this process's in it was
    // created after its number was taken, so its number is below this one.
    let taken = NEXT.load(std::sync::atomic::Ordering::SeqCst);
    let me = std::process::id();
    for entry in entries {
        let name = entry.file_name();
        let Some(mut parts) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .map(|rest| rest.split('-'))
        else {
            continue;
        };
        let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let live = if pid == me {
            // Ours if we took its number (an unnumbered one is left alone).
            parts
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .is_none_or(|n| n < taken)
        } else {
            // Its owner (or at least some process of that pid) lives.
            Path::new(&format!("/proc/{pid}")).exists()
        };
        if live {
            continue;
        }
        let root = CgroupRoot {
            dir: entry.path(),
            name: String::new(),
            watchman: None,
        };
        drop(root); // kills and removes every job directory, then itself
    }
}

/// One job's cgroup directory, kept open (for `clone3`'s
/// `CLONE_INTO_CGROUP`), with its `cgroup.procs` and `cgroup.events` (a job
/// start and end then cost no path lookups).
#[derive(Debug)]
pub(crate) struct JobCgroup {
    dir: PathBuf,
    handle: fs::File,
    procs: fs::File,
    events: fs::File,
    /// `cgroup.kill` was written: the cgroup is not to be reused (below).
    killed: std::sync::atomic::AtomicBool,
}

impl JobCgroup {
    fn open(dir: PathBuf) -> io::Result<JobCgroup> {
        Ok(JobCgroup {
            handle: fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(&dir)?,
            procs: fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))?,
            events: fs::File::open(dir.join("cgroup.events"))?,
            dir,
            killed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether `cgroup.kill` was ever written. Such a cgroup is not reused:
    /// on Linux 6.18 (at least), a process later started in it with
    /// `CLONE_INTO_CGROUP` is killed as it starts (found by ply's tests:
    /// the kill-sequence check of `cgroup_post_fork` compares against the
    /// parent's cgroup). A job that left nothing behind never needs it.
    pub(crate) fn was_killed(&self) -> bool {
        self.killed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The directory's name (`job-<n>`).
    pub(crate) fn name(&self) -> Option<&std::ffi::OsStr> {
        self.dir.file_name()
    }

    /// The directory's descriptor, for `CLONE_INTO_CGROUP`.
    pub(crate) fn dir_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.handle)
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
        if sig == libc::SIGKILL {
            self.killed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
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

impl JobCgroup {
    /// Removes the directory if the cgroup is empty; whether it did (the
    /// cgroup is then gone, and dropping this costs a failed read).
    pub(crate) fn remove_if_empty(&self) -> bool {
        !self.populated().unwrap_or(true) && fs::remove_dir(&self.dir).is_ok()
    }
}

impl Drop for JobCgroup {
    /// Kills everything in the cgroup and removes the directory.
    fn drop(&mut self) {
        let _ = self.kill_until_empty(Duration::from_secs(1));
        let _ = fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patience for a kill on a loaded machine; met in milliseconds.
    const PATIENCE: Duration = Duration::from_secs(30);

    /// An earlier process with this process's pid died without removing
    /// its directory, a job still running in it: creating a root sweeps
    /// it (its job killed, the directory removed), as it would sweep one of
    /// any other dead pid. Skipped without cgroup v2 delegation.
    #[test]
    fn a_stale_directory_of_an_earlier_process_with_this_pid_is_swept() {
        let Some((own, _)) = own_cgroup() else {
            return eprintln!("skipped: no cgroup v2");
        };
        // A number this process never reaches.
        let stale = own.join(format!("{PREFIX}{}-{}", std::process::id(), u64::MAX - 1));
        if fs::create_dir(&stale).is_err() {
            return eprintln!("skipped: may not create a cgroup in {}", own.display());
        }
        let job = stale.join("job-0");
        fs::create_dir(&job).unwrap();
        let mut left = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let moved = fs::write(job.join("cgroup.procs"), left.id().to_string());
        let root = CgroupRoot::create();
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            match left.try_wait().unwrap() {
                Some(status) => break Some(status),
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                None => break None,
            }
        };
        // Cleanup before asserting: a failure leaves nothing behind.
        let _ = left.kill();
        let _ = left.wait();
        let swept = !stale.exists();
        let _ = fs::remove_dir(&job);
        let _ = fs::remove_dir(&stale);
        drop(root);
        moved.expect("a process moved into the stale job's cgroup");
        assert!(swept, "the stale directory of this pid was left");
        let signal = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s));
        assert_eq!(signal, Some(libc::SIGKILL), "its job was not killed");
    }
}
