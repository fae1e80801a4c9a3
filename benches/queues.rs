//! Queue throughput: ply beside its peers, in the same criterion groups.
//!
//! Every group moves `u64` items through a queue of capacity 1024 between
//! threads pinned to distinct CPUs (on a 2-CPU machine: producer on CPU 0,
//! consumer on CPU 1; in the 2P/2C group one producer and one consumer share each
//! CPU). Unpinned threads on a small VM often share one CPU and never contend,
//! which flatters every queue. A criterion "element" is one item moved end to end;
//! each sample spawns the producer thread once and amortizes that over the
//! sample's items. In the MPMC groups a waiting thread spins briefly and then
//! yields (see `wait_a_little`), the same for every queue. ply's `ArrayQueue`
//! appears twice: `push`/`pop` (linearizable: they wait for an operation in
//! flight at their slot, as crossbeam's do) and `try_push`/`try_pop` (never
//! wait; a `Busy` counts as a failed attempt).
//!
//! One item at a time, ply's SPSC ring and rtrb run the same loop
//! (`spsc_transfer`, which also checks FIFO order) three ways: spinning between
//! tries, pinned (`spsc_1p1c`); with an application's backoff, a few growing
//! spin bursts and then `yield_now` (`spsc_1p1c_backoff`); and that backoff
//! with the threads left to the scheduler (`spsc_1p1c_unpinned_backoff`).
//! These groups are bimodal: a run either streams (each side works through a
//! run of items, ~1–3 ns/item) or ping-pongs (the consumer catches up and
//! every item costs cache-line transfers, 10–70 ns/item), and which one a
//! sample lands in decides more than the queue's code does; see BENCHMARKS.md.
//!
//! Run: `cargo bench --bench queues` (about two minutes). Compare the ratios
//! within one run, not absolute numbers across runs.

mod support;

use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

const CAP: usize = 1024;
const BATCH: usize = 64;

/// Runs `produce` and `consume` on two threads pinned to different CPUs and
/// returns the time from their common start to the end of the later one (see
/// `support` for how the threads are pinned and timed).
fn run_pair(produce: impl FnOnce() + Send, consume: impl FnOnce() + Send) -> Duration {
    run_pair_on(true, produce, consume)
}

/// [`run_pair`], with the threads pinned to two CPUs or left to the scheduler.
fn run_pair_on(
    pinned: bool,
    produce: impl FnOnce() + Send,
    consume: impl FnOnce() + Send,
) -> Duration {
    let cpus = if pinned { support::cpus() } else { Vec::new() };
    // One-shot closures, handed to the thread of the matching index.
    let produce = Mutex::new(Some(produce));
    let consume = Mutex::new(Some(consume));
    support::timed_threads(
        2,
        |t| support::alternating(&cpus, t),
        |t| {
            if t == 0 {
                (produce.lock().unwrap().take().expect("run once"))();
            } else {
                (consume.lock().unwrap().take().expect("run once"))();
            }
        },
    )
}

fn config(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
}

