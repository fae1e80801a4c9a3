//! Run a closure in a forked child process, and always reap it.
//!
//! [`fork_child`] forks; the child runs the closure and exits with the code it
//! returns ([`EXIT_PANICKED`] if it panics) through `_exit`, so no destructor
//! or `atexit` handler of the parent's state runs twice. The child asks the
//! kernel for `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`), so it
//! cannot outlive the parent as an orphan. The returned [`ForkedChild`] reaps
//! the child when waited on, and if dropped un-waited kills it with `SIGKILL`
//! and reaps it, so no zombie is left either way. (A killed child the
//! kernel does not let end within a few seconds, in uninterruptible sleep
//! or traced by another process, is handed to a background thread that
//! reaps it when it can, so a drop never waits without a deadline: see
//! `fork/late.rs`.) It also holds a pidfd
//! (Linux 5.3+), which becomes readable when the child ends, so a supervisor
//! can wait for many children and sockets in one `poll`.
//!
//! [`scope`] forks children that may borrow from the caller's stack, as
//! `std::thread::scope` does for threads; every child forked in it is ended
//! (killed, reaped) when the scope ends, if not waited for before.
//!
//! # What the child is given
//!
//! `fork` copies the whole process, so after it there are two copies of the
//! closure and of everything it captured, one in each process. For private
//! memory (heap, stack) that is harmless: each process has its own. For
//! memory shared between them (`MAP_SHARED`: [`shm::SharedBox`],
//! [`ipc::ProcessQueue`], ...) a value that stands for a *claim* there — a
//! lock guard, a semaphore permit, a producer role — would be held twice.
//! Capture one in the child's closure, and the parent's copy, dropped in the
//! parent, unlocks the lock while the child is inside its critical section:
//! two processes in one critical section, from safe code. The rules that
//! make this impossible:
//!
//! - The child runs its copy of the closure and leaves with `_exit`; nothing
//!   else of the parent's (other locals, statics) is dropped in it.
//! - The parent drops its copy right after the fork, as a thread that has
//!   moved a value away no longer has it: a socket or pipe end moved into the
//!   closure is closed in the parent (the child's stays open), a
//!   `SharedBox` moved in is unmapped in the parent (not in the child).
//! - So the closure is `Send`, and ply's claims are not: the guards of
//!   ply-core's `SpinMutex`, `TicketMutex`, `RwLock` and `RobustMutex` (as
//!   std's and parking_lot's) and of [`ipc::SharedArray`], `Semaphore`'s
//!   `Permit`, the `spmc` ring's `Producer`. The compiler refuses them, as
//!   `std::thread::spawn` refuses a `MutexGuard`; nor are they
//!   [`ShmSafe`](ply_core::ShmSafe), so none can be put in shared memory
//!   either. A lock the parent holds across the fork stays the parent's: the
//!   child that wants it waits for the parent to let go
//!   (`tests/fork_lock_held.rs`).
//! - And the closure is `'static`, as for `std::thread::spawn`, unless it is
//!   forked in a [`scope`]. A borrow must not end while the child runs: the
//!   parent could then write, through a guard it holds, the shared memory
//!   the child reads through that borrow.
//!
//! Every ply API that runs the caller's code in a forked child keeps these
//! rules: [`fork_child`], [`Scope::fork_child`], [`ipc::fork_duplex`],
//! [`process::map_slice`], [`process::map_slice_plain`] and [`process::reduce`] (whose
//! closures and inputs are `Send`, and whose workers never drop them), and
//! [`ProcessPoolBuilder::build_forking`](crate::process::ProcessPoolBuilder::build_forking)
//! (a `Send + 'static` handler).
//!
//! What no bound can see, and is yours to avoid:
//!
//! - A `&mut` into shared memory inside a *process-local* lock
//!   (`Arc<std::sync::Mutex<&mut T>>`, a `RefCell`) given to several
//!   children: each locks its own copy of the lock, so the lock excludes
//!   nobody. Keep exclusive access to shared memory in locks that live there
//!   (a ply-core lock in a `SharedBox`).
//! - Statics and thread-locals: the child has the forking thread's copies. A
//!   guard stashed in one before the fork is reachable in the child.
//! - Types of your own that are `Send` and release something in shared
//!   memory when dropped: make them `!Send` (a `PhantomData<*const ()>`
//!   field), as ply's are.
//!
//! [`shm::SharedBox`]: crate::shm::SharedBox
//! [`ipc::ProcessQueue`]: crate::ipc::ProcessQueue
//! [`ipc::fork_duplex`]: crate::ipc::fork_duplex
//! [`ipc::SharedArray`]: crate::ipc::SharedArray
//! [`process::map_slice`]: crate::process::map_slice
//! [`process::map_slice_plain`]: crate::process::map_slice_plain
//! [`process::reduce`]: crate::process::reduce
//!
//! # Fork in a multi-threaded process
//!
//! Only the forking thread exists in the child. A lock another thread held at
//! the moment of `fork` stays held in the child forever. `fork_child` takes
//! the process-wide locks of Rust's standard library that a child is likely
//! to need, stdout's and stderr's, across the fork and releases them on both
//! sides, and glibc does the same for its allocator: so a child may print and
//! allocate even while other threads of the parent print and allocate. A lock
//! of the program's own (a `static Mutex`) that another thread held at the
//! fork cannot be repaired: the closure must not wait for such a lock unless
//! the parent is known to be single-threaded. The process APIs built on this
//! (`process::map_slice` and friends) detect such a stall and report it; see
//! `process::ThreadPolicy`.
//!
//! # Signals
//!
//! Signals are [`Signal`]s, rustix's type, re-exported here: it names every
//! signal the kernel can deliver, real-time ones included (where nix's enum
//! has no value for those), and rustix is also the crate ply uses for pidfds.

