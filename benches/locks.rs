//! Locks and the semaphore: ply beside spin, parking_lot and std, same groups.
//!
//! - `lock_uncontended`: one thread, lock + increment + unlock.
//! - `lock_contended_2t`: two threads pinned to different CPUs increment one
//!   counter under the lock; time per increment (all increments / wall time).
//! - `semaphore_uncontended`: acquire + release of one permit.
//!
//! Run: `cargo bench --bench locks` (about a minute).

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

fn config(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
}

/// The locks under test behind one interface: lock, add one, unlock.
trait CounterLock: Sync {
    fn increment(&self);
}

impl CounterLock for ply::core::sync::SpinMutex<u64> {
    fn increment(&self) {
        *self.lock() += 1;
    }
}
impl CounterLock for ply::core::sync::TicketMutex<u64> {
    fn increment(&self) {
        *self.lock() += 1;
    }
}
impl CounterLock for spin::Mutex<u64> {
    fn increment(&self) {
        *self.lock() += 1;
    }
}
impl CounterLock for parking_lot::Mutex<u64> {
    fn increment(&self) {
        *self.lock() += 1;
    }
}
impl CounterLock for std::sync::Mutex<u64> {
    fn increment(&self) {
        *self.lock().unwrap() += 1;
    }
}

/// Makes a fresh lock of one kind.
type MakeLock = Box<dyn Fn() -> Box<dyn CounterLock>>;

fn locks() -> Vec<(&'static str, MakeLock)> {
    vec![
        (
            "ply::SpinMutex",
            Box::new(|| Box::new(ply::core::sync::SpinMutex::new(0u64))),
        ),
        (
            "ply::TicketMutex",
            Box::new(|| Box::new(ply::core::sync::TicketMutex::new(0u64))),
        ),
        ("spin::Mutex", Box::new(|| Box::new(spin::Mutex::new(0u64)))),
        (
            "parking_lot::Mutex",
            Box::new(|| Box::new(parking_lot::Mutex::new(0u64))),
        ),
        (
            "std::Mutex",
            Box::new(|| Box::new(std::sync::Mutex::new(0u64))),
        ),
    ]
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_uncontended");
    config(&mut g);
    for (name, make) in locks() {
        let lock = make();
        g.bench_function(name, |b| b.iter(|| black_box(&*lock).increment()));
    }
    g.finish();
}

/// Two threads, each pinned to its own CPU, share `iters` increments.
fn contended_run(lock: &dyn CounterLock, iters: u64) -> Duration {
    let cpus = support::cpus();
    support::timed_threads(
        2,
        |t| support::alternating(&cpus, t),
        |_| {
            for _ in 0..iters.div_ceil(2) {
                lock.increment();
            }
        },
    )
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_contended_2t");
    config(&mut g);
    for (name, make) in locks() {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| contended_run(&*make(), iters))
        });
    }
    g.finish();
}

/// A semaphore the way one is built without ply: a count under a mutex, with a
/// condition variable to wait on.
struct CondvarSemaphore {
    permits: std::sync::Mutex<u32>,
    available: std::sync::Condvar,
}

impl CondvarSemaphore {
    fn acquire(&self) {
        let mut p = self.permits.lock().unwrap();
        while *p == 0 {
            p = self.available.wait(p).unwrap();
        }
        *p -= 1;
    }
    fn release(&self) {
        *self.permits.lock().unwrap() += 1;
        self.available.notify_one();
    }
}

fn semaphore(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore_uncontended");
    config(&mut g);
    let ply_sem = ply::core::sync::Semaphore::new(1);
    g.bench_function("ply::Semaphore", |b| {
        b.iter(|| drop(black_box(ply_sem.acquire())))
    });
    let std_sem = CondvarSemaphore {
        permits: std::sync::Mutex::new(1),
        available: std::sync::Condvar::new(),
    };
    g.bench_function("std Mutex+Condvar", |b| {
        b.iter(|| {
            black_box(&std_sem).acquire();
            std_sem.release();
        })
    });
    g.finish();
}

criterion_group!(benches, uncontended, contended, semaphore);
criterion_main!(benches);