fn spsc_single(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_1p1c");
    config(&mut g);
    g.bench_function("ply::spsc::Ring", |b| {
        b.iter_custom(|iters| {
            let mut ring = Box::new(ply::core::queue::spsc::Ring::<u64, CAP>::new());
            let (mut tx, mut rx) = ring.split();
            spsc_transfer(
                iters,
                true,
                Retry::Spin,
                move |v| tx.push(v).is_ok(),
                move || rx.pop(),
            )
        })
    });
    g.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
            spsc_transfer(
                iters,
                true,
                Retry::Spin,
                move |v| tx.push(v).is_ok(),
                move || rx.pop().ok(),
            )
        })
    });
    g.bench_function("heapless::spsc (cap 1023)", |b| {
        b.iter_custom(|iters| {
            let mut q = Box::new(heapless::spsc::Queue::<u64, CAP>::new());
            let (mut tx, mut rx) = q.split();
            run_pair(
                move || {
                    for i in 0..iters {
                        while tx.enqueue(i).is_err() {
                            std::hint::spin_loop();
                        }
                    }
                },
                move || {
                    for _ in 0..iters {
                        loop {
                            if let Some(v) = rx.dequeue() {
                                black_box(v);
                                break;
                            }
                            std::hint::spin_loop();
                        }
                    }
                },
            )
        })
    });
    g.bench_function("crossbeam::ArrayQueue", |b| {
        b.iter_custom(|iters| {
            let q = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
            run_pair(
                || {
                    for i in 0..iters {
                        while q.push(i).is_err() {
                            std::hint::spin_loop();
                        }
                    }
                },
                || {
                    for _ in 0..iters {
                        loop {
                            if let Some(v) = q.pop() {
                                black_box(v);
                                break;
                            }
                            std::hint::spin_loop();
                        }
                    }
                },
            )
        })
    });
    g.bench_function("std::sync_channel", |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAP);
            run_pair(
                move || {
                    for i in 0..iters {
                        tx.send(i).unwrap();
                    }
                },
                move || {
                    for _ in 0..iters {
                        black_box(rx.recv().unwrap());
                    }
                },
            )
        })
    });
    g.finish();
}

/// How a thread retries a failed push or pop in the one-item SPSC groups.
#[derive(Clone, Copy)]
enum Retry {
    /// `spin_loop()` between tries: a thread that owns its core.
    Spin,
    /// What an application does (crossbeam's `Backoff::snooze`): bursts of
    /// 2, 4, … 64 `spin_loop()`s, then `yield_now()` on every further failure.
    Backoff,
}

impl Retry {
    /// Waits after the `failures`-th failure in a row (counting from 1).
    #[inline(always)]
    fn wait(self, failures: u32) {
        match self {
            Retry::Spin => std::hint::spin_loop(),
            Retry::Backoff if failures <= 6 => {
                for _ in 0..1u32 << failures {
                    std::hint::spin_loop();
                }
            }
            Retry::Backoff => std::thread::yield_now(),
        }
    }
}

/// Moves `iters` items one at a time from a producer thread calling `push`
/// (`false`: full, the value is pushed again) to a consumer thread calling
/// `pop`, each retrying with `retry`; checks that every item arrived in order.
fn spsc_transfer(
    iters: u64,
    pinned: bool,
    retry: Retry,
    mut push: impl FnMut(u64) -> bool + Send,
    mut pop: impl FnMut() -> Option<u64> + Send,
) -> Duration {
    run_pair_on(
        pinned,
        move || {
            for i in 0..iters {
                let mut failures = 0;
                while !push(i) {
                    failures += 1;
                    retry.wait(failures);
                }
            }
        },
        move || {
            for i in 0..iters {
                let mut failures = 0;
                let v = loop {
                    if let Some(v) = pop() {
                        break v;
                    }
                    failures += 1;
                    retry.wait(failures);
                };
                assert_eq!(black_box(v), i, "FIFO order");
            }
        },
    )
}

/// ply's ring and rtrb one item at a time, with an application's backoff, and
/// with threads the scheduler places (unpinned, they may share one CPU: then a
/// pure spinner burns its time slice, and the run measures the scheduler, so
/// the unpinned groups retry with the backoff only).
fn spsc_retry(c: &mut Criterion) {
    for (group, pinned) in [
        ("spsc_1p1c_backoff", true),
        ("spsc_1p1c_unpinned_backoff", false),
    ] {
        let mut g = c.benchmark_group(group);
        config(&mut g);
        g.bench_function("ply::spsc::Ring", |b| {
            b.iter_custom(|iters| {
                let mut ring = Box::new(ply::core::queue::spsc::Ring::<u64, CAP>::new());
                let (mut tx, mut rx) = ring.split();
                spsc_transfer(
                    iters,
                    pinned,
                    Retry::Backoff,
                    move |v| tx.push(v).is_ok(),
                    move || rx.pop(),
                )
            })
        });
        g.bench_function("rtrb", |b| {
            b.iter_custom(|iters| {
                let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
                spsc_transfer(
                    iters,
                    pinned,
                    Retry::Backoff,
                    move |v| tx.push(v).is_ok(),
                    move || rx.pop().ok(),
                )
            })
        });
        g.finish();
    }
}

