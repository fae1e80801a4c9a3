//! Processes beside threads, and ply's process pool and fork-join map beside
//! the sequential baseline; `benches/python/process_bench.py` runs the same
//! workloads with Python's `multiprocessing.Pool` and `ProcessPoolExecutor`.
//!
//! - `spawn`: start and stop one worker: `fork` + `waitpid` vs thread spawn + join.
//! - `pool_round_trip`: one request at a time through a persistent pool
//!   (`u64` in, `u64` out), beside two-process peers measured in the same
//!   run (`peers/mod.rs`): a blocking pipe ping-pong of 8 bytes (the row of
//!   `perf bench sched pipe`), `ipc-channel`'s sender/receiver pair, and a
//!   shared-memory spin ping-pong, the floor no IPC can beat.
//! - `pool_round_trip_after_idle`: the same, but each round trip comes after
//!   a sleep past every spin window, so the parties wake from the kernel;
//!   each sample is the median of its round trips (see `after_idle`).
//! - `map_1m_trivial`: x + 1 over 1,000,000 `u64` (ns per item), in the
//!   default chunks; results of `map_slice_plain` dropped (so recycled) each time.
//! - `map_plain_10_items`: the fixed cost of one fork-join call (two
//!   workers, ten items): forks, sockets, pidfds, reaping.
//! - `primes_1e6_2e6_3e6`: sum of primes ≤ n for n = 1e6, 2e6, 3e6 with two
//!   processes, split finely, vs sequential.
//!
//! Memory per idle worker is measured by `ply bench spawn` (criterion measures
//! time only).
//!
//! Run: `cargo bench --bench process` (about three minutes).

mod peers;
mod workloads;

use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ply::core::partition::Chunking;
use ply::os::fork::fork_child;
use ply::os::process::{
    MapOptions, ProcessPoolBuilder, clear_result_cache, map_slice, map_slice_plain, reduce,
};
use workloads::{PRIME_LIMITS, prime_or_zero};

fn spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("fork + waitpid", |b| {
        b.iter(|| fork_child(|| 0).unwrap().wait().unwrap())
    });
    g.bench_function("thread spawn + join", |b| {
        b.iter(|| std::thread::spawn(|| black_box(1)).join().unwrap())
    });
    g.finish();
}

fn pool_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool_round_trip");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    // The floor: two processes spinning on one shared cache line each.
    let floor = peers::SpinEcho::start().unwrap();
    g.bench_function("shared-memory spin ping-pong (floor)", |b| {
        b.iter(|| black_box(floor.round_trip()))
    });
    drop(floor);
    // Children forked before the pool's threads exist.
    let pipe = peers::PipeEcho::start().unwrap();
    let ipc = peers::IpcEcho::start().unwrap();
    let pool = ProcessPoolBuilder::new()
        .workers(2)
        .build(|x: u64| x + 1)
        .unwrap();
    g.bench_function("pipe ping-pong, 2 processes (8 bytes)", |b| {
        b.iter(|| pipe.round_trip(black_box(7)))
    });
    g.bench_function("ipc-channel ping-pong, 2 processes (u64)", |b| {
        b.iter(|| ipc.round_trip(black_box(7)))
    });
    g.bench_function("ply ProcessPool submit + join", |b| {
        b.iter(|| pool.submit(&black_box(7)).unwrap().join().unwrap())
    });
    g.finish();

    // The first request after every party has gone to sleep: each iteration
    // sleeps past the spin windows (untimed), then times one round trip.
    // About 2,000 round trips per function (the idle sleeps dominate the
    // wall time, about 2.5 s each): with fewer, one preempted round trip
    // moved a whole sample and the interval was as wide as the median.
    let mut g = c.benchmark_group("pool_round_trip_after_idle");
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(100));
    g.measurement_time(Duration::from_secs(2));
    g.bench_function("pipe ping-pong after idle", |b| {
        b.iter_custom(|iters| after_idle(iters, || pipe.round_trip(7)))
    });
    g.bench_function("ply ProcessPool submit + join after idle", |b| {
        b.iter_custom(|iters| after_idle(iters, || pool.submit(&7).unwrap().join().unwrap()))
    });
    g.finish();
}

