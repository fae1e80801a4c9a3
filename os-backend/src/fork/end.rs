//! Ending every child of this process for good, before it exits by force.
//!
//! A process that ends itself by force (ply's CLI after a second Ctrl-C, or
//! when its grace period runs out) must first kill and reap every child it
//! has, or the children outlive it (orphans), or their corpses are left to
//! whoever inherits orphans (a subreaper may never reap them). Two things
//! make a plain "list the children, kill them, reap them" loop leak:
//!
//! - Its other threads keep running meanwhile: a process map that sees a
//!   worker killed forks a replacement. A child forked after the last look
//!   at the list is neither killed nor reaped. [`stop_forking`] closes that
//!   window: once it returns, every child ply's forks will ever make in this
//!   process exists already, and the kernel lists it as this process's.
//! - The children of a child: a process pool's fork server is killed, and
//!   its workers (killed in turn by `PR_SET_PDEATHSIG`) are re-parented to
//!   the nearest subreaper or init, unreaped. [`end_children`] makes this
//!   process a subreaper (`PR_SET_CHILD_SUBREAPER`) first, so they come to
//!   it, and are killed and reaped with the rest.
//! - A child that cannot be reaped. A child killed with `SIGKILL` ends
//!   without its cooperation (it cannot catch, block or ignore the signal),
//!   but not always soon: on a loaded machine it waits to be scheduled and
//!   torn down, and in uninterruptible sleep (a read from a dead FUSE or NFS
//!   mount) it does not end until the kernel lets it. A zombie traced by
//!   another process is not this process's to reap until the tracer has
//!   waited for it. [`end_children`] waits for its children's pidfds
//!   (`poll`) until a deadline, then returns the pids it could not reap
//!   ([`EndChildrenError::Unreaped`]) instead of holding the caller's exit
//!   forever.
//!
//! The gate is one atomic word: the low bits count forks in progress, the
//! top bit says forking has stopped. A fork enters with one `fetch_add`,
//! which also returns the bit: set, it leaves again and fails; clear, it
//! forks, takes charge of the child (its pidfd), and leaves (`fetch_sub`).
//! `stop_forking` sets the bit with one `fetch_or` and waits until the count
//! is zero. Read-modify-writes of one word are totally ordered, so a fork's
//! entry either comes before the `fetch_or` (counted, and waited for) or
//! after it (sees the bit). A fork's section is the `fork` system call and
//! the child's pidfd (and, if that fails, a `SIGKILL` and `waitpid` of the
//! child): kernel work that waits on no other party. The wait for it still
//! has a deadline, for a thread stopped mid-fork by a debugger.
//!
//! Only forks made through ply (`fork_child`, scopes, the process map and
//! pool, `fork_duplex`, the pool's fork server) pass the gate; a program's
//! own `fork` or `std::process::Command` does not (their children are still
//! killed and reaped by [`end_children`] if they exist when it looks).
//!
//! Children are found in `/proc/self/task/*/children` (each thread's
//! children; Linux 4.2+). Each is opened as a pidfd, and checked to still be
//! this process's child (`waitid` on a pidfd accepts nothing else) before it
//! is signalled: another thread may have reaped it since the listing, and
//! its pid been given to an unrelated process.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

use super::children::own_children;

/// The top bit: forking has stopped.
const STOPPED: usize = 1 << (usize::BITS - 1);

/// Forks in progress, and [`STOPPED`].
static GATE: AtomicUsize = AtomicUsize::new(0);

/// A fork in progress; leaves the gate when dropped.
#[must_use = "the fork is counted only while the permit is held"]
pub(crate) struct ForkPermit(());

impl ForkPermit {
    /// Enters the gate, or fails if forking has stopped.
    pub(crate) fn enter() -> io::Result<ForkPermit> {
        // The entry publishes nothing; the order that matters, against
        // `stop_forking`'s `fetch_or`, is the word's own total order.
        if GATE.fetch_add(1, Ordering::Relaxed) & STOPPED != 0 {
            GATE.fetch_sub(1, Ordering::Relaxed);
            return Err(io::Error::other(
                "this process is ending and forks no more children",
            ));
        }
        Ok(ForkPermit(()))
    }

    /// In a freshly forked child, instead of dropping the permit: the
    /// parent's count and bit were copied with its memory, but this process
    /// (one thread) has no fork in progress, and may fork.
    pub(crate) fn forget_in_child(self) {
        std::mem::forget(self);
        GATE.store(0, Ordering::Relaxed);
    }
}

