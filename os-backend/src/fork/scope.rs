//! [`scope`]: forked children that borrow from the caller's stack, as the
//! threads of `std::thread::scope` do.
//!
//! [`fork_child`](super::fork_child) asks `'static` of its closure for the
//! reason `std::thread::spawn` does: the child runs on after the call
//! returns, and a borrow it holds must not end while it runs. A borrow of
//! process-local memory could not hurt the parent (the child reads its own
//! copy), but a borrow into shared memory could: the parent, its borrow
//! ended, could write through a lock guard what the child is reading. A
//! scope ends the children before the borrows: every child forked in it is
//! killed and reaped when the scope ends, unless it was waited for already,
//! even one whose handle was forgotten. This is `std::thread::scope`'s
//! design, with one difference: the end does not wait for the children (a
//! child that never ends would hang the caller), it ends them, as dropping a
//! [`ForkedChild`](super::ForkedChild) does.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::child::Child;
use super::{ChildExit, Signal, fork_raw};

/// Runs `f` with a [`Scope`] in which children may be forked that borrow
/// from the caller; when `f` returns (or panics), every child forked in the
/// scope that has not been waited for is killed (`SIGKILL`) and reaped.
///
/// # Example
///
/// Three children count into a counter on the caller's stack, in shared
/// memory:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use ply_os::{fork, shm::SharedBox};
///
/// let hits = SharedBox::new(AtomicU64::new(0))?;
/// fork::scope(|s| -> std::io::Result<()> {
///     let children = (0..3)
///         .map(|_| s.fork_child(|| { hits.fetch_add(1, Ordering::Relaxed); 0 }))
///         .collect::<std::io::Result<Vec<_>>>()?;
///     for child in children {
///         assert!(child.wait()?.success());
///     }
///     Ok(())
/// })?;
/// assert_eq!(hits.load(Ordering::Relaxed), 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        children: Mutex::new(Vec::new()),
        scope: PhantomData,
        env: PhantomData,
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&scope)));
    // On return or unwind alike, before any borrow of the caller's ends.
    scope.end();
    match outcome {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Children forked here may borrow anything that outlives the scope; see
/// [`scope`].
///
/// # Example
///
/// ```
/// let word = String::from("borrowed");
/// let code = ply_os::fork::scope(|s| {
///     s.fork_child(|| word.len() as i32)?.wait()
/// })?;
/// assert_eq!(code, ply_os::fork::ChildExit::Exited(8));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Scope<'scope, 'env: 'scope> {
    /// Every child forked here whose handle may still be alive (or was
    /// forgotten); ended when the scope is dropped.
    children: Mutex<Vec<Arc<Child>>>,
    /// Invariant over `'scope` and `'env`, as `std::thread::Scope`.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope> Scope<'scope, '_> {
    /// Forks a child that runs `f` and exits with the code it returns
    /// ([`EXIT_PANICKED`](super::EXIT_PANICKED) if it panics). As
    /// [`fork_child`](super::fork_child), but `f` may borrow what outlives
    /// the scope.
    ///
    /// # Errors
    ///
    /// As [`fork_child`](super::fork_child).
    ///
    /// # Example
    ///
    /// ```
    /// let limit = 10;
    /// ply_os::fork::scope(|s| {
    ///     let child = s.fork_child(|| if limit == 10 { 0 } else { 1 })?;
    ///     assert!(child.wait()?.success());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// A `&mut` into shared memory stays borrowed until the scope ends, so
    /// the parent cannot write there while the child does:
    ///
    /// ```compile_fail,E0499
    /// use ply_core::sync::SpinMutex;
    /// let m = ply_os::shm::SharedBox::new(SpinMutex::new(0u64))?;
    /// let mut guard = m.lock();
    /// ply_os::fork::scope(|s| {
    ///     let count: &mut u64 = &mut guard;
    ///     let child = s.fork_child(move || { *count += 1; 0 });
    ///     *guard += 1; // refused: `guard` is borrowed by the child
    ///     drop(child);
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fork_child<F>(&'scope self, f: F) -> io::Result<ScopedChild<'scope>>
    where
        F: FnOnce() -> i32 + Send + 'scope,
    {
        // SAFETY: `f` is `Send`, so what it owns may be dropped by the parent
        // while the child uses its copy (no guard, no permit: those are not
        // `Send`). Its borrows last for `'scope`, and the child is reaped
        // before `'scope` ends (`Scope::end`, which reaches the child
        // through `children` even if its handle was forgotten).
        let child = Arc::new(unsafe { fork_raw(f) }?);
        let mut children = self.children.lock().unwrap_or_else(PoisonError::into_inner);
        // Children whose handle was dropped have been reaped by it.
        children.retain(|c| Arc::strong_count(c) > 1);
        children.push(Arc::clone(&child));
        Ok(ScopedChild {
            child,
            scope: PhantomData,
        })
    }
}

impl Scope<'_, '_> {
    /// Kills and reaps every child not reaped yet.
    fn end(&self) {
        let children =
            std::mem::take(&mut *self.children.lock().unwrap_or_else(PoisonError::into_inner));
        for child in children {
            child.kill_and_reap();
        }
    }
}

/// A child forked in a [`Scope`]. As [`ForkedChild`](super::ForkedChild):
/// dropping it kills and reaps it; the scope's end does so for any left.
///
/// # Example
///
/// ```
/// use ply_os::fork::{ChildExit, Signal, scope};
/// scope(|s| {
///     let child = s.fork_child(|| loop { std::hint::spin_loop() })?;
///     child.kill(Signal::KILL)?;
///     assert_eq!(child.wait()?, ChildExit::Signaled(Signal::KILL));
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping a ScopedChild kills it"]
pub struct ScopedChild<'scope> {
    child: Arc<Child>,
    scope: PhantomData<&'scope ()>,
}