mod child;
mod children;
mod end;
mod late;
mod locks;
mod scope;

use child::Child;
pub use children::children_of;
pub(crate) use children::own_children;
pub(crate) use end::ForkPermit;
pub use end::{EndChildrenError, end_children, stop_forking};
pub(crate) use locks::{ForkLocks, other_threads};
pub use scope::{Scope, ScopedChild, scope};

use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

pub use rustix::process::Signal;

/// The exit code of a forked child whose closure panicked.
///
/// # Example
///
/// ```
/// use ply_os::fork::{EXIT_PANICKED, ChildExit, fork_child};
/// let child = fork_child(|| panic!("no"))?;
/// assert_eq!(child.wait()?, ChildExit::Exited(EXIT_PANICKED));
/// # Ok::<(), std::io::Error>(())
/// ```
pub const EXIT_PANICKED: i32 = 101;

/// The exit code of a forked child whose parent died before it could start.
///
/// # Example
///
/// ```
/// assert_eq!(ply_os::fork::EXIT_ORPHANED, 102);
/// ```
pub const EXIT_ORPHANED: i32 = 102;

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
#[serde(into = "RawExit", try_from = "RawExit")]
pub enum ChildExit {
    /// It exited with this status code.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(Signal),
}

impl ChildExit {
    /// Whether the child exited with code 0.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::fork::{ChildExit, Signal};
    /// assert!(ChildExit::Exited(0).success());
    /// assert!(!ChildExit::Signaled(Signal::KILL).success());
    /// ```
    pub fn success(&self) -> bool {
        *self == ChildExit::Exited(0)
    }

    /// Decodes a `waitpid` status of a child that ended.
    pub(crate) fn from_wait_status(status: libc::c_int) -> Self {
        if libc::WIFSIGNALED(status) {
            ChildExit::Signaled(signal_from_kernel(libc::WTERMSIG(status)))
        } else {
            ChildExit::Exited(libc::WEXITSTATUS(status))
        }
    }
}

