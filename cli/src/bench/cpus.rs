//! Choosing and pinning CPUs for the benchmark threads.

use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Two distinct CPUs this process may use, or `None` on a one-CPU machine.
pub fn pair() -> Option<(usize, usize)> {
    let cpus = ply_os::affinity::allowed_cpus().unwrap_or_default();
    (cpus.len() >= 2).then(|| (cpus[0], cpus[1]))
}

/// Pins the calling thread to `cpu`, if given. Best effort: an unpinned run is
/// still a valid (if optimistic) run.
pub fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let _ = ply_os::affinity::pin_current_thread(cpu);
    }
}

/// Runs `work(t)` on `threads` threads, thread `t` pinned to the `t`-th CPU of
/// `pair` (alternating), all starting together at a barrier after pinning.
/// Returns the time from the earliest start to the latest end, as each thread
/// measured it (a separate timing thread could wake after the work is over).
pub fn timed_threads(
    threads: usize,
    pair: Option<(usize, usize)>,
    work: impl Fn(usize) + Sync,
) -> Duration {
    let ready = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ready, work) = (&ready, &work);
                s.spawn(move || {
                    pin(pair.map(|(a, b)| if t % 2 == 0 { a } else { b }));
                    ready.wait();
                    let start = Instant::now();
                    work(t);
                    (start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("benchmark thread panicked"))
            .collect()
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
