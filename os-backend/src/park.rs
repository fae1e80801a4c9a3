//! [`FutexPark`]: ply-core's [`Park`] seam on Linux futexes.
//!
//! A waiter sleeps in the kernel (`FUTEX_WAIT`) until the word changes and
//! someone calls `FUTEX_WAKE` on it, so an idle semaphore or event costs no CPU.
//! The kernel checks `*word == expected` atomically with going to sleep, which
//! is what makes ply-core's "register, re-check, wait" free of lost wake-ups.
//!
//! The futex is *shared* (no `FUTEX_PRIVATE_FLAG`): the kernel keys it by the
//! physical page, so it works between processes on a `MAP_SHARED` mapping as
//! well as between threads (at a small cost over a private futex).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use ply_core::sync::Park;

/// Waits by sleeping on a Linux futex; wakes with `FUTEX_WAKE`.
///
/// # Example
///
/// A semaphore whose waiters sleep instead of spinning:
///
/// ```
/// use ply_core::sync::Semaphore;
/// use ply_os::park::FutexPark;
///
/// let sem = Semaphore::with_park(0, FutexPark);
/// std::thread::scope(|s| {
///     s.spawn(|| sem.release(1));
///     drop(sem.acquire()); // sleeps in the kernel until the release
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FutexPark;

impl FutexPark {
    /// Sleeps while `*word == expected`, for at most `timeout`. May return
    /// early (a wake-up, a signal, or the word already differing): callers
    /// re-check their condition and their deadline.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::atomic::AtomicU32;
    /// use std::time::{Duration, Instant};
    /// let word = AtomicU32::new(0);
    /// let start = Instant::now();
    /// ply_os::park::FutexPark::wait_timeout(&word, 0, Duration::from_millis(20));
    /// assert!(start.elapsed() >= Duration::from_millis(1)); // it slept
    /// ```
    pub fn wait_timeout(word: &AtomicU32, expected: u32, timeout: Duration) {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        Self::futex_wait(word, expected, &ts);
    }

    /// `FUTEX_WAIT` with a relative timeout (null: none). Errors (EAGAIN: the
    /// word already differs; EINTR: a signal; ETIMEDOUT) are early returns,
    /// which every caller allows for: they re-check.
    fn futex_wait(word: &AtomicU32, expected: u32, timeout: *const libc::timespec) {
        // SAFETY: the pointer comes from a live, aligned `&AtomicU32`, which the
        // kernel reads atomically; `timeout` is null or points at a live timespec.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                timeout,
            );
        }
    }

    fn wake(word: &AtomicU32, count: i32) {
        // SAFETY: FUTEX_WAKE only uses the address as a key (it never writes
        // through it); the pointer comes from a live `&AtomicU32`.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, count);
        }
    }
}

impl Park for FutexPark {
    fn wait(&self, word: &AtomicU32, expected: u32) {
        Self::futex_wait(word, expected, std::ptr::null());
    }

    fn wake_one(&self, word: &AtomicU32) {
        Self::wake(word, 1);
    }

    fn wake_all(&self, word: &AtomicU32) {
        Self::wake(word, i32::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::scope;
    use crate::shm::SharedBox;
    use ply_core::sync::{Event, Semaphore};
    use std::time::{Duration, Instant};

    fn state_of(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    #[test]
    fn a_waiting_process_sleeps_until_released() {
        let sem = SharedBox::new(Semaphore::with_park(0, FutexPark)).unwrap();
        scope(|s| {
            let mut child = s
                .fork_child(|| {
                    sem.acquire().forget();
                    0
                })
                .unwrap();
            // The child must reach the kernel sleep ('S'), not spin ('R').
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let state = state_of(child.pid());
                if state == Some('S') {
                    // Stays asleep: sample a few times.
                    std::thread::sleep(Duration::from_millis(20));
                    if state_of(child.pid()) == Some('S') {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "child never slept: {state:?}");
                std::thread::sleep(Duration::from_millis(2));
            }
            sem.release(1);
            let exit = child.wait_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(exit.map(|e| e.success()), Some(true));
        });
        assert_eq!(sem.available(), 0);
    }

    #[test]
    fn event_wakes_every_sleeping_thread() {
        let event = Event::with_park(FutexPark);
        let woken = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    event.wait();
                    woken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
            std::thread::sleep(Duration::from_millis(20));
            event.set();
        });
        assert_eq!(woken.into_inner(), 4);
    }
}