/// A signal number the kernel reported (a wait status, `siginfo`): valid by
/// construction, so it can be wrapped without a check of its own.
pub(crate) fn signal_from_kernel(raw: i32) -> Signal {
    match Signal::from_named_raw(raw) {
        Some(signal) => signal,
        // SAFETY: `raw` came from the kernel as the signal that ended a
        // process, so it is a valid, non-zero signal number. A real-time one
        // is only ever displayed, never sent or blocked, as rustix requires
        // of libc-reserved numbers.
        None => unsafe { Signal::from_raw_unchecked(raw.max(1)) },
    }
}

/// [`ChildExit`] on the wire: `(0, code)` or `(1, signal number)`.
#[derive(serde::Serialize, serde::Deserialize)]
struct RawExit(u8, i32);

impl From<ChildExit> for RawExit {
    fn from(exit: ChildExit) -> Self {
        match exit {
            ChildExit::Exited(code) => RawExit(0, code),
            ChildExit::Signaled(signal) => RawExit(1, signal.as_raw()),
        }
    }
}

impl TryFrom<RawExit> for ChildExit {
    type Error = String;
    fn try_from(raw: RawExit) -> Result<Self, String> {
        match raw {
            RawExit(0, code) => Ok(ChildExit::Exited(code)),
            // Linux's signals are 1 to 64 (SIGRTMAX).
            RawExit(1, sig @ 1..=64) => Ok(ChildExit::Signaled(signal_from_kernel(sig))),
            RawExit(tag, value) => Err(format!("not an exit status: ({tag}, {value})")),
        }
    }
}

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildExit::Exited(code) => write!(f, "exited with code {code}"),
            ChildExit::Signaled(sig) => write!(
                f,
                "killed by signal {} ({})",
                sig.as_raw(),
                signal_name(*sig)
            ),
        }
    }
}

/// The conventional name of a signal (`"SIGKILL"`), or `"SIGRTMIN+n"` for a
/// real-time one.
///
/// # Example
///
/// ```
/// use ply_os::fork::{ChildExit, Signal, signal_name};
/// assert_eq!(signal_name(Signal::SEGV), "SIGSEGV");
/// assert_eq!(ChildExit::Signaled(Signal::KILL).to_string(), "killed by signal 9 (SIGKILL)");
/// ```
pub fn signal_name(sig: Signal) -> Cow<'static, str> {
    const NAMES: &[(Signal, &str)] = &[
        (Signal::HUP, "SIGHUP"),
        (Signal::INT, "SIGINT"),
        (Signal::QUIT, "SIGQUIT"),
        (Signal::ILL, "SIGILL"),
        (Signal::TRAP, "SIGTRAP"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::BUS, "SIGBUS"),
        (Signal::FPE, "SIGFPE"),
        (Signal::KILL, "SIGKILL"),
        (Signal::USR1, "SIGUSR1"),
        (Signal::SEGV, "SIGSEGV"),
        (Signal::USR2, "SIGUSR2"),
        (Signal::PIPE, "SIGPIPE"),
        (Signal::ALARM, "SIGALRM"),
        (Signal::TERM, "SIGTERM"),
        (Signal::CHILD, "SIGCHLD"),
        (Signal::CONT, "SIGCONT"),
        (Signal::STOP, "SIGSTOP"),
        (Signal::TSTP, "SIGTSTP"),
        (Signal::TTIN, "SIGTTIN"),
        (Signal::TTOU, "SIGTTOU"),
        (Signal::URG, "SIGURG"),
        (Signal::XCPU, "SIGXCPU"),
        (Signal::XFSZ, "SIGXFSZ"),
        (Signal::VTALARM, "SIGVTALRM"),
        (Signal::PROF, "SIGPROF"),
        (Signal::WINCH, "SIGWINCH"),
        (Signal::IO, "SIGIO"),
        (Signal::POWER, "SIGPWR"),
        (Signal::SYS, "SIGSYS"),
    ];
    match NAMES.iter().find(|&&(s, _)| s == sig) {
        Some(&(_, name)) => Cow::Borrowed(name),
        None => {
            let rtmin = libc::SIGRTMIN();
            if sig.as_raw() >= rtmin {
                Cow::Owned(format!("SIGRTMIN+{}", sig.as_raw() - rtmin))
            } else {
                Cow::Owned(format!("signal {}", sig.as_raw()))
            }
        }
    }
}

