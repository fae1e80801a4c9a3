//! Helpers shared by the fault-injection tests: stopping a forked child at an
//! exact point inside an operation, waiting (under a watchdog) until it is
//! stopped, resuming or killing it, and running the parent's side of a test
//! under a watchdog.
#![allow(dead_code)] // each test file uses its own subset

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ply::os::fork::{ChildExit, ForkedChild, Signal};
use ply_core::fault::{Point, set_hook};

/// How long any wait in these tests may take before the test fails instead of
/// hanging.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// The process state letter from `/proc/<pid>/stat` ('T' = stopped).
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesized command name.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Waits until `child` is stopped (by a signal or a tracer).
pub fn wait_until_stopped(child: &ForkedChild) {
    let deadline = Instant::now() + WATCHDOG;
    while !matches!(proc_state(child.pid()), Some('T' | 't')) {
        assert!(Instant::now() < deadline, "watchdog: child never stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Resumes a stopped child and reaps it.
pub fn finish(mut child: ForkedChild) -> ChildExit {
    child.kill(Signal::CONT).unwrap();
    child
        .wait_timeout(WATCHDOG)
        .unwrap()
        .expect("watchdog: child did not finish after SIGCONT")
}

/// Sends `SIGCONT` to a child until it has exited (it may stop again, at a
/// fault point it has yet to reach), and reaps it.
pub fn resume_until_exit(mut child: ForkedChild) -> ChildExit {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        child.kill(Signal::CONT).unwrap();
        if let Some(exit) = child.wait_timeout(Duration::from_millis(10)).unwrap() {
            return exit;
        }
        assert!(Instant::now() < deadline, "watchdog: child did not finish");
    }
}

/// Kills a child with `SIGKILL` and reaps it.
pub fn kill(mut child: ForkedChild) {
    child.kill(Signal::KILL).unwrap();
    let exit = child
        .wait_timeout(WATCHDOG)
        .unwrap()
        .expect("watchdog: reaping");
    assert_eq!(exit, ChildExit::Signaled(Signal::KILL));
}

/// Reaps a child that must exit on its own, successfully.
pub fn succeeds(mut child: ForkedChild) {
    let exit = child
        .wait_timeout(WATCHDOG)
        .unwrap()
        .expect("watchdog: child did not finish");
    assert!(exit.success(), "child {exit}");
}

/// Stops the calling process (`SIGSTOP` to itself).
pub fn stop_self() {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// The point the hook installed by [`stop_at`] stops at (per process: set in
/// a forked child).
static STOP_AT: Mutex<Option<Point>> = Mutex::new(None);

fn stop_if_there(p: Point) {
    if *STOP_AT.lock().unwrap() == Some(p) {
        stop_self();
    }
}

/// In a forked child: stop this process (`SIGSTOP`) whenever it reaches
/// `point`.
pub fn stop_at(point: Point) {
    *STOP_AT.lock().unwrap() = Some(point);
    set_hook(Some(stop_if_there));
}

/// Runs `f` on a thread and returns its result, failing if it has not
/// finished within the watchdog (the parent's side of a test must not hang,
/// whatever the code under test does).
pub fn finishes<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(WATCHDOG)
        .expect("watchdog: the parent's wait hung")
}

/// A small deterministic generator for timing variations.
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Jitter(seed | 1)
    }

    /// A pause of 0..128 µs.
    pub fn pause(&mut self) {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_micros(self.0 >> 57));
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}
