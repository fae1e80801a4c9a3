//! ply-core's locks and signals in `MAP_SHARED` memory, used by forked
//! processes exactly as by threads: a non-atomic counter incremented under each
//! lock ends exact; a semaphore never admits more than its permits; a barrier
//! keeps processes in step; a chunk dispenser hands each chunk to one process.
//!
//! Children only touch shared memory and `_exit`; every wait has a watchdog.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use ply::core::partition::{ChunkDispenser, Fixed, Schedule};
use ply::core::sync::{Barrier, RwLock, Semaphore, SpinMutex, TicketMutex};
use ply::os::fork::{ScopedChild, scope};
use ply::os::shm::SharedBox;

const CHILDREN: usize = 3;
const PER_CHILD: u64 = if cfg!(debug_assertions) {
    100_000
} else {
    1_000_000
};
const WATCHDOG: Duration = Duration::from_secs(120);

fn join_all(children: Vec<ScopedChild<'_>>) {
    for mut child in children {
        let exit = child
            .wait_timeout(WATCHDOG)
            .unwrap()
            .expect("watchdog: child did not finish");
        assert!(exit.success(), "child {exit}");
    }
}

fn run_children(work: impl Fn(usize) -> i32 + Sync) {
    let work = &work;
    scope(|s| {
        let children = (0..CHILDREN)
            .map(|id| s.fork_child(move || work(id)).unwrap())
            .collect();
        join_all(children);
    });
}

#[test]
fn spin_mutex_across_processes_counts_exactly() {
    let counter = SharedBox::new(SpinMutex::new(0u64)).unwrap();
    run_children(|_| {
        for _ in 0..PER_CHILD {
            *counter.lock() += 1;
        }
        0
    });
    assert_eq!(*counter.lock(), CHILDREN as u64 * PER_CHILD);
}

#[test]
fn ticket_mutex_across_processes_counts_exactly() {
    let counter = SharedBox::new(TicketMutex::new(0u64)).unwrap();
    run_children(|_| {
        for _ in 0..PER_CHILD / 10 {
            *counter.lock() += 1;
        }
        0
    });
    assert_eq!(*counter.lock(), CHILDREN as u64 * (PER_CHILD / 10));
}

#[test]
fn rwlock_across_processes_counts_exactly_and_readers_see_whole_writes() {
    // Writers keep two words equal; a reader seeing them differ saw a torn write.
    let pair = SharedBox::new(RwLock::new((0u64, 0u64))).unwrap();
    run_children(|id| {
        for i in 0..PER_CHILD / 10 {
            if (i + id as u64) % 3 == 0 {
                let mut g = pair.write();
                g.0 += 1;
                g.1 += 1;
            } else {
                let g = pair.read();
                if g.0 != g.1 {
                    return 3;
                }
            }
        }
        0
    });
    let writes: u64 = (0..CHILDREN as u64)
        .map(|id| (0..PER_CHILD / 10).filter(|i| (i + id) % 3 == 0).count() as u64)
        .sum();
    assert_eq!(*pair.read(), (writes, writes));
}

ply::core::shm_safe! {
    /// Shared state for the semaphore test: a plain counter of processes inside.
    struct Gate {
        semaphore: Semaphore,
        inside: AtomicU32,
        high_water: AtomicU32,
        entries: AtomicU64,
    }
}

#[test]
fn semaphore_across_processes_admits_at_most_its_permits() {
    const PERMITS: u32 = 2;
    let gate = SharedBox::new(Gate {
        semaphore: Semaphore::new(PERMITS),
        inside: AtomicU32::new(0),
        high_water: AtomicU32::new(0),
        entries: AtomicU64::new(0),
    })
    .unwrap();
    run_children(|_| {
        for _ in 0..PER_CHILD / 10 {
            let _permit = gate.semaphore.acquire();
            let now = gate.inside.fetch_add(1, SeqCst) + 1;
            gate.high_water.fetch_max(now, SeqCst);
            gate.entries.fetch_add(1, SeqCst);
            gate.inside.fetch_sub(1, SeqCst);
        }
        0
    });
    assert!(gate.high_water.load(SeqCst) <= PERMITS);
    assert_eq!(
        gate.entries.load(SeqCst),
        CHILDREN as u64 * (PER_CHILD / 10)
    );
    assert_eq!(gate.semaphore.available(), PERMITS);
}

ply::core::shm_safe! {
    /// One slot per child per round; the barrier guarantees a round's slots are all
    /// written before anyone checks them.
    struct Rounds {
        barrier: Barrier,
        marks: [[AtomicU32; CHILDREN]; 2],
    }
}

#[test]
fn barrier_across_processes_keeps_rounds_in_step() {
    const ROUNDS: u32 = 500;
    let rounds = SharedBox::new(Rounds {
        barrier: Barrier::new(CHILDREN as u32),
        marks: Default::default(),
    })
    .unwrap();
    run_children(|id| {
        for round in 1..=ROUNDS {
            let row = &rounds.marks[(round % 2) as usize];
            row[id].store(round, SeqCst);
            rounds.barrier.wait();
            if row.iter().any(|m| m.load(SeqCst) != round) {
                return 3; // someone had not arrived yet
            }
            rounds.barrier.wait();
        }
        0
    });
}

ply::core::shm_safe! {
    /// A non-atomic per-chunk tally: each chunk must be claimed by exactly one
    /// process, so plain writes never race.
    struct Work {
        dispenser: ChunkDispenser<CHILDREN>,
        done: [UnsafeCell<u8>; 1000],
    }
}
// SAFETY: each `done` cell is written only by the one process the dispenser
// gave that chunk to (which is what the test checks), and read after all exit.
unsafe impl Sync for Work {}

#[test]
fn dispenser_across_processes_gives_each_chunk_to_one_process() {
    let schedule = Fixed::new(100_000, 100).unwrap();
    assert_eq!(schedule.chunks(), 1000);
    let work = SharedBox::new(Work {
        dispenser: ChunkDispenser::new(),
        done: [const { UnsafeCell::new(0) }; 1000],
    })
    .unwrap();
    run_children(|id| {
        while let Some(claim) = work.dispenser.claim(id, &schedule) {
            // SAFETY: this chunk was handed to this process alone.
            unsafe { *work.done[claim.index].get() += 1 };
            work.dispenser.complete(id);
        }
        0
    });
    // SAFETY: all children have exited; nobody else touches the cells.
    assert!(work.done.iter().all(|c| unsafe { *c.get() } == 1));
}