impl ScopedChild<'_> {
    /// The child's process id.
    ///
    /// # Example
    ///
    /// ```
    /// ply_os::fork::scope(|s| {
    ///     let child = s.fork_child(|| 0)?;
    ///     assert!(child.pid() > 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Waits for the child to end and reaps it.
    ///
    /// # Errors
    ///
    /// The `waitpid` or `poll` error.
    ///
    /// # Example
    ///
    /// ```
    /// let exit = ply_os::fork::scope(|s| s.fork_child(|| 7)?.wait())?;
    /// assert_eq!(exit, ply_os::fork::ChildExit::Exited(7));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(self) -> io::Result<ChildExit> {
        self.child.wait()
    }

    /// Waits up to `timeout` for the child to end; `None` if it is still
    /// running.
    ///
    /// # Errors
    ///
    /// The `waitpid` or `poll` error.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// ply_os::fork::scope(|s| {
    ///     let mut child = s.fork_child(|| 0)?;
    ///     assert!(child.wait_timeout(Duration::from_secs(10))?.is_some());
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ChildExit>> {
        self.child.wait_timeout(timeout)
    }

    /// Reaps the child if it has ended; `None` if it is still running.
    ///
    /// # Errors
    ///
    /// The `waitpid` error (`ECHILD` once reaped).
    ///
    /// # Example
    ///
    /// ```
    /// ply_os::fork::scope(|s| {
    ///     let mut child = s.fork_child(|| loop { std::hint::spin_loop() })?;
    ///     assert_eq!(child.try_wait()?, None);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ChildExit>> {
        self.child.try_wait()
    }

    /// Sends `signal` to the child (a no-op once it has been reaped).
    ///
    /// # Errors
    ///
    /// The `pidfd_send_signal` error.
    ///
    /// # Example
    ///
    /// See [`ScopedChild`].
    pub fn kill(&self, signal: Signal) -> io::Result<()> {
        self.child.kill(signal)
    }

    /// A descriptor that turns readable when the child ends.
    ///
    /// # Example
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// ply_os::fork::scope(|s| {
    ///     let child = s.fork_child(|| 0)?;
    ///     assert!(child.pidfd().as_raw_fd() >= 0);
    ///     Ok::<(), std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.child.pidfd()
    }
}

impl AsFd for ScopedChild<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.child.pidfd()
    }
}

impl Drop for ScopedChild<'_> {
    fn drop(&mut self) {
        self.child.kill_and_reap();
    }
}
