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
//!
//! [`Until`] is the patience with a clock that ply-core cannot have: bounded
//! waits (`acquire_with`, `wait_with`, …) given an `Until` pass the time left to
//! every `FUTEX_WAIT`, so a sleeping waiter is back by its deadline even if
//! nobody ever wakes it.

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use ply_core::sync::{Park, Patience, SpinPark, Timeout};

/// Waits by sleeping on a Linux futex; wakes with `FUTEX_WAKE`.
///
/// Each wait honours its [`Timeout`]: `Never` sleeps until woken, `After(d)`
/// passes `d` to the kernel (so a bounded wait given a clock-aware patience
/// such as [`Until`] wakes by its deadline), and a zero timeout — what a
/// patience without a clock asks for — spins briefly like [`SpinPark`] and
/// returns without a system call.
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
    fn wait_timeout(&self, word: &AtomicU32, expected: u32, timeout: Timeout) {
        match timeout {
            Timeout::Never => Self::futex_wait(word, expected, std::ptr::null()),
            Timeout::After(d) if d.is_zero() => SpinPark.wait_timeout(word, expected, timeout),
            Timeout::After(d) => {
                let ts = libc::timespec {
                    tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: d.subsec_nanos() as libc::c_long,
                };
                Self::futex_wait(word, expected, &ts);
            }
        }
    }

    fn wake_one(&self, word: &AtomicU32) {
        Self::wake(word, 1);
    }

    fn wake_all(&self, word: &AtomicU32) {
        Self::wake(word, i32::MAX);
    }
}

/// A [`Patience`] with a clock: gives up at a deadline, and lets every park
/// sleep at most until it. With [`FutexPark`], a bounded wait such as
/// `Semaphore::acquire_with(Until::after(d))` sleeps in the kernel and is back
/// by its deadline (plus timer slack), whoever does or does not wake it.
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// use ply_core::sync::Semaphore;
/// use ply_os::park::{FutexPark, Until};
///
/// let sem = Semaphore::with_park(0, FutexPark);
/// let start = Instant::now();
/// assert!(sem.acquire_with(Until::after(Duration::from_millis(20))).is_none());
/// assert!(start.elapsed() >= Duration::from_millis(20));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Until {
    /// `None`: a deadline too far away to represent, i.e. never.
    deadline: Option<Instant>,
}

impl Until {
    /// Gives up at `deadline`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Instant;
    /// use ply_core::sync::Patience;
    /// assert!(!ply_os::park::Until::at(Instant::now()).keep_waiting());
    /// ```
    pub fn at(deadline: Instant) -> Self {
        Until {
            deadline: Some(deadline),
        }
    }

    /// Gives up `timeout` from now (never, if that is past what `Instant` can
    /// represent).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use ply_core::sync::Patience;
    /// assert!(ply_os::park::Until::after(Duration::from_secs(60)).keep_waiting());
    /// ```
    pub fn after(timeout: Duration) -> Self {
        Until {
            deadline: Instant::now().checked_add(timeout),
        }
    }

    /// Never gives up: the unbounded forms, as a patience that still lets each
    /// park sleep without limit.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::sync::{Patience, Timeout};
    /// let mut p = ply_os::park::Until::never();
    /// assert!(p.keep_waiting());
    /// assert_eq!(p.park_timeout(), Timeout::Never);
    /// ```
    pub fn never() -> Self {
        Until { deadline: None }
    }

    /// The deadline (`None`: never).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Instant;
    /// let now = Instant::now();
    /// assert_eq!(ply_os::park::Until::at(now).deadline(), Some(now));
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

impl Patience for Until {
    fn keep_waiting(&mut self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() < d)
    }

    fn park_timeout(&mut self) -> Timeout {
        match self.deadline {
            None => Timeout::Never,
            Some(d) => Timeout::After(d.saturating_duration_since(Instant::now())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::scope;
    use crate::shm::SharedBox;
    use ply_core::sync::{Event, Semaphore};
    use std::time::{Duration, Instant};

    use crate::test_support::process_state as state_of;

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

    /// Runs `wait` on a thread and returns its result, failing the test if it
    /// has not returned within a generous watchdog (a wait that ignores its
    /// deadline sleeps forever, as nothing here wakes it).
    fn returns<R: Send + 'static>(wait: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(wait()).unwrap());
        rx.recv_timeout(Duration::from_secs(30))
            .expect("watchdog: a bounded wait slept past its deadline")
    }

    #[test]
    fn bounded_waits_sleep_no_longer_than_their_deadline() {
        use ply_core::sync::{Barrier, Deadline};
        let short = || Until::after(Duration::from_millis(20));
        // Nothing ever releases, sets or joins these: only the deadline ends the
        // waits, and only if every futex wait carries it.
        assert!(returns(move || {
            let sem = Semaphore::with_park(0, FutexPark);
            sem.acquire_with(short()).is_none()
        }));
        assert!(returns(
            move || !Event::with_park(FutexPark).wait_with(short())
        ));
        assert!(returns(move || {
            Barrier::with_park(2, FutexPark)
                .wait_with(short())
                .is_none()
        }));
        // A deadline without a clock cannot be passed to the kernel: the waits
        // spin between checks instead of sleeping, and still end.
        assert!(returns(move || {
            let end = Instant::now() + Duration::from_millis(20);
            let sem = Semaphore::with_park(0, FutexPark);
            sem.acquire_with(Deadline(|| Instant::now() >= end))
                .is_none()
        }));
    }

    #[test]
    fn until_reports_the_time_left_and_never_for_unrepresentable_deadlines() {
        let mut far = Until::after(Duration::MAX);
        assert_eq!(far.deadline(), None);
        assert!(far.keep_waiting());
        assert_eq!(far.park_timeout(), Timeout::Never);
        let mut soon = Until::after(Duration::from_secs(60));
        assert!(
            matches!(soon.park_timeout(), Timeout::After(d) if d <= Duration::from_secs(60) && !d.is_zero())
        );
        let mut past = Until::at(Instant::now() - Duration::from_millis(1));
        assert!(!past.keep_waiting());
        assert!(past.park_timeout().is_zero());
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
