//! `ply demo counter`: lost updates made visible, without undefined behaviour.
//!
//! Three ways to add 1, N times in all (split evenly across the workers), to
//! one shared counter:
//! - **racy**: an atomic load, then an atomic store of the value + 1. Each
//!   access is atomic (no data race, no UB), but another worker's increment
//!   between the two is overwritten: updates are lost, and we count them.
//! - **locked**: the same load and store under ply's spin lock.
//! - **atomic**: one `fetch_add`.
//!
//! Threads share the counter in the heap; processes in a `MAP_SHARED` page.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ply_core::sync::SpinMutex;
use ply_os::fork::scope;
use ply_os::shm::SharedBox;

use super::{Backend, Outcome};

ply_os::shm::shm_safe! {
    /// The three counters, in memory shared by the workers (`shm_safe!`
    /// checks that each field may be shared between processes).
    struct Counters {
        racy: AtomicU64,
        locked: SpinMutex<u64>,
        atomic: AtomicU64,
    }
}

impl Counters {
    fn new() -> Self {
        Counters {
            racy: AtomicU64::new(0),
            locked: SpinMutex::new(0),
            atomic: AtomicU64::new(0),
        }
    }

    /// One worker's share.
    fn work(&self, n: u64) {
        for _ in 0..n {
            let seen = self.racy.load(Relaxed);
            // Widen the window between load and store a little, as real code
            // (a computation between reading and writing back) would.
            std::hint::spin_loop();
            self.racy.store(seen + 1, Relaxed);
        }
        for _ in 0..n {
            *self.locked.lock() += 1;
        }
        for _ in 0..n {
            self.atomic.fetch_add(1, Relaxed);
        }
    }
}

/// Worker `w`'s share of `n` increments among `workers`.
fn share(n: u64, workers: usize, w: usize) -> u64 {
    let (workers, w) = (workers as u64, w as u64);
    n * (w + 1) / workers - n * w / workers
}

pub fn run(backend: Backend, workers: usize, n: u64) -> Result<Outcome, String> {
    let expected = n;
    let shared = SharedBox::new(Counters::new()).map_err(|e| e.to_string())?;
    match backend {
        Backend::Seq => shared.work(n),
        Backend::Threads => std::thread::scope(|s| {
            for w in 0..workers {
                let shared = &shared;
                s.spawn(move || shared.work(share(n, workers, w)));
            }
        }),
        Backend::Processes => scope(|s| {
            let shared = &shared;
            let children = (0..workers)
                .map(|w| {
                    s.fork_child(move || {
                        shared.work(share(n, workers, w));
                        0
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            for child in children {
                let exit = child.wait().map_err(|e| e.to_string())?;
                if !exit.success() {
                    return Err(format!("a worker {exit}"));
                }
            }
            Ok(())
        })?,
    }
    let racy = shared.racy.load(Relaxed);
    let locked = *shared.locked.lock();
    let atomic = shared.atomic.load(Relaxed);
    if locked != expected || atomic != expected {
        return Err(format!(
            "locked {locked} and atomic {atomic} must both be {expected}"
        ));
    }
    Ok(Outcome::new(
        format!(
            "expected {expected}: racy {racy} (lost {}), locked {locked}, atomic {atomic}",
            expected - racy.min(expected)
        ),
        // Lost updates depend on timing; the safe counters must agree.
        format!("locked {locked}, atomic {atomic}"),
    ))
}
