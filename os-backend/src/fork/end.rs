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
//! - A deadline on the reaping. A child killed with `SIGKILL` ends without
//!   its cooperation (it cannot catch, block or ignore the signal), but on a
//!   loaded machine it may take a while to be scheduled and torn down, and
//!   exiting before it is reaped leaves it behind. [`end_children`] reaps
//!   every child it killed, however long that takes.
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

/// Stops ply's forks ([`stop_forking`], waiting up to `limit` for those in
/// progress), then kills every child of this process with `SIGKILL` and
/// reaps it, until it has none: for a process about to `_exit` while its
/// other threads may still be forking and waiting. Another thread may reap
/// some of the children meanwhile; every one is reaped by someone before
/// this returns. The process becomes a subreaper, so that the children of
/// the children it kills (orphaned then) are killed and reaped too.
///
/// The reaping has no deadline: a child killed with `SIGKILL` cannot delay
/// its end, only the kernel can (scheduling it on a loaded machine, an I/O
/// it must finish first).
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
/// end_children(Duration::from_secs(10));
/// assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn end_children(limit: Duration) {
    stop_forking(limit);
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes a flag, no pointers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    loop {
        // Killed all first, then reaped: they die in parallel.
        let killed: Vec<OwnedFd> = children().into_iter().filter_map(kill_child).collect();
        if killed.is_empty() {
            return;
        }
        for pidfd in &killed {
            // Blocks until it has ended (SIGKILL) and reaps it; an error
            // (ECHILD) means another thread reaped it first.
            let _ = rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), WaitIdOptions::EXITED);
        }
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

/// This process's children, unreaped (zombies included), as listed by each
/// of its threads.
fn children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
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
            while children().len() < 5 {
                std::thread::yield_now();
            }
            let mut pids = vec![zombie.pid(), stubborn.pid(), middle.pid()];
            std::mem::forget((zombie, stubborn, middle));
            end_children(Duration::from_secs(30));
            let forked = forker.join().unwrap();
            pids.extend(forked.iter().map(|c| c.pid()));
            std::mem::forget(forked);
            let code = if !children().is_empty() {
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
}
