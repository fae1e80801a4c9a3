//! Telling a worker that waits on a lock nobody will release from one that
//! is merely slow.
//!
//! A child forked while another thread of its parent held a lock inherits the
//! lock held, by a thread that does not exist in the child: the first wait for
//! it never ends. Such a child sleeps in `futex(2)`, uses no CPU and makes no
//! progress. [`StallWatch`] samples exactly that from `/proc/<pid>/stat` (the
//! state and CPU time) and `/proc/<pid>/syscall` (the system call it is blocked
//! in), and reports a stall when all of it has held for the patience given.
//! A worker that computes (CPU time moves), moves on (its progress counter
//! changes) or sleeps in anything but a futex wait is never reported.

use std::time::{Duration, Instant};

use super::KillReason;

/// Watches one worker forked while its parent had other threads.
#[derive(Debug)]
pub(crate) struct StallWatch {
    other_threads: usize,
    patience: Duration,
    /// What was seen last, and since when it has not changed.
    last: Option<(Sample, Instant)>,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Sample {
    progress: u64,
    cpu_ticks: u64,
}

impl StallWatch {
    /// A watch for a worker forked while its parent had `other_threads`
    /// other threads, reporting after `patience` without progress.
    pub(crate) fn new(other_threads: usize, patience: Duration) -> Self {
        StallWatch {
            other_threads,
            patience,
            last: None,
        }
    }

    /// Looks at worker `pid` now; `progress` is any counter the caller has
    /// that moves when the worker gets on (items started, bytes sent).
    /// Returns why to kill it, if it has stalled.
    pub(crate) fn check(&mut self, pid: i32, progress: u64, now: Instant) -> Option<KillReason> {
        let Some((state, cpu_ticks)) = stat(pid) else {
            self.last = None;
            return None;
        };
        let sample = Sample {
            progress,
            cpu_ticks,
        };
        let blocked = matches!(state, 'S' | 'D') && in_futex_wait(pid).unwrap_or(true);
        match self.last {
            Some((seen, since)) if seen == sample && blocked => {
                let after = now.duration_since(since);
                (after >= self.patience).then_some(KillReason::Stalled {
                    other_threads: self.other_threads,
                    after,
                })
            }
            _ => {
                self.last = blocked.then_some((sample, now));
                None
            }
        }
    }
}

/// The scheduler state letter and the CPU time (user + system, in clock
/// ticks) of `pid`.
fn stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": fields after the last ')' start at field 3;
    // utime and stime are fields 14 and 15.
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((state, utime + stime))
}

/// Whether `pid` is blocked in a futex wait; `None` if that cannot be read
/// (`/proc/<pid>/syscall` needs ptrace access, which some systems deny).
fn in_futex_wait(pid: i32) -> Option<bool> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let number: i64 = text.split_whitespace().next()?.parse().ok()?;
    Some(number == libc::SYS_futex || number == libc::SYS_futex_waitv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::fork_child;

    /// A child stuck on a lock held by a thread that does not exist in it is
    /// reported; a child that computes, or sleeps in `nanosleep`, is not.
    #[test]
    fn a_child_blocked_on_an_orphaned_lock_is_a_stall_and_a_busy_one_is_not() {
        static HELD: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let guard = HELD.lock().unwrap();
        // The lock is held by this thread, which the child does not have...
        // but for the child, the owner is this very thread, and std's Mutex is
        // not reentrant: it blocks in a futex wait for good, as a lock held
        // by another thread at the fork would.
        let stuck = fork_child(|| {
            let _never = HELD.lock();
            0
        })
        .unwrap();
        drop(guard);
        let busy = fork_child(|| {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        })
        .unwrap();
        let sleepy = fork_child(|| {
            std::thread::sleep(Duration::from_secs(600));
            0
        })
        .unwrap();
        let patience = Duration::from_millis(200);
        let mut watches = [0, 1, 2].map(|_| StallWatch::new(1, patience));
        let pids = [stuck.pid(), busy.pid(), sleepy.pid()];
        let start = Instant::now();
        let mut stalled = [false; 3];
        while start.elapsed() < Duration::from_secs(3) && !stalled[0] {
            for i in 0..3 {
                if watches[i].check(pids[i], 0, Instant::now()).is_some() {
                    stalled[i] = true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(stalled[0], "the stuck child was not seen");
        assert!(!stalled[1], "a busy child was taken for stalled");
        assert!(!stalled[2], "a sleeping child was taken for stalled");
    }
}
