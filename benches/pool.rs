//! The thread pool beside rayon, the `threadpool` crate and std, same groups.
//!
//! Every pool has 2 workers (this machine's core count); none is pinned
//! (rayon's global pool is not, so neither is ply's, for a fair comparison).
//!
//! - `spawn_trivial`: one element = one empty task spawned and run to completion
//!   (`ply submit + join`: submitted, then joined through its handle, in
//!   batches of 1024 so every handle is joined while the next batch waits).
//! - `spawn_trivial_loaded`: the same with one CPU-bound process per core
//!   running beside the benchmark (`sh -c 'while :; do :; done'`), as on a
//!   busy server.
//! - `sum_squares_10m`: Σ x² over a slice of 10,000,000 `u64` (wrapping).
//! - `primes_1e6_2e6_3e6`: the classic workload — for n in 1e6, 2e6, 3e6, the sum
//!   of the primes ≤ n by 6k±1 trial division — split finely.
//!
//! Run: `cargo bench --bench pool` (about two minutes).

mod workloads;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ply::core::partition::Chunking;
use ply::os::thread::ThreadPool;
use rayon::prelude::*;
use workloads::{PRIME_LIMITS, prime_or_zero};

const WORKERS: usize = 2;

fn rayon_pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap()
}

/// Tasks submitted before their handles are joined.
const SUBMIT_BATCH: u64 = 1024;

fn ply_scope_spawn(pool: &ThreadPool, iters: u64) -> Duration {
    let start = Instant::now();
    pool.scope(|s| {
        for _ in 0..iters {
            s.spawn(|| {
                black_box(());
            });
        }
    });
    start.elapsed()
}

fn ply_submit_join(pool: &ThreadPool, iters: u64) -> Duration {
    let mut handles = Vec::with_capacity(SUBMIT_BATCH as usize);
    let start = Instant::now();
    let mut left = iters;
    while left > 0 {
        let batch = left.min(SUBMIT_BATCH);
        handles.extend((0..batch).map(|i| pool.submit(move || black_box(i)).unwrap()));
        for h in handles.drain(..) {
            black_box(h.join().unwrap());
        }
        left -= batch;
    }
    start.elapsed()
}

fn rayon_scope_spawn(pool: &rayon::ThreadPool, iters: u64) -> Duration {
    let start = Instant::now();
    pool.scope(|s| {
        for _ in 0..iters {
            s.spawn(|_| {
                black_box(());
            });
        }
    });
    start.elapsed()
}

fn spawn_trivial(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_trivial");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    let ply_pool = ThreadPool::new(WORKERS).unwrap();
    g.bench_function("ply scope.spawn", |b| {
        b.iter_custom(|iters| ply_scope_spawn(&ply_pool, iters))
    });
    g.bench_function("ply submit + join", |b| {
        b.iter_custom(|iters| ply_submit_join(&ply_pool, iters))
    });
    let rp = rayon_pool();
    g.bench_function("rayon scope.spawn", |b| {
        b.iter_custom(|iters| rayon_scope_spawn(&rp, iters))
    });
    let tp = threadpool::ThreadPool::new(WORKERS);
    g.bench_function("threadpool execute", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                tp.execute(|| {
                    black_box(());
                });
            }
            tp.join();
            start.elapsed()
        })
    });
    g.bench_function("std thread::scope static split", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..WORKERS {
                    s.spawn(|| {
                        for _ in 0..iters / WORKERS as u64 {
                            black_box(());
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

/// One CPU-bound process per core, killed (and reaped) on drop, and killed
/// by the kernel if the bench dies first (`PR_SET_PDEATHSIG`).
struct Hogs(Vec<std::process::Child>);

impl Hogs {
    fn one_per_core() -> Hogs {
        use std::os::unix::process::CommandExt;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let parent = std::process::id();
        let hogs = (0..cores).map(|_| {
            let mut command = std::process::Command::new("sh");
            command.args(["-c", "while :; do :; done"]);
            // SAFETY: runs in the forked child before exec; `prctl`, `getppid`
            // and `_exit` are async-signal-safe; nothing allocates or locks.
            unsafe {
                command.pre_exec(move || {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    if libc::getppid() as u32 != parent {
                        libc::_exit(0); // the bench died before the prctl
                    }
                    Ok(())
                });
            }
            command.spawn().expect("sh")
        });
        Hogs(hogs.collect())
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for hog in &mut self.0 {
            let _ = hog.kill();
            let _ = hog.wait();
        }
    }
}

fn spawn_trivial_loaded(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_trivial_loaded");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    let ply_pool = ThreadPool::new(WORKERS).unwrap();
    let rp = rayon_pool();
    let _hogs = Hogs::one_per_core();
    g.bench_function("ply scope.spawn", |b| {
        b.iter_custom(|iters| ply_scope_spawn(&ply_pool, iters))
    });
    g.bench_function("ply submit + join", |b| {
        b.iter_custom(|iters| ply_submit_join(&ply_pool, iters))
    });
    g.bench_function("rayon scope.spawn", |b| {
        b.iter_custom(|iters| rayon_scope_spawn(&rp, iters))
    });
    g.finish();
}

const N_SQUARES: usize = 10_000_000;

fn sum_squares(c: &mut Criterion) {
    let mut g = c.benchmark_group("sum_squares_10m");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    // A real slice: over a bare range LLVM folds Σ i² into a closed form.
    let data: Vec<u64> = (0..N_SQUARES as u64)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let data = &data;
    let ply_pool = ThreadPool::new(WORKERS).unwrap();
    g.bench_function("ply reduce_slice", |b| {
        b.iter(|| {
            ply_pool.reduce_slice(
                data,
                Chunking::Auto,
                || 0u64,
                |x| x.wrapping_mul(*x),
                u64::wrapping_add,
            )
        })
    });
    let rp = rayon_pool();
    g.bench_function("rayon par_iter", |b| {
        b.iter(|| {
            rp.install(|| {
                data.par_iter()
                    .map(|x| x.wrapping_mul(*x))
                    .reduce(|| 0, u64::wrapping_add)
            })
        })
    });
    g.bench_function("sequential", |b| {
        b.iter(|| {
            black_box(data)
                .iter()
                .fold(0u64, |a, x| a.wrapping_add(x.wrapping_mul(*x)))
        })
    });
    g.finish();
}

fn primes(c: &mut Criterion) {
    let mut g = c.benchmark_group("primes_1e6_2e6_3e6");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    let ply_pool = ThreadPool::new(WORKERS).unwrap();
    g.bench_function("ply reduce (chunks of 4096)", |b| {
        b.iter(|| {
            PRIME_LIMITS.map(|n| {
                ply_pool.reduce(
                    0..n + 1,
                    Chunking::Fixed(4096),
                    || 0,
                    prime_or_zero,
                    |a, b| a + b,
                )
            })
        })
    });
    let rp = rayon_pool();
    g.bench_function("rayon par_iter", |b| {
        b.iter(|| {
            rp.install(|| {
                PRIME_LIMITS.map(|n| (0..n + 1).into_par_iter().map(prime_or_zero).sum::<u64>())
            })
        })
    });
    g.bench_function("sequential", |b| {
        b.iter(|| PRIME_LIMITS.map(|n| (0..black_box(n) + 1).map(prime_or_zero).sum::<u64>()))
    });
    g.finish();
}

criterion_group!(
    benches,
    spawn_trivial,
    spawn_trivial_loaded,
    sum_squares,
    primes
);
criterion_main!(benches);