impl Drop for ForkPermit {
    fn drop(&mut self) {
        // Release, paired with `stop_forking`'s Acquire load: the stopper
        // sees the fork's effects (the child's pidfd taken) done.
        GATE.fetch_sub(1, Ordering::Release);
    }
}

/// Stops this process from forking through ply, for good: every later
/// [`fork_child`](super::fork_child) (and every ply API that forks) fails
/// with an error. Returns once no such fork is in progress, so that every
/// child ply forked in this process exists already; [`end_children`] then
/// leaves none behind.
///
/// Waits at most `limit` for forks in progress (each is a system call or
/// two); returns `false` if one was still in progress then.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::fork::{fork_child, stop_forking};
///
/// assert!(fork_child(|| 0)?.wait()?.success());
/// assert!(stop_forking(Duration::from_secs(10)));
/// assert!(fork_child(|| 0).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn stop_forking(limit: Duration) -> bool {
    GATE.fetch_or(STOPPED, Ordering::Relaxed);
    let deadline = Instant::now() + limit;
    while GATE.load(Ordering::Acquire) & !STOPPED != 0 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    true
}

/// What [`end_children`] could not finish by its deadline.
///
/// # Example
///
/// ```
/// use ply_os::fork::EndChildrenError;
///
/// let err = EndChildrenError::Unreaped { pids: vec![4242] };
/// assert_eq!(
///     err.to_string(),
///     "1 child process killed but not reaped in time (pids 4242)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndChildrenError {
    /// These children were sent `SIGKILL` but could not be reaped by the
    /// deadline: still ending (uninterruptible sleep, a loaded machine), or
    /// a zombie only its tracer may reap. Left to whoever inherits them.
    Unreaped {
        /// Their process ids, in the order they were found.
        pids: Vec<i32>,
    },
    /// Every child found was killed and reaped, but a fork through ply was
    /// still in progress when forking stopped (a thread stopped mid-fork):
    /// the child it makes, if it makes one, was not.
    StillForking,
}

impl std::fmt::Display for EndChildrenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndChildrenError::Unreaped { pids } => {
                let list: Vec<String> = pids.iter().map(i32::to_string).collect();
                let plural = if pids.len() == 1 { "" } else { "es" };
                write!(
                    f,
                    "{} child process{plural} killed but not reaped in time (pids {})",
                    pids.len(),
                    list.join(", ")
                )
            }
            EndChildrenError::StillForking => {
                f.write_str("a fork was still in progress when forking stopped")
            }
        }
    }
}

impl std::error::Error for EndChildrenError {}

/// How long one wait for the children's pidfds lasts at most, so that a
/// child that is a zombie but not reapable yet (its pidfd is readable at
/// once) is looked at again without a busy loop.
const REAP_TICK: Duration = Duration::from_millis(20);

/// A child killed by [`end_children`], not reaped yet.
struct Killed {
    pid: i32,
    pidfd: OwnedFd,
    /// Its pidfd was readable (it has ended) but it could not be reaped: a
    /// traced zombie. Left out of the `poll`, which would return at once.
    ended: bool,
}

/// Stops ply's forks ([`stop_forking`], waiting up to `limit` for those in
/// progress), then kills every child of this process with `SIGKILL` and
/// reaps it, until it has none: for a process about to `_exit` while its
/// other threads may still be forking and waiting. Another thread may reap
/// some of the children meanwhile; every one is reaped by someone before
/// this returns `Ok`. The process becomes a subreaper, so that the children
/// of the children it kills (orphaned then) are killed and reaped too.
///
/// The reaping waits up to `limit` too (so the whole call at most twice
/// that): a child killed with `SIGKILL` cannot delay its end, but the
/// kernel can (scheduling it on a loaded machine, uninterruptible sleep in
/// a dead mount), and a traced child is reaped only after its tracer has
/// waited for it. Those still unreaped then are named in the error; every
/// child found has been sent `SIGKILL`.
///
/// # Errors
///
/// [`EndChildrenError::Unreaped`] with the children not reaped by the
/// deadline; else [`EndChildrenError::StillForking`] if a fork was still in
/// progress after `limit`.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::fork::{end_children, fork_child};
///
/// let child = fork_child(|| loop { std::thread::park() })?;
/// let pid = child.pid();
/// std::mem::forget(child); // as a thread about to `_exit` would leave it
/// end_children(Duration::from_secs(10)).expect("every child reaped");
/// assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn end_children(limit: Duration) -> Result<(), EndChildrenError> {
    let forks_settled = stop_forking(limit);
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes a flag, no pointers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let deadline = Instant::now() + limit;
    let mut pending: Vec<Killed> = Vec::new();
    loop {
        // Every child not killed yet (the first round: all; later: the
        // orphans of those killed, re-parented here) is killed before any
        // is waited for: they die in parallel.
        for pid in own_children() {
            if pending.iter().any(|k| k.pid == pid) {
                continue;
            }
            if let Some(pidfd) = kill_child(pid) {
                let ended = false;
                pending.push(Killed { pid, pidfd, ended });
            }
        }
        if pending.is_empty() {
            return if forks_settled {
                Ok(())
            } else {
                Err(EndChildrenError::StillForking)
            };
        }
        pending.retain(|k| !reap(&k.pidfd));
        if pending.is_empty() {
            continue; // look again: their orphans have come here
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(EndChildrenError::Unreaped {
                pids: pending.iter().map(|k| k.pid).collect(),
            });
        }
        wait_for_any(&mut pending, (deadline - now).min(REAP_TICK));
    }
}

