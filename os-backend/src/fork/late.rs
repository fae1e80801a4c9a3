//! Reaping children that did not end in time, off the thread that let go of
//! them.
//!
//! Dropping a [`ForkedChild`](super::ForkedChild) kills it (`SIGKILL`) and
//! reaps it. The end of a killed child cannot be delayed by the child, but
//! it can be by the kernel: uninterruptible sleep (a read from a dead FUSE
//! or NFS mount) lasts until the kernel lets go, and a zombie traced by
//! another process is that tracer's to wait for first. A `Drop` that waited
//! for such a child would hold its thread (a pool's shutdown, a program's
//! exit path) without a deadline. So the drop waits a while
//! (5 s, `REAP_PATIENCE` in `child.rs`), then hands the child to this module:
//! one background thread, started when the first such child comes and
//! ending when it has reaped the last, waits for all of them on their
//! pidfds and reaps each as it ends (`waitid(P_PIDFD)`, which names that
//! child and no other, even if its pid were reused). Every child is still
//! reaped, as soon as the kernel allows; none holds the caller.
//!
//! Only a [`ForkedChild`](super::ForkedChild) is handed over: its closure is
//! `'static` and owns what it uses. A scope's children borrow from the
//! caller's stack and must be gone before the scope returns, so a scope
//! waits for them however long that takes.

use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::time::Duration;

use super::end::reap;

/// Children handed over and not reaped yet, and whether the reaper thread
/// runs (it exits, under this lock, once the list is empty).
static LATE: Mutex<(Vec<OwnedFd>, bool)> = Mutex::new((Vec::new(), false));

/// How long the reaper waits on the pidfds at a time. A traced zombie's
/// pidfd is readable at once but it cannot be reaped yet: it is looked at
/// again after this long, not in a busy loop.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Hands `pidfd`'s child (killed, this process's, not reaped) to the
/// reaper thread, starting it if needed. If no thread can be started, the
/// child is left to whoever reaps this process's children later
/// ([`end_children`](super::end_children), or init once this process has
/// exited).
pub(super) fn reap_later(pidfd: OwnedFd) {
    let mut late = LATE.lock().unwrap_or_else(|e| e.into_inner());
    late.0.push(pidfd);
    if late.1 {
        return;
    }
    let started = std::thread::Builder::new()
        .name("ply-late-reaper".into())
        .spawn(reap_until_none_left);
    late.1 = started.is_ok();
}

/// The reaper thread: reaps the children handed over as they end, and
/// exits once there are none.
fn reap_until_none_left() {
    let mut readable_but_kept = false;
    loop {
        let (waiting, stalled) = {
            let mut late = LATE.lock().unwrap_or_else(|e| e.into_inner());
            let before = late.0.len();
            late.0.retain(|pidfd| !reap(pidfd));
            if late.0.is_empty() {
                late.1 = false;
                return;
            }
            // A pidfd was readable and nobody could be reaped: a traced
            // zombie, which stays readable.
            let stalled = readable_but_kept && late.0.len() == before;
            let waiting: Vec<OwnedFd> =
                late.0.iter().filter_map(|fd| fd.try_clone().ok()).collect();
            (waiting, stalled)
        };
        if stalled {
            std::thread::sleep(LOOK_EVERY); // not a busy loop
        }
        // Waits for any of them to end without the lock, so that more can
        // be handed over meanwhile.
        let mut fds: Vec<rustix::event::PollFd<'_>> = waiting
            .iter()
            .map(|fd| rustix::event::PollFd::new(fd, rustix::event::PollFlags::IN))
            .collect();
        let timeout = rustix::event::Timespec::try_from(LOOK_EVERY).ok();
        readable_but_kept = rustix::event::poll(&mut fds, timeout.as_ref()).unwrap_or(0) > 0;
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::test_support::process_state as state_of;

    /// A dropped child that cannot be reaped (a zombie traced by a sibling
    /// process is that tracer's to wait for first, as a child in
    /// uninterruptible sleep is the kernel's) does not hold the drop: it is
    /// handed over, and reaped once the tracer lets go. The drop runs on a
    /// thread watched with a receive timeout, so a drop that waits fails
    /// the test instead of hanging it.
    #[test]
    fn a_dropped_child_that_cannot_be_reaped_does_not_hold_the_drop() {
        let (held, tracer) = crate::test_support::traced_by_a_sibling();
        let pid = held.pid();
        let (done_tx, done) = std::sync::mpsc::channel();
        let dropper = std::thread::spawn(move || {
            drop(held);
            done_tx.send(()).unwrap();
        });
        let returned = done.recv_timeout(Duration::from_secs(60));
        let state = state_of(pid);
        drop(tracer); // ptrace lets go as the tracer ends: the zombie is ours
        dropper.join().unwrap();
        assert!(
            returned.is_ok(),
            "the drop waited for a child it could not reap"
        );
        assert_eq!(
            state,
            Some('Z'),
            "killed, not reaped, when the drop returned"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while state_of(pid).is_some() {
            assert!(Instant::now() < deadline, "the late reaper did not reap it");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
