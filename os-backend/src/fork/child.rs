//! A child process of this process, by pid and pidfd, reaped exactly once:
//! what [`ForkedChild`](super::ForkedChild) and
//! [`ScopedChild`](super::ScopedChild) are made of.
//!
//! Signals go through the pidfd, which names this process and no other even
//! after the child has been reaped and its pid reused. Reaping (`waitpid` on
//! the pid) is serialized by a lock, and never done twice: a second
//! `waitpid` on a reaped pid could take the status of an unrelated child
//! that was given the same pid.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{ChildExit, Signal};

/// How long dropping a [`ForkedChild`](super::ForkedChild) waits for the
/// killed child to end before the late reaper takes over (`late.rs`): far
/// longer than a `SIGKILL`ed process takes to end on a loaded machine.
const REAP_PATIENCE: Duration = Duration::from_secs(5);

/// How long a wait sleeps between looks at a child that has ended but
/// cannot be reaped yet (a traced zombie, whose pidfd stays readable).
const UNREAPABLE_SLICE: Duration = Duration::from_millis(10);

/// One child of this process, reaped at most once.
#[derive(Debug)]
pub(super) struct Child {
    pid: libc::pid_t,
    /// Readable once the child has ended.
    pidfd: OwnedFd,
    /// Whether the child has been reaped; held while reaping.
    reaped: Mutex<bool>,
}

