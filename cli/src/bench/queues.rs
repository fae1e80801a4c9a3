//! `ply bench queues`: items per second through ply's queues and std's
//! `sync_channel`, one producer and one consumer pinned to different CPUs.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use ply_core::queue::{
    mpmc::{ArrayQueue, ScqQueue},
    spsc::Ring,
};

const CAP: usize = 1024;
const RUNS: usize = 5;

use super::cpus::pin;
use crate::report::{Report, Row};

/// One timed transfer of `items` items, given the CPU pair to pin to.
type Transfer = fn(u64, Option<(usize, usize)>) -> Duration;

/// Runs every comparison `RUNS` times with `items` items each.
pub fn run(items: u64) -> Report {
    let pair = super::cpus::pair();
    let cases: [(&'static str, Transfer); 5] = [
        ("ply spsc::Ring", spsc_once),
        ("ply spsc::Ring (batches of 64)", spsc_batch_once),
        ("ply mpmc::ArrayQueue", array_queue_once),
        ("ply mpmc::ScqQueue", scq_queue_once),
        ("std sync_channel", std_once),
    ];
    let group = "1 producer -> 1 consumer";
    let rows = cases
        .iter()
        .map(|&(name, f)| Row::measure(group, name, RUNS, items, || f(items, pair)))
        .collect();
    Report {
        family: "queues",
        headline: format!(
            "queue throughput (items/s), capacity {CAP}, {items} items x {RUNS} runs, {}",
            if pair.is_some() {
                "threads pinned to 2 CPUs"
            } else {
                "1 CPU: threads not pinned"
            }
        ),
        params: vec![
            ("capacity", CAP.into()),
            ("items", items.into()),
            ("runs", RUNS.into()),
            ("pinned", pair.is_some().into()),
        ],
        rows,
        notes: Vec::new(),
    }
}

/// Runs `produce` and `consume` on two threads, each pinned to its CPU, and
/// times from their common start (a barrier, after pinning) to the end of the
/// later of the two. Each thread reads the clock itself: a third thread waking
/// from the barrier could be scheduled after the transfer is already over. The
/// sum `consume` returns keeps the work from being optimized out.
fn timed_pair(
    pair: Option<(usize, usize)>,
    produce: impl FnOnce() + Send,
    consume: impl FnOnce() -> u64 + Send,
) -> Duration {
    let ready = Barrier::new(2);
    std::thread::scope(|s| {
        let ready = &ready;
        let producer = s.spawn(move || {
            pin(pair.map(|p| p.0));
            ready.wait();
            let start = Instant::now();
            produce();
            (start, Instant::now())
        });
        let consumer = s.spawn(move || {
            pin(pair.map(|p| p.1));
            ready.wait();
            let start = Instant::now();
            let sum = consume();
            std::hint::black_box(sum);
            (start, Instant::now())
        });
        let (p_start, p_end) = producer.join().expect("producer thread panicked");
        let (c_start, c_end) = consumer.join().expect("consumer thread panicked");
        // Never zero, so a rate is always finite.
        (p_end.max(c_end) - p_start.min(c_start)).max(Duration::from_nanos(1))
    })
}

fn spsc_once(items: u64, pair: Option<(usize, usize)>) -> Duration {
    let mut ring = Box::new(Ring::<u64, CAP>::new());
    let (mut tx, mut rx) = ring.split();
    timed_pair(
        pair,
        move || {
            for i in 0..items {
                while tx.push(i).is_err() {
                    std::hint::spin_loop();
                }
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..items {
                sum = sum.wrapping_add(loop {
                    if let Some(v) = rx.pop() {
                        break v;
                    }
                    std::hint::spin_loop();
                });
            }
            sum
        },
    )
}

fn spsc_batch_once(items: u64, pair: Option<(usize, usize)>) -> Duration {
    let mut ring = Box::new(Ring::<u64, CAP>::new());
    let (mut tx, mut rx) = ring.split();
    timed_pair(
        pair,
        move || {
            let mut next = 0;
            while next < items {
                let want = (items - next).min(64) as usize;
                match tx.write_chunk_uninit(want) {
                    Ok(chunk) => next += chunk.fill_from_iter(next..) as u64,
                    Err(_) => std::hint::spin_loop(),
                }
            }
        },
        move || {
            let mut sum = 0u64;
            let mut buf = [0u64; 64];
            let mut got = 0;
            while got < items {
                let n = rx.pop_slice(&mut buf);
                sum = buf[..n].iter().fold(sum, |a, &v| a.wrapping_add(v));
                got += n as u64;
                if n == 0 {
                    std::hint::spin_loop();
                }
            }
            sum
        },
    )
}

/// The two MPMC queues' push and pop, for one generic transfer.
trait SharedQueue: Sync {
    fn try_push(&self, v: u64) -> Result<(), u64>;
    fn try_pop(&self) -> Option<u64>;
}

impl SharedQueue for ArrayQueue<u64, CAP> {
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.push(v)
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

impl SharedQueue for ScqQueue<u64, CAP> {
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.push(v)
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

fn array_queue_once(items: u64, pair: Option<(usize, usize)>) -> Duration {
    shared_queue_once(&*Box::new(ArrayQueue::<u64, CAP>::new()), items, pair)
}

fn scq_queue_once(items: u64, pair: Option<(usize, usize)>) -> Duration {
    shared_queue_once(&*Box::new(ScqQueue::<u64, CAP>::new()), items, pair)
}

fn shared_queue_once(q: &impl SharedQueue, items: u64, pair: Option<(usize, usize)>) -> Duration {
    timed_pair(
        pair,
        move || {
            for i in 0..items {
                while q.try_push(i).is_err() {
                    std::hint::spin_loop();
                }
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..items {
                sum = sum.wrapping_add(loop {
                    if let Some(v) = q.try_pop() {
                        break v;
                    }
                    std::hint::spin_loop();
                });
            }
            sum
        },
    )
}

fn std_once(items: u64, pair: Option<(usize, usize)>) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAP);
    timed_pair(
        pair,
        move || {
            for i in 0..items {
                tx.send(i).expect("receiver alive until all items arrive");
            }
        },
        move || {
            let mut sum = 0u64;
            for _ in 0..items {
                sum = sum.wrapping_add(rx.recv().expect("sender alive until done"));
            }
            sum
        },
    )
}
