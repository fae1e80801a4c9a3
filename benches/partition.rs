//! The chunk dispenser: claims per second with 1 and 2 threads.
//!
//! A claim of ply's `ChunkDispenser` (one `fetch_add`, plus recording the held
//! chunk for crash recovery) beside the bare `fetch_add` on an `AtomicUsize` it
//! is built on, so the group shows what the bookkeeping costs.
//!
//! Run: `cargo bench --bench partition`.

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ply::core::partition::{ChunkDispenser, Fixed};

fn claims(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let mut g = c.benchmark_group(format!("dispenser_claims_{threads}t"));
        g.throughput(Throughput::Elements(1));
        g.sample_size(30);
        g.measurement_time(Duration::from_secs(2));
        g.bench_function("ply::ChunkDispenser", |b| {
            b.iter_custom(|iters| {
                let schedule = Fixed::new(usize::MAX, 1).unwrap();
                let d = ChunkDispenser::<2>::new();
                timed(threads, |t| {
                    for _ in 0..iters.div_ceil(threads as u64) {
                        black_box(d.claim(t, &schedule).unwrap());
                    }
                })
            })
        });
        g.bench_function("AtomicUsize::fetch_add", |b| {
            b.iter_custom(|iters| {
                let next = AtomicUsize::new(0);
                timed(threads, |_| {
                    for _ in 0..iters.div_ceil(threads as u64) {
                        black_box(next.fetch_add(1, Ordering::Relaxed));
                    }
                })
            })
        });
        g.finish();
    }
}

/// Runs `work(t)` on `threads` threads pinned to distinct CPUs; wall time.
fn timed(threads: usize, work: impl Fn(usize) + Sync) -> Duration {
    let cpus = support::cpus();
    support::timed_threads(threads, |t| support::alternating(&cpus, t), work)
}

criterion_group!(benches, claims);
criterion_main!(benches);