impl Child {
    /// Takes charge of `pid`, a child of this process not yet reaped. If its
    /// pidfd cannot be opened, kills and reaps it and returns the error.
    pub(super) fn adopt(pid: libc::pid_t) -> io::Result<Child> {
        let open = rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| io::Error::other("not a pid"))
            .and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty())
                    .map_err(io::Error::from)
            });
        match open {
            Ok(pidfd) => Ok(Child {
                pid,
                pidfd,
                reaped: Mutex::new(false),
            }),
            Err(e) => {
                // SAFETY: kill and waitpid on our own unreaped child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                Err(e)
            }
        }
    }

    pub(super) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    pub(super) fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    fn reaped(&self) -> MutexGuard<'_, bool> {
        // A panic while reaping leaves the flag as it was: still right.
        self.reaped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `signal` (a no-op once reaped).
    pub(super) fn kill(&self, signal: Signal) -> io::Result<()> {
        if *self.reaped() {
            return Ok(());
        }
        rustix::process::pidfd_send_signal(&self.pidfd, signal).map_err(io::Error::from)
    }

    /// Reaps the child if it has ended; `None` if it is still running.
    pub(super) fn try_wait(&self) -> io::Result<Option<ChildExit>> {
        self.waitpid(libc::WNOHANG)
    }

    /// Waits for the end, in `poll` on the pidfd (so no lock is held while
    /// waiting), and reaps it.
    pub(super) fn wait(&self) -> io::Result<ChildExit> {
        loop {
            if let Some(exit) = self.wait_until(None)? {
                return Ok(exit);
            }
        }
    }

    /// Waits up to `timeout`; `None` if the child is still running.
    pub(super) fn wait_timeout(&self, timeout: Duration) -> io::Result<Option<ChildExit>> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Waits until the child is reaped or `deadline` passes. A child that
    /// has ended but cannot be reaped yet (a zombie whose tracer has not
    /// waited for it) keeps its pidfd readable, so `poll` would return at
    /// once: once it has, the wait sleeps [`UNREAPABLE_SLICE`] between
    /// looks instead of spinning.
    fn wait_until(&self, deadline: Option<Instant>) -> io::Result<Option<ChildExit>> {
        let mut readable = false;
        loop {
            if let Some(exit) = self.try_wait()? {
                return Ok(Some(exit));
            }
            let left = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    Some(left)
                }
                None => None,
            };
            if readable {
                std::thread::sleep(left.map_or(UNREAPABLE_SLICE, |l| l.min(UNREAPABLE_SLICE)));
            } else {
                readable = self.poll(left)?;
            }
        }
    }

    /// Kills (`SIGKILL`) and reaps the child unless it was reaped already,
    /// however long the kernel takes to end it: for a scope's children,
    /// which borrow from the caller's stack and must be gone before it
    /// returns.
    pub(super) fn kill_and_reap(&self) {
        let mut reaped = self.reaped();
        if !*reaped {
            let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL);
            // After SIGKILL the end comes without the child's cooperation.
            let _ = Self::waitpid_locked(self.pid, &mut reaped, 0);
        }
    }

    /// Kills (`SIGKILL`) and reaps the child unless it was reaped already;
    /// if it has not ended within [`REAP_PATIENCE`] (uninterruptible sleep,
    /// a traced zombie), hands it to the late reaper (`late.rs`) and
    /// returns: for a child that owns what it uses (`ForkedChild`).
    pub(super) fn kill_and_reap_or_hand_over(&self) {
        let mut reaped = self.reaped();
        if *reaped {
            return;
        }
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL);
        let deadline = Instant::now() + REAP_PATIENCE;
        let mut readable = false;
        loop {
            match Self::waitpid_locked(self.pid, &mut reaped, libc::WNOHANG) {
                Ok(None) => {}
                Ok(Some(_)) | Err(_) => return,
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let slice = left.min(UNREAPABLE_SLICE);
            if readable {
                // Ended but not reapable (a traced zombie): its pidfd stays
                // readable, so this sleeps instead of spinning.
                std::thread::sleep(slice);
            }
            readable = matches!(self.poll(Some(slice)), Ok(true));
        }
        match self.pidfd.try_clone() {
            Ok(pidfd) => {
                *reaped = true; // the late reaper's now, by pidfd
                super::late::reap_later(pidfd);
            }
            // No descriptor to hand over: wait, as a scope does.
            Err(_) => drop(Self::waitpid_locked(self.pid, &mut reaped, 0)),
        }
    }

    /// Waits until the pidfd is readable (the child ended) or `timeout`
    /// passes; whether it is readable.
    fn poll(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let mut fds = [rustix::event::PollFd::new(
            &self.pidfd,
            rustix::event::PollFlags::IN,
        )];
        let left = timeout
            .map(rustix::event::Timespec::try_from)
            .transpose()
            .map_err(|_| io::Error::other("timeout out of range"))?;
        match rustix::event::poll(&mut fds, left.as_ref()) {
            Ok(ready) => Ok(ready > 0),
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn waitpid(&self, flags: libc::c_int) -> io::Result<Option<ChildExit>> {
        Self::waitpid_locked(self.pid, &mut self.reaped(), flags)
    }

    fn waitpid_locked(
        pid: libc::pid_t,
        reaped: &mut bool,
        flags: libc::c_int,
    ) -> io::Result<Option<ChildExit>> {
        if *reaped {
            return Err(io::Error::from_raw_os_error(libc::ECHILD));
        }
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer; the pid is our child,
            // not reaped yet (the flag, under its lock), so it names no other.
            let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
            if rc == pid {
                if libc::WIFSTOPPED(status) || libc::WIFCONTINUED(status) {
                    continue; // not an end (only reported with WUNTRACED)
                }
                *reaped = true;
                return Ok(Some(ChildExit::from_wait_status(status)));
            }
            if rc == 0 {
                return Ok(None);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::fork::{ChildExit, Signal};
    use std::time::Duration;

    /// How long thread `tid` of this process has been running or ready to
    /// run (on a CPU, or waiting in a run queue for one), from
    /// `/proc/self/task/<tid>/schedstat`: about all of the time for a
    /// thread that spins, however loaded the machine, and little for one
    /// that sleeps.
    fn busy_time(tid: i32) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap();
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().unwrap());
        Duration::from_nanos(fields.next().unwrap() + fields.next().unwrap())
    }

    /// A child that has ended but cannot be reaped (a zombie traced by a
    /// sibling, that tracer's to wait for first) keeps its pidfd readable:
    /// `wait_timeout` and `wait` sleep between looks instead of spinning.
    /// A spinning wait uses about all of its thread's CPU for the wait; the
    /// bound is half of it, which a sleeping one (a look every 10 ms) stays
    /// far under however loaded the machine.
    #[test]
    fn waiting_for_a_traced_zombie_does_not_spin() {
        let (held, tracer) = crate::test_support::traced_by_a_sibling();
        held.kill(Signal::KILL).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let mut held = held;
            // SAFETY: gettid has no preconditions.
            tx.send(Some(unsafe { libc::gettid() })).unwrap();
            let waited = held.wait_timeout(Duration::from_secs(1)).unwrap();
            tx.send(waited.map(|_| 0)).unwrap();
            held.wait().unwrap()
        });
        let watchdog = Duration::from_secs(60);
        let tid = rx.recv_timeout(watchdog).unwrap().unwrap();
        let start = busy_time(tid);
        let waited = rx.recv_timeout(watchdog).unwrap();
        let timed = busy_time(tid) - start;
        // The thread is in `wait` now: for a second of it.
        std::thread::sleep(Duration::from_secs(1));
        let untimed = busy_time(tid) - start - timed;
        drop(tracer); // ptrace lets go as the tracer ends: the zombie is ours
        let ended = waiter.join().unwrap();
        assert_eq!(waited, None, "reaped while traced");
        let half = Duration::from_millis(500);
        assert!(timed < half, "wait_timeout spun: busy {timed:?} of 1 s");
        assert!(untimed < half, "wait spun: busy {untimed:?} of 1 s");
        assert_eq!(ended, ChildExit::Signaled(Signal::KILL));
    }
}