/// A forked child that has not been reaped yet. Dropping it kills and reaps
/// it (a child still not ended 5 s after `SIGKILL` is reaped by a
/// background thread once the kernel lets it end, not by the drop).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::fork::{fork_child, ChildExit, Signal};
///
/// let mut child = fork_child(|| loop { std::hint::spin_loop() })?;
/// assert_eq!(child.wait_timeout(Duration::from_millis(50))?, None);
/// child.kill(Signal::TERM)?;
/// assert_eq!(child.wait()?, ChildExit::Signaled(Signal::TERM));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping a ForkedChild kills it"]
pub struct ForkedChild {
    child: Child,
}

/// Forks a child process that runs `f` and exits with the code `f` returns
/// ([`EXIT_PANICKED`] if `f` panics).
///
/// `f` moves to the child as a closure moves to a thread with
/// `std::thread::spawn`, with the same bounds, for the reasons given in the
/// [module docs](self#what-the-child-is-given): it is `Send` (so it holds no
/// lock guard or permit, whose copy would be released by the parent while
/// the child uses it) and `'static` (so it borrows nothing the parent could
/// change after this call returns). To let children borrow from the
/// caller's stack, fork them in a [`scope`].
///
/// Stdout's and stderr's locks are taken across the fork (see the module
/// docs), so the call waits while another thread is in the middle of a print.
///
/// # Errors
///
/// The `fork` error (for example `EAGAIN` at the process limit), or the
/// `pidfd_open` error on a kernel older than 5.3.
///
/// # Example
///
/// ```
/// let child = ply_os::fork::fork_child(|| if 2 + 2 == 4 { 0 } else { 1 })?;
/// assert!(child.wait()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A lock guard cannot be handed to a child:
///
/// ```compile_fail,E0277
/// use ply_core::sync::SpinMutex;
/// static COUNT: SpinMutex<u64> = SpinMutex::new(0);
/// let mut guard = COUNT.lock();
/// let child = ply_os::fork::fork_child(move || {
///     *guard += 1; // the parent's copy of `guard` would unlock meanwhile
///     0
/// });
/// ```
pub fn fork_child<F>(f: F) -> io::Result<ForkedChild>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    // SAFETY: `f` is `Send` and `'static`: what it holds may move to another
    // thread of execution, and it borrows nothing that outlives this call
    // except `'static` data, which the parent can no longer mutate through a
    // unique borrow. That is what `fork_unchecked` asks.
    unsafe { fork_unchecked(f) }
}

/// [`fork_child`] without its bounds, for ply's own workers, which borrow
/// from their caller's frames and are reaped before those end.
///
/// # Safety
///
/// As [`fork_raw`].
pub(crate) unsafe fn fork_unchecked<F: FnOnce() -> i32>(f: F) -> io::Result<ForkedChild> {
    // SAFETY: the caller's contract is `fork_raw`'s.
    let child = unsafe { fork_raw(f) }?;
    Ok(ForkedChild { child })
}