fn spsc_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc_batch64");
    config(&mut g);
    g.bench_function("ply::spsc::Ring chunks", |b| {
        b.iter_custom(|iters| {
            let mut ring = Box::new(ply::core::queue::spsc::Ring::<u64, CAP>::new());
            let (mut tx, mut rx) = ring.split();
            run_pair(
                move || {
                    let mut next = 0;
                    while next < iters {
                        let want = (iters - next).min(BATCH as u64) as usize;
                        if let Ok(chunk) = tx.write_chunk_uninit(want) {
                            next += chunk.fill_from_iter(next..) as u64;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                },
                move || {
                    let mut got = 0;
                    while got < iters {
                        let want = (iters - got).min(BATCH as u64) as usize;
                        if let Ok(chunk) = rx.read_chunk(want) {
                            let (a, b) = chunk.as_slices();
                            black_box((a, b));
                            chunk.commit_all();
                            got += want as u64;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                },
            )
        })
    });
    g.bench_function("rtrb chunks", |b| {
        b.iter_custom(|iters| {
            let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
            run_pair(
                move || {
                    let mut next = 0;
                    while next < iters {
                        let want = (iters - next).min(BATCH as u64) as usize;
                        if let Ok(chunk) = tx.write_chunk_uninit(want) {
                            next += chunk.fill_from_iter(next..) as u64;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                },
                move || {
                    let mut got = 0;
                    while got < iters {
                        let want = (iters - got).min(BATCH as u64) as usize;
                        if let Ok(chunk) = rx.read_chunk(want) {
                            let (a, b) = chunk.as_slices();
                            black_box((a, b));
                            chunk.commit_all();
                            got += want as u64;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                },
            )
        })
    });
    g.finish();
}

/// The shared-reference queues of the MPMC groups, behind one interface.
trait SharedQueue: Sync {
    fn try_push(&self, v: u64) -> Result<(), u64>;
    fn try_pop(&self) -> Option<u64>;
}

impl SharedQueue for ply::core::queue::mpmc::ArrayQueue<u64, CAP> {
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.push(v)
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

/// `ArrayQueue`'s never-waiting forms: a `Busy` counts as a failed attempt,
/// like a full or empty queue.
struct NeverWaiting(ply::core::queue::mpmc::ArrayQueue<u64, CAP>);

impl SharedQueue for NeverWaiting {
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.0.try_push(v).map_err(|e| e.into_inner())
    }
    fn try_pop(&self) -> Option<u64> {
        self.0.try_pop().ok()
    }
}

impl SharedQueue for ply::core::queue::mpmc::ScqQueue<u64, CAP> {
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.push(v)
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

impl SharedQueue for crossbeam_queue::ArrayQueue<u64> {
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.push(v)
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

impl SharedQueue for concurrent_queue::ConcurrentQueue<u64> {
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.push(v).map_err(|e| e.into_inner())
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop().ok()
    }
}

impl SharedQueue
    for (
        crossbeam_channel::Sender<u64>,
        crossbeam_channel::Receiver<u64>,
    )
{
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.0.try_send(v).map_err(|e| e.into_inner())
    }
    fn try_pop(&self) -> Option<u64> {
        self.1.try_recv().ok()
    }
}

impl SharedQueue for heapless::mpmc::Queue<u64, CAP> {
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.enqueue(v)
    }
    fn try_pop(&self) -> Option<u64> {
        self.dequeue()
    }
}

/// Waiting after a failed push or pop: spin briefly, then yield the CPU every
/// 64 failures. With four threads on two CPUs (2P/2C), pure spinning would let a
/// waiter burn its whole time slice while the thread it waits for sits
/// preempted on the same CPU, and the group would measure the scheduler.
fn wait_a_little(failures: &mut u32) {
    *failures += 1;
    if *failures % 64 == 0 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// `producers` threads push `iters` items in total, `consumers` threads pop
/// them; producers and consumers each alternate between the two CPUs. Returns
/// the wall time.
fn run_mpmc(q: &dyn SharedQueue, producers: usize, consumers: usize, iters: u64) -> Duration {
    let cpus = support::cpus();
    let per_producer = iters.div_ceil(producers as u64);
    let per_consumer = per_producer * producers as u64 / consumers as u64;
    // Threads 0..producers produce; the rest consume (consumer c on CPU c + 1).
    let cpu_of = |t: usize| {
        let k = if t < producers { t } else { t - producers + 1 };
        support::alternating(&cpus, k)
    };
    support::timed_threads(producers + consumers, cpu_of, |t| {
        if t < producers {
            for i in 0..per_producer {
                let mut v = i;
                let mut failures = 0u32;
                while let Err(back) = q.try_push(v) {
                    v = back;
                    wait_a_little(&mut failures);
                }
            }
        } else {
            for _ in 0..per_consumer {
                let mut failures = 0u32;
                loop {
                    if let Some(v) = q.try_pop() {
                        black_box(v);
                        break;
                    }
                    wait_a_little(&mut failures);
                }
            }
        }
    })
}

fn mpmc_groups(c: &mut Criterion) {
    for (name, producers, consumers) in [("mpmc_1p1c", 1, 1), ("mpmc_2p2c", 2, 2)] {
        let mut g = c.benchmark_group(name);
        config(&mut g);
        g.bench_function("ply::mpmc::ArrayQueue", |b| {
            b.iter_custom(|iters| {
                let q = Box::new(ply::core::queue::mpmc::ArrayQueue::<u64, CAP>::new());
                run_mpmc(&*q, producers, consumers, iters)
            })
        });
        g.bench_function("ply::mpmc::ArrayQueue try_push/try_pop", |b| {
            b.iter_custom(|iters| {
                let q = Box::new(NeverWaiting(ply::core::queue::mpmc::ArrayQueue::new()));
                run_mpmc(&*q, producers, consumers, iters)
            })
        });
        g.bench_function("ply::mpmc::ScqQueue", |b| {
            b.iter_custom(|iters| {
                let q = Box::new(ply::core::queue::mpmc::ScqQueue::<u64, CAP>::new());
                run_mpmc(&*q, producers, consumers, iters)
            })
        });
        g.bench_function("crossbeam::ArrayQueue", |b| {
            b.iter_custom(|iters| {
                let q = crossbeam_queue::ArrayQueue::<u64>::new(CAP);
                run_mpmc(&q, producers, consumers, iters)
            })
        });
        g.bench_function("concurrent_queue::bounded", |b| {
            b.iter_custom(|iters| {
                let q = concurrent_queue::ConcurrentQueue::<u64>::bounded(CAP);
                run_mpmc(&q, producers, consumers, iters)
            })
        });
        g.bench_function("crossbeam_channel::bounded", |b| {
            b.iter_custom(|iters| {
                let q = crossbeam_channel::bounded::<u64>(CAP);
                run_mpmc(&q, producers, consumers, iters)
            })
        });
        g.bench_function("heapless::mpmc", |b| {
            b.iter_custom(|iters| {
                #[allow(deprecated)] // benchmarked as a peer, knowing its caveat (not lock-free)
                let q = Box::new(heapless::mpmc::Queue::<u64, CAP>::new());
                run_mpmc(&*q, producers, consumers, iters)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, spsc_single, spsc_retry, spsc_batch, mpmc_groups);
criterion_main!(benches);