/// `iters` round trips, each after a sleep past every spin window; reported
/// as `iters` times their median. The median, not the sum: on a shared
/// machine a round trip that another process preempts (for milliseconds)
/// would otherwise move its whole sample, for the pipe and the pool alike.
fn after_idle<T>(iters: u64, round_trip: impl Fn() -> T) -> Duration {
    let mut times: Vec<Duration> = (0..iters)
        .map(|_| {
            std::thread::sleep(peers::IDLE);
            let start = Instant::now();
            black_box(round_trip());
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times
        .get(times.len() / 2)
        .map_or(Duration::ZERO, |m| *m * iters as u32)
}

fn map_trivial(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let mut g = c.benchmark_group("map_1m_trivial");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(N));
    let inputs: Vec<u64> = (0..N).collect();
    // The default chunking (about len / (workers · 8) items per chunk), as
    // Pool.map's default chunksize (len / (workers · 4)) on the Python side.
    let options = MapOptions::new().workers(2);
    g.bench_function("ply map_plain (shared memory)", |b| {
        b.iter(|| map_slice_plain(&inputs, |x| x + 1, &options).unwrap())
    });
    // The first call in a process (or after clear_result_cache) maps fresh
    // pages for its results: shown for honesty, not the steady state.
    g.bench_function("ply map_plain, cold (fresh result mapping)", |b| {
        b.iter_batched(
            clear_result_cache,
            |_| map_slice_plain(&inputs, |x| x + 1, &options).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("ply map (serialized results)", |b| {
        b.iter(|| map_slice(&inputs, |x| x + 1, &options).unwrap())
    });
    g.bench_function("sequential", |b| {
        b.iter(|| {
            black_box(&inputs)
                .iter()
                .map(|x| x + 1)
                .collect::<Vec<u64>>()
        })
    });
    g.finish();
}

fn map_plain_fixed_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("map_plain_10_items");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(5));
    let inputs: Vec<u64> = (0..10).collect();
    let options = MapOptions::new().workers(2);
    g.bench_function("ply map_plain, 2 workers", |b| {
        b.iter(|| map_slice_plain(&inputs, |x| x + 1, &options).unwrap())
    });
    g.bench_function("fork + waitpid, twice", |b| {
        b.iter(|| {
            let children = [fork_child(|| 0).unwrap(), fork_child(|| 0).unwrap()];
            children.map(|c| c.wait().unwrap())
        })
    });
    g.finish();
}

fn primes(c: &mut Criterion) {
    let mut g = c.benchmark_group("primes_1e6_2e6_3e6");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    // All three limits in one fork-join call: each limit's range 0..=n cut
    // into blocks of 4096 numbers, the blocks of all three laid end to end,
    // dearest (largest numbers) first so that the last blocks claimed are
    // short; a worker claims one block at a time and sums it into its
    // limit's lane.
    const BLOCK: usize = 4096;
    let mut blocks: Vec<(usize, Range<usize>)> = PRIME_LIMITS
        .iter()
        .enumerate()
        .flat_map(|(k, &n)| {
            (0..=n)
                .step_by(BLOCK)
                .map(move |lo| (k, lo..(lo + BLOCK).min(n + 1)))
        })
        .collect();
    blocks.sort_by_key(|(_, range)| std::cmp::Reverse(range.start));
    let options = MapOptions::new().workers(2).chunking(Chunking::Fixed(1));
    let block_sum = |b: usize| {
        let (k, range) = &blocks[b];
        let mut sums = [0u64; 3];
        sums[*k] = range.clone().map(prime_or_zero).sum();
        sums
    };
    let add = |a: [u64; 3], b: [u64; 3]| [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
    // A wrong result must never be reported as fast.
    let check = reduce(0..blocks.len(), || [0; 3], block_sum, add, &options).unwrap();
    assert_eq!(
        check,
        PRIME_LIMITS.map(|n| (0..n + 1).map(prime_or_zero).sum::<u64>())
    );
    g.bench_function("ply process reduce (2 processes)", |b| {
        b.iter(|| reduce(0..blocks.len(), || [0; 3], block_sum, add, &options).unwrap())
    });
    g.bench_function("sequential", |b| {
        b.iter(|| PRIME_LIMITS.map(|n| (0..n + 1).map(prime_or_zero).sum::<u64>()))
    });
    g.finish();
}

criterion_group!(
    benches,
    spawn,
    pool_round_trip,
    map_trivial,
    map_plain_fixed_cost,
    primes
);
criterion_main!(benches);
