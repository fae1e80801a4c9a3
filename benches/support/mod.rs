//! Helpers shared by the benches: pinning threads to CPUs and timing them.
//!
//! Every measured thread pins *itself*, waits at a barrier, and reads the clock
//! itself. (Pinning the calling thread and spawning from it would start the new
//! thread on that CPU, where it may not run to re-pin itself until the next
//! scheduler tick: milliseconds of dead time. And a third thread that reads the
//! clock after the barrier may wake after the work is over.)

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// The CPUs this process may use.
pub fn cpus() -> Vec<usize> {
    ply::os::affinity::allowed_cpus().unwrap_or_default()
}

/// The `k`-th of two distinct CPUs, alternating, or `None` on a one-CPU machine.
pub fn alternating(cpus: &[usize], k: usize) -> Option<usize> {
    (cpus.len() >= 2).then(|| cpus[k % 2])
}

/// Runs `work(t)` on `threads` threads, thread `t` pinned to `cpu_of(t)`, all
/// starting at a barrier; returns the time from the earliest start to the
/// latest end, as the threads measured it.
pub fn timed_threads(
    threads: usize,
    cpu_of: impl Fn(usize) -> Option<usize> + Sync,
    work: impl Fn(usize) + Sync,
) -> Duration {
    let ready = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ready, cpu_of, work) = (&ready, &cpu_of, &work);
                s.spawn(move || {
                    if let Some(cpu) = cpu_of(t) {
                        ply::os::affinity::pin_current_thread(cpu).expect("pin thread");
                    }
                    ready.wait();
                    let start = Instant::now();
                    work(t);
                    (start, Instant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let start = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one thread");
    let end = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one thread");
    end - start
}
