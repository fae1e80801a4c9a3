//! `ply demo pipeline`: producers and a consumer, every item counted.
//!
//! Threads: one producer through ply's SPSC ring, or several through the MPMC
//! queue. Processes: producer children through the shared-memory
//! `ProcessQueue`. The consumer (the calling thread) checks that every item
//! arrived exactly once.

use std::time::Instant;

use ply_core::queue::mpmc::ArrayQueue;
use ply_core::queue::spsc::Ring;
use ply_os::fork::scope;
use ply_os::ipc::ProcessQueue;

use super::{Backend, Outcome};

const CAPACITY: usize = 1024;

/// Items `[start, end)` for producer `p` of `producers`.
fn share(items: u64, producers: u64, p: u64) -> std::ops::Range<u64> {
    (items * p / producers)..(items * (p + 1) / producers)
}

/// Counts arrivals: each item once, or an error naming the first problem.
/// One bit per item.
struct Tally {
    seen: Vec<u64>,
    items: u64,
    count: u64,
}

impl Tally {
    fn new(items: u64) -> Self {
        Tally {
            seen: vec![0; items.div_ceil(64) as usize],
            items,
            count: 0,
        }
    }
    fn take(&mut self, item: u64) -> Result<(), String> {
        if item >= self.items {
            return Err(format!("item {item} was never sent"));
        }
        let (word, bit) = ((item / 64) as usize, 1u64 << (item % 64));
        if self.seen[word] & bit != 0 {
            return Err(format!("item {item} arrived twice"));
        }
        self.seen[word] |= bit;
        self.count += 1;
        Ok(())
    }
}

pub fn run(backend: Backend, workers: usize, items: u64) -> Result<Outcome, String> {
    let producers = (workers.max(2) - 1) as u64; // the consumer takes one worker
    let mut tally = Tally::new(items);
    let start = Instant::now();
    let route = match backend {
        Backend::Seq => {
            // One thread alternates: push a batch, drain it.
            let mut ring = Ring::<u64, CAPACITY>::new();
            let (mut tx, mut rx) = ring.split();
            let mut next = 0;
            while next < items {
                while next < items && tx.push(next).is_ok() {
                    next += 1;
                }
                while let Some(x) = rx.pop() {
                    tally.take(x)?;
                }
            }
            "spsc::Ring, one thread"
        }
        Backend::Threads if producers == 1 => {
            let mut ring = Ring::<u64, CAPACITY>::new();
            let (mut tx, mut rx) = ring.split();
            std::thread::scope(|s| -> Result<(), String> {
                s.spawn(move || {
                    for mut x in 0..items {
                        while let Err(back) = tx.push(x) {
                            x = back;
                            std::hint::spin_loop();
                        }
                    }
                });
                while tally.count < items {
                    match rx.pop() {
                        Some(x) => tally.take(x)?,
                        None => std::hint::spin_loop(),
                    }
                }
                Ok(())
            })?;
            "spsc::Ring"
        }
        Backend::Threads => {
            let queue = ArrayQueue::<u64, CAPACITY>::new();
            std::thread::scope(|s| -> Result<(), String> {
                for p in 0..producers {
                    let queue = &queue;
                    s.spawn(move || {
                        for mut x in share(items, producers, p) {
                            while let Err(back) = queue.push(x) {
                                x = back;
                                std::thread::yield_now();
                            }
                        }
                    });
                }
                while tally.count < items {
                    match queue.pop() {
                        Some(x) => tally.take(x)?,
                        None => std::thread::yield_now(),
                    }
                }
                Ok(())
            })?;
            "mpmc::ArrayQueue"
        }
        Backend::Processes => {
            let queue = ProcessQueue::<u64, CAPACITY>::new().map_err(|e| e.to_string())?;
            scope(|s| {
                let children = (0..producers)
                    .map(|p| {
                        let queue = &queue;
                        s.fork_child(move || {
                            for x in share(items, producers, p) {
                                queue.put(x);
                            }
                            0
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())?;
                while tally.count < items {
                    match queue.get_timeout(std::time::Duration::from_secs(30)) {
                        Some(x) => tally.take(x)?,
                        None => return Err(format!("stalled after {} items", tally.count)),
                    }
                }
                for child in children {
                    let exit = child.wait().map_err(|e| e.to_string())?;
                    if !exit.success() {
                        return Err(format!("a producer {exit}"));
                    }
                }
                Ok(())
            })?;
            "ProcessQueue (shared memory)"
        }
    };
    let rate = items as f64 / start.elapsed().as_secs_f64().max(1e-9);
    Ok(Outcome {
        shown: format!(
            "{} items each once via {route}, {:.1} M items/s",
            tally.count,
            rate / 1e6
        ),
        check: format!("{} items each once", tally.count),
        // The consumer and every producer, as the table's workers column.
        workers_used: (backend != Backend::Seq).then_some(producers as usize + 1),
    })
}