/// Forks a child process that runs `f` and `_exit`s with its code; the
/// parent drops its own copy of `f` at once.
///
/// # Safety
///
/// After the fork, `f` exists twice: the child runs its copy (and drops what
/// that copy owns as it returns), the parent drops its copy right away.
/// Whatever `f` reaches in memory shared between the two processes must
/// allow that, as if `f` had been sent to another thread: nothing `f` owns
/// may release, when dropped in the parent, something the child still uses
/// (a lock guard, a semaphore permit, a producer role), and every borrow `f`
/// captures must stay valid, and not be mutated by the parent through a
/// unique borrow, for as long as the child may run. `F: Send + 'static`
/// (checked by [`fork_child`]) or a [`scope`] (which reaps its children
/// before its borrows end) is enough.
unsafe fn fork_raw<F: FnOnce() -> i32>(f: F) -> io::Result<Child> {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let locks = ForkLocks::acquire();
    // Counted from here until the child is in our charge (its pidfd taken),
    // so that `stop_forking` can wait for it; taken after the locks, whose
    // wait could be long, and refused once the process is ending.
    let permit = ForkPermit::enter()?;
    // SAFETY: fork has no memory-safety preconditions; the child only runs `f`
    // and then `_exit`s, never returning into the caller's frames. What `f`
    // holds is this function's caller's to justify (see # Safety).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            permit.forget_in_child();
            drop(locks);
            // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and has no
            // memory-safety preconditions.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            // The parent may have died before the prctl: then we were re-parented
            // and must not run on as an orphan.
            // SAFETY: getppid has no preconditions.
            if unsafe { libc::getppid() } != parent {
                // SAFETY: _exit ends this process immediately; always sound.
                unsafe { libc::_exit(EXIT_ORPHANED) };
            }
            let code =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(EXIT_PANICKED);
            // SAFETY: as above; skipping destructors and atexit is the point.
            unsafe { libc::_exit(code) }
        }
        pid => {
            drop(locks);
            // Race-free: the child cannot be reaped (and its pid reused)
            // before this process waits for it (`end_children` reaps only
            // once the permit is dropped).
            let child = Child::adopt(pid);
            drop(permit);
            child
        }
    }
}

impl ForkedChild {
    /// Takes charge of `pid`, a child of this process started another way
    /// (by `std::process::Command`) and not yet reaped: it will be reaped, or
    /// killed and reaped on drop, as a forked one.
    pub(crate) fn adopt(pid: libc::pid_t) -> io::Result<ForkedChild> {
        Child::adopt(pid).map(|child| ForkedChild { child })
    }

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
        self.child.pid()
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
    pub fn wait(self) -> io::Result<ChildExit> {
        self.child.wait()
    }

    /// Waits up to `timeout` for the child to end; `None` if it is still running.
    ///
    /// # Errors
    ///
    /// The `waitpid` or `poll` error.
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
        self.child.wait_timeout(timeout)
    }

    /// Sends `signal` to the child (a no-op once it has been reaped).
    ///
    /// # Errors
    ///
    /// The `kill` error.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::fork::{ChildExit, Signal, fork_child};
    /// let child = fork_child(|| loop { std::hint::spin_loop() })?;
    /// child.kill(Signal::KILL)?;
    /// assert_eq!(child.wait()?, ChildExit::Signaled(Signal::KILL));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn kill(&self, signal: Signal) -> io::Result<()> {
        // Through the pidfd: it names this process and no other, ever.
        self.child.kill(signal)
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
        self.child.try_wait()
    }

    /// A descriptor that turns readable (`POLLIN`) when the child ends, for
    /// waiting on many children and sockets at once.
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let child = ply_os::fork::fork_child(|| 0)?;
    /// assert!(child.pidfd().as_raw_fd() >= 0);
    /// # drop(child);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.child.pidfd()
    }
}

impl AsFd for ForkedChild {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.child.pidfd()
    }
}

impl Drop for ForkedChild {
    fn drop(&mut self) {
        self.child.kill_and_reap_or_hand_over();
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
        assert_eq!(panicking.wait().unwrap(), ChildExit::Exited(EXIT_PANICKED));
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
        child.kill(Signal::TERM).unwrap();
        assert_eq!(
            child.wait_timeout(Duration::from_secs(30)).unwrap(),
            Some(ChildExit::Signaled(Signal::TERM))
        );
        assert_eq!(
            format!("{}", ChildExit::Signaled(Signal::TERM)),
            "killed by signal 15 (SIGTERM)"
        );
    }
}