/// Sends `SIGKILL` to `pid` if it is still this process's child, unreaped;
/// returns its pidfd then.
fn kill_child(pid: i32) -> Option<OwnedFd> {
    let pidfd = rustix::process::pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
    // `waitid` on a pidfd accepts only this process's own children: the pid
    // was not reaped and reused since the listing. (NOWAIT: only looks.)
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), options).ok()?;
    // Through the pidfd, which names this process only, reaped or not.
    let _ = rustix::process::pidfd_send_signal(&pidfd, Signal::KILL);
    Some(pidfd)
}

/// Reaps the child if it has ended; whether it is gone (reaped here, or by
/// another thread: `ECHILD`).
pub(super) fn reap(pidfd: &OwnedFd) -> bool {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
    match rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), options) {
        Ok(status) => status.is_some(),
        Err(e) => e == rustix::io::Errno::CHILD,
    }
}

/// Waits up to `timeout` for one of the children not known to have ended
/// to end (its pidfd turns readable); marks those found ended.
fn wait_for_any(pending: &mut [Killed], timeout: Duration) {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let waiting: Vec<usize> = (0..pending.len()).filter(|&i| !pending[i].ended).collect();
    if waiting.is_empty() {
        // Only ended-but-unreapable children: nothing to poll for.
        std::thread::sleep(timeout);
        return;
    }
    let Ok(timeout) = Timespec::try_from(timeout) else {
        return;
    };
    let mut fds: Vec<PollFd<'_>> = waiting
        .iter()
        .map(|&i| PollFd::new(&pending[i].pidfd, PollFlags::IN))
        .collect();
    if rustix::event::poll(&mut fds, Some(&timeout)).is_err() {
        return; // EINTR: the caller looks again
    }
    let ready: Vec<bool> = fds.iter().map(|fd| !fd.revents().is_empty()).collect();
    drop(fds);
    for (&i, ready) in waiting.iter().zip(ready) {
        pending[i].ended |= ready;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::{ChildExit, fork_child};
    use std::io::{Read, Write};
    use std::path::Path;

    fn gone(pid: i32) -> bool {
        !Path::new(&format!("/proc/{pid}")).exists()
    }

    /// In a child (this test process goes on forking), with children of
    /// every kind: a zombie, one that ignores the signals it can, one with
    /// a child of its own that has no `PR_SET_PDEATHSIG`, and a thread
    /// forking in a loop meanwhile. All of them, and the grandchild, are
    /// reaped; the forking thread's next fork fails.
    #[test]
    fn ends_every_child_and_grandchild_and_forks_no_more() {
        let tester = fork_child(|| {
            let zombie = fork_child(|| 0).unwrap();
            let stubborn = fork_child(|| {
                for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                    // SAFETY: setting a disposition to "ignore" touches no
                    // memory.
                    unsafe { libc::signal(sig, libc::SIG_IGN) };
                }
                loop {
                    std::thread::park();
                }
            })
            .unwrap();
            let (mut told, mut tell) = std::os::unix::net::UnixStream::pair().unwrap();
            let middle = fork_child(move || {
                // SAFETY: the grandchild only calls `pause`, which is
                // async-signal-safe, forever.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    loop {
                        // SAFETY: as above.
                        unsafe { libc::pause() };
                    }
                }
                let _ = tell.write_all(&pid.to_le_bytes());
                loop {
                    std::thread::park();
                }
            })
            .unwrap();
            let mut grandchild = [0u8; 4];
            told.read_exact(&mut grandchild).unwrap();
            let grandchild = i32::from_le_bytes(grandchild);
            let forker = std::thread::spawn(|| {
                let mut forked = Vec::new();
                loop {
                    match fork_child(|| {
                        loop {
                            std::thread::park();
                        }
                    }) {
                        // Kept unreaped until forking fails: each must then
                        // have been ended by `end_children`, not by these
                        // handles.
                        Ok(child) => forked.push(child),
                        Err(_) => return forked,
                    }
                }
            });
            while own_children().len() < 5 {
                std::thread::yield_now();
            }
            let mut pids = vec![zombie.pid(), stubborn.pid(), middle.pid()];
            std::mem::forget((zombie, stubborn, middle));
            let ended = end_children(Duration::from_secs(30));
            let forked = forker.join().unwrap();
            pids.extend(forked.iter().map(|c| c.pid()));
            std::mem::forget(forked);
            let code = if !own_children().is_empty() || ended.is_err() {
                1
            } else if !pids.iter().all(|&pid| gone(pid)) {
                2
            } else if !gone(grandchild) {
                3
            } else if fork_child(|| 0).is_ok() {
                4
            } else {
                0
            };
            if code == 3 {
                // SAFETY: kill has no memory-safety preconditions; the
                // grandchild, left to init, is not reaped, so its pid is
                // still its own.
                unsafe { libc::kill(grandchild, libc::SIGKILL) };
            }
            code
        })
        .unwrap();
        assert_eq!(tester.wait().unwrap(), ChildExit::Exited(0));
    }

    /// A child that cannot be reaped in time: a zombie traced by another
    /// process is that tracer's to wait for first, and until then its
    /// parent cannot reap it, however long it waits (as a child in
    /// uninterruptible sleep holds its parent). `end_children` names it
    /// instead of waiting forever, and reaps it once the tracer lets go.
    ///
    /// This test process is the tracer; the parent ("ender") is a forked
    /// child that calls `end_children` and reports over a socket. The
    /// socket's read timeout is the watchdog: an `end_children` that waits
    /// forever fails the test instead of hanging it.
    #[test]
    fn a_child_that_cannot_be_reaped_is_named_not_waited_for() {
        let (mut here, mut there) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut ender = fork_child(move || {
            let held = fork_child(|| {
                loop {
                    std::thread::park();
                }
            })
            .unwrap();
            let held_pid = held.pid();
            std::mem::forget(held); // left to `end_children`
            there.write_all(&held_pid.to_le_bytes()).unwrap();
            let mut go = [0u8];
            there.read_exact(&mut go).unwrap(); // traced now
            let first = end_children(Duration::from_millis(200));
            let named = first
                == Err(EndChildrenError::Unreaped {
                    pids: vec![held_pid],
                });
            there.write_all(&[u8::from(named)]).unwrap();
            there.read_exact(&mut go).unwrap(); // the tracer has let go
            let second = end_children(Duration::from_secs(30));
            if second.is_ok() && own_children().is_empty() {
                0
            } else {
                3
            }
        })
        .unwrap();
        let mut pid = [0u8; 4];
        here.read_exact(&mut pid).unwrap();
        let held = i32::from_le_bytes(pid);
        // SAFETY: PTRACE_SEIZE takes no pointers (address and data null);
        // `held` is a live descendant of this process, not reaped (its
        // parent waits for our go).
        let seized = unsafe {
            libc::ptrace(
                libc::PTRACE_SEIZE,
                held,
                std::ptr::null_mut::<libc::c_void>(),
                0,
            )
        };
        assert_eq!(seized, 0, "PTRACE_SEIZE: {}", io::Error::last_os_error());
        here.write_all(&[1]).unwrap();
        here.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut named = [0u8];
        let reported = here.read_exact(&mut named);
        // Let go of it in every case, so nothing is left behind: make sure
        // it is dead, then wait for it as its tracer, which hands it back
        // to its parent.
        // SAFETY: kill has no memory-safety preconditions; `held` is not
        // reaped (its zombie is ours to wait for first), so it names it.
        unsafe { libc::kill(held, libc::SIGKILL) };
        // SAFETY: a null status pointer is allowed; `held` is our tracee.
        let waited = unsafe { libc::waitpid(held, std::ptr::null_mut(), libc::__WALL) };
        assert_eq!(waited, held);
        let _ = here.write_all(&[1]);
        let ended = ender.wait_timeout(Duration::from_secs(60)).unwrap();
        assert!(
            reported.is_ok(),
            "end_children did not return: {reported:?}"
        );
        assert_eq!(named, [1], "end_children did not name the traced zombie");
        assert_eq!(ended, Some(ChildExit::Exited(0)), "not reaped once let go");
    }
}
