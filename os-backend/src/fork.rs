//! Run a closure in a forked child process, and always reap it.
//!
//! [`fork_child`] forks; the child runs the closure and exits with the code it
//! returns (101 if it panics) through `_exit`, so no destructor or `atexit`
//! handler of the parent's state runs twice. The child asks the kernel for
//! `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`), so it cannot outlive the
//! parent as an orphan. The returned [`ForkedChild`] reaps the child when waited
//! on, and if dropped un-waited kills it with `SIGKILL` and reaps it, so no zombie
//! is left either way.
//!
//! # Fork in a multi-threaded process
//!
//! Only the forking thread exists in the child. If another thread held a lock
//! (the allocator's, stdout's) at the moment of `fork`, that lock stays held in
//! the child forever. The closure should therefore stick to what needs no such
//! lock — atomics, ply-core's queues and locks in shared memory, raw syscalls —
//! unless the parent is known to be single-threaded. (The remedy for a pool of
//! processes is to fork its workers from a single-threaded fork server; this
//! module is the low-level building block.)

use std::io;
use std::time::{Duration, Instant};

/// How a child process ended.
///
/// # Example
///
/// ```
/// use ply_os::fork::{fork_child, ChildExit};
///
/// let child = fork_child(|| 3)?;
/// assert_eq!(child.wait()?, ChildExit::Exited(3));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChildExit {
    /// It exited with this status code.
    Exited(i32),
    /// It was killed by this signal number.
    Signaled(i32),
}

impl ChildExit {
    /// Whether the child exited with code 0.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(ply_os::fork::ChildExit::Exited(0).success());
    /// assert!(!ply_os::fork::ChildExit::Signaled(9).success());
    /// ```
    pub fn success(&self) -> bool {
        *self == ChildExit::Exited(0)
    }

    pub(crate) fn from_wait_status(status: libc::c_int) -> Self {
        if libc::WIFSIGNALED(status) {
            ChildExit::Signaled(libc::WTERMSIG(status))
        } else {
            ChildExit::Exited(libc::WEXITSTATUS(status))
        }
    }
}

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildExit::Exited(code) => write!(f, "exited with code {code}"),
            ChildExit::Signaled(sig) => write!(f, "killed by signal {sig} ({})", signal_name(*sig)),
        }
    }
}

/// The conventional name of a signal number (`"SIGKILL"` for 9), or `"SIG?"`.
///
/// # Example
///
/// ```
/// assert_eq!(ply_os::fork::signal_name(libc::SIGSEGV), "SIGSEGV");
/// assert_eq!(ply_os::fork::ChildExit::Signaled(9).to_string(), "killed by signal 9 (SIGKILL)");
/// ```
pub fn signal_name(sig: i32) -> &'static str {
    const NAMES: &[(i32, &str)] = &[
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGCHLD, "SIGCHLD"),
        (libc::SIGCONT, "SIGCONT"),
        (libc::SIGSTOP, "SIGSTOP"),
        (libc::SIGXCPU, "SIGXCPU"),
        (libc::SIGXFSZ, "SIGXFSZ"),
        (libc::SIGSYS, "SIGSYS"),
    ];
    NAMES
        .iter()
        .find(|&&(n, _)| n == sig)
        .map_or("SIG?", |&(_, name)| name)
}

/// A forked child that has not been reaped yet. Dropping it kills and reaps it.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::fork::{fork_child, ChildExit};
///
/// let mut child = fork_child(|| loop { std::hint::spin_loop() })?;
/// assert_eq!(child.wait_timeout(Duration::from_millis(50))?, None);
/// child.kill(libc::SIGTERM)?;
/// assert_eq!(child.wait()?, ChildExit::Signaled(libc::SIGTERM));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ForkedChild {
    pid: libc::pid_t,
    reaped: bool,
}

/// Forks a child process that runs `f` and exits with the code `f` returns
/// (101 if `f` panics).
///
/// See the module docs for what `f` may safely do in a multi-threaded parent.
///
/// # Errors
///
/// The `fork` error (for example `EAGAIN` at the process limit).
///
/// # Example
///
/// ```
/// let child = ply_os::fork::fork_child(|| if 2 + 2 == 4 { 0 } else { 1 })?;
/// assert!(child.wait()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn fork_child<F: FnOnce() -> i32>(f: F) -> io::Result<ForkedChild> {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: fork has no memory-safety preconditions; the child only runs `f`
    // and then `_exit`s, never returning into the caller's frames.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and has no
            // memory-safety preconditions.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            // The parent may have died before the prctl: then we were re-parented
            // and must not run on as an orphan.
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } != parent {
                // SAFETY: _exit ends this process immediately; always sound.
                unsafe { libc::_exit(102) };
            }
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            // SAFETY: as above; skipping destructors and atexit is the point.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(ForkedChild { pid, reaped: false }),
    }
}

