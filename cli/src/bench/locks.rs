//! `ply bench locks`: lock + unlock rates of ply's locks beside std's `Mutex`,
//! on one thread and with two threads (pinned to different CPUs) contending.

use std::hint::black_box;
use std::sync::Mutex;

use ply_core::sync::{SpinMutex, TicketMutex};

use super::cpus::timed_threads;
use crate::report::{Report, Row};

const RUNS: usize = 5;

/// A lock protecting a counter: lock, add one, unlock.
trait CounterLock: Sync {
    fn increment(&self);
}

impl CounterLock for SpinMutex<u64> {
    fn increment(&self) {
        *self.lock() += 1;
    }
}

impl CounterLock for TicketMutex<u64> {
    fn increment(&self) {
        *self.lock() += 1;
    }
}

impl CounterLock for Mutex<u64> {
    fn increment(&self) {
        // A poisoned lock only means another benchmark thread panicked, which
        // `timed_threads` reports itself.
        *self.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }
}

/// Makes a fresh lock of one kind.
type MakeLock = fn() -> Box<dyn CounterLock>;

/// Runs every comparison `RUNS` times, `ops` lock/unlock pairs each.
pub fn run(ops: u64) -> Report {
    let pair = super::cpus::pair();
    let locks: [(&'static str, MakeLock); 3] = [
        ("ply SpinMutex", || Box::new(SpinMutex::new(0u64))),
        ("ply TicketMutex", || Box::new(TicketMutex::new(0u64))),
        ("std Mutex", || Box::new(Mutex::new(0u64))),
    ];
    let mut rows = Vec::new();
    for (group, threads) in [
        ("1 thread (uncontended)", 1usize),
        ("2 threads contending", 2),
    ] {
        for &(name, make) in &locks {
            rows.push(Row::measure(group, name, RUNS, ops, || {
                let lock = make();
                let per_thread = ops.div_ceil(threads as u64);
                timed_threads(threads, pair, |_| {
                    for _ in 0..per_thread {
                        black_box(&*lock).increment();
                    }
                })
            }));
        }
    }
    Report {
        family: "locks",
        headline: format!(
            "lock + increment + unlock (operations/s), {ops} operations x {RUNS} runs, {}",
            if pair.is_some() {
                "threads pinned to 2 CPUs"
            } else {
                "1 CPU: threads not pinned"
            }
        ),
        params: vec![
            ("operations", ops.into()),
            ("runs", RUNS.into()),
            ("pinned", pair.is_some().into()),
        ],
        rows,
        notes: Vec::new(),
    }
}
