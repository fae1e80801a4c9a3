//! [`Failure`]: how a worker process failed, in words a user can act on.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::fork::{ChildExit, signal_name};

/// How a worker process failed the task it held.
///
/// # Example
///
/// ```
/// use ply_os::process::Failure;
/// let f = Failure::Signaled { signal: 9, possibly_oom: true };
/// assert_eq!(f.to_string(), "killed by signal 9 (SIGKILL), possibly out of memory");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Killed by a signal (a crash, `abort()`, or someone's `kill`).
    Signaled {
        /// The signal number.
        signal: i32,
        /// `SIGKILL` while the cgroup's `oom_kill` counter went up: most likely
        /// the kernel's out-of-memory killer.
        possibly_oom: bool,
    },
    /// Exited on its own with this code (for example `std::process::exit`).
    Exited(i32),
    /// The task panicked, with this message.
    Panicked(String),
    /// The task ran longer than the timeout; the worker was killed.
    Timeout(Duration),
}

impl Failure {
    /// Describes a child's exit, given the OOM-kill count from before the task.
    pub(crate) fn from_exit(exit: ChildExit, oom_kills_before: Option<u64>) -> Failure {
        match exit {
            ChildExit::Exited(code) => Failure::Exited(code),
            ChildExit::Signaled(signal) => Failure::Signaled {
                signal,
                possibly_oom: signal == libc::SIGKILL
                    && matches!((oom_kills_before, oom_kills()), (Some(a), Some(b)) if b > a),
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Signaled {
                signal,
                possibly_oom,
            } => {
                write!(f, "killed by signal {signal} ({})", signal_name(*signal))?;
                if *possibly_oom {
                    write!(f, ", possibly out of memory")?;
                }
                Ok(())
            }
            Failure::Exited(code) => write!(f, "exited with code {code}"),
            Failure::Panicked(message) => write!(f, "panicked: {message}"),
            Failure::Timeout(after) => write!(f, "timed out after {after:?} and was killed"),
        }
    }
}

/// The OOM kills counted in this process's cgroup (v2 `memory.events`), if
/// readable. The file's path is looked up once per process.
pub(crate) fn oom_kills() -> Option<u64> {
    static EVENTS: OnceLock<Option<PathBuf>> = OnceLock::new();
    let path = EVENTS.get_or_init(|| {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let dir = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
        let path = PathBuf::from(format!("/sys/fs/cgroup{dir}/memory.events"));
        path.exists().then_some(path)
    });
    let events = std::fs::read_to_string(path.as_ref()?).ok()?;
    events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_are_described_with_names() {
        assert_eq!(
            Failure::from_exit(ChildExit::Signaled(libc::SIGSEGV), None).to_string(),
            "killed by signal 11 (SIGSEGV)"
        );
        assert_eq!(
            Failure::from_exit(ChildExit::Exited(3), Some(0)),
            Failure::Exited(3)
        );
        // Without a counter that moved, a SIGKILL is not blamed on memory.
        assert_eq!(
            Failure::from_exit(ChildExit::Signaled(9), None),
            Failure::Signaled {
                signal: 9,
                possibly_oom: false
            }
        );
    }
}