impl ForkedChild {
    /// The child's process id.
    ///
    /// # Example
    ///
    /// ```
    /// let child = ply_os::fork::fork_child(|| 0)?;
    /// assert!(child.pid() > 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for the child to end and reaps it.
    ///
    /// # Errors
    ///
    /// The `waitpid` error (`ECHILD` if something else reaped it).
    ///
    /// # Example
    ///
    /// ```
    /// let child = ply_os::fork::fork_child(|| 7)?;
    /// assert_eq!(child.wait()?, ply_os::fork::ChildExit::Exited(7));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(mut self) -> io::Result<ChildExit> {
        let exit = self
            .waitpid(0)?
            .expect("blocking waitpid returned no status");
        Ok(exit)
    }

    /// Waits up to `timeout` for the child to end; `None` if it is still running.
    ///
    /// # Errors
    ///
    /// The `waitpid` error.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut child = ply_os::fork::fork_child(|| 0)?;
    /// assert!(child.wait_timeout(Duration::from_secs(10))?.is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ChildExit>> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(100);
        loop {
            if let Some(exit) = self.waitpid(libc::WNOHANG)? {
                return Ok(Some(exit));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Sends signal `sig` to the child (a no-op once it has been reaped).
    ///
    /// # Errors
    ///
    /// The `kill` error.
    ///
    /// # Example
    ///
    /// ```
    /// let child = ply_os::fork::fork_child(|| loop { std::hint::spin_loop() })?;
    /// child.kill(libc::SIGKILL)?;
    /// assert_eq!(child.wait()?, ply_os::fork::ChildExit::Signaled(libc::SIGKILL));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn kill(&self, sig: i32) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // un-reaped child, so it cannot have been recycled for another process.
        if unsafe { libc::kill(self.pid, sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reaps the child if it has exited; `None` if it is still running.
    ///
    /// # Errors
    ///
    /// The `waitpid` error (for example `ECHILD` once reaped).
    ///
    /// # Example
    ///
    /// ```
    /// let mut child = ply_os::fork::fork_child(|| 3)?;
    /// let exit = loop {
    ///     if let Some(exit) = child.try_wait()? {
    ///         break exit;
    ///     }
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// };
    /// assert_eq!(exit, ply_os::fork::ChildExit::Exited(3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ChildExit>> {
        self.waitpid(libc::WNOHANG)
    }

    fn waitpid(&mut self, flags: libc::c_int) -> io::Result<Option<ChildExit>> {
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer; the pid is our child.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, flags) };
            if rc == self.pid {
                self.reaped = true;
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

impl Drop for ForkedChild {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.kill(libc::SIGKILL);
            let _ = self.waitpid(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_live_child(pid: i32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn exit_code_and_panic_are_reported() {
        assert_eq!(
            fork_child(|| 5).unwrap().wait().unwrap(),
            ChildExit::Exited(5)
        );
        let panicking = fork_child(|| panic!("boom")).unwrap();
        assert_eq!(panicking.wait().unwrap(), ChildExit::Exited(101));
    }

    #[test]
    fn drop_kills_and_reaps() {
        let child = fork_child(|| {
            loop {
                std::hint::spin_loop()
            }
        })
        .unwrap();
        let pid = child.pid();
        assert!(is_live_child(pid));
        drop(child);
        // Reaped: no /proc entry, not even a zombie.
        assert!(!is_live_child(pid));
    }

    #[test]
    fn wait_timeout_then_signal() {
        let mut child = fork_child(|| {
            loop {
                std::hint::spin_loop()
            }
        })
        .unwrap();
        assert_eq!(child.wait_timeout(Duration::from_millis(20)).unwrap(), None);
        child.kill(libc::SIGTERM).unwrap();
        assert_eq!(
            child.wait_timeout(Duration::from_secs(30)).unwrap(),
            Some(ChildExit::Signaled(libc::SIGTERM))
        );
        assert_eq!(
            format!("{}", ChildExit::Signaled(15)),
            "killed by signal 15 (SIGTERM)"
        );
    }
}
