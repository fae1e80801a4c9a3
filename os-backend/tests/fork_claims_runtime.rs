//! What the fork APIs do with the caller's closure and inputs, counted across
//! processes (the compile-time half is `fork_claims.rs`):
//!
//! - a lock in shared memory, taken *inside* the children while the parent
//!   takes it too, loses no increment, through every API that runs the
//!   caller's code in a child;
//! - the caller's closure is dropped once by the parent, right after the
//!   fork, and by a `fork_child` child at the end of its run; never by a
//!   map worker nor a pool worker, whatever the worker's end;
//! - a pipe end moved into a child is closed in the parent at the fork.

mod common;

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use common::{assert_no_descendants, serial, watchdog};
use ply_core::sync::SpinMutex;
use ply_os::fork::{fork_child, scope};
use ply_os::process::{
    MapOptions, ProcessPoolBuilder, Retry, ThreadPolicy, map, map_plain, reduce,
};
use ply_os::shm::SharedBox;

const CHILDREN: u64 = 3;
const PER_CHILD: u64 = if cfg!(debug_assertions) {
    20_000
} else {
    200_000
};

/// A plain counter under a spin lock in shared memory: a lost update shows
/// as a short count.
type Counter = SharedBox<SpinMutex<u64>>;

fn counter() -> Counter {
    SharedBox::new(SpinMutex::new(0)).unwrap()
}

fn bump(counter: &SpinMutex<u64>, times: u64) {
    for _ in 0..times {
        let mut guard = counter.lock();
        // A read and a write apart: two holders at once would lose updates.
        let seen = *guard;
        std::hint::black_box(&seen);
        *guard = seen + 1;
    }
}

/// Runs `parent_side` on another thread of the parent while `work` runs,
/// so the parent holds the lock against the children throughout.
fn alongside<T>(counter: &Counter, times: u64, work: impl FnOnce() -> T) -> T {
    std::thread::scope(|s| {
        let parent = s.spawn(|| bump(counter, times));
        let out = work();
        parent.join().unwrap();
        out
    })
}

#[test]
fn children_of_fork_child_and_scope_lose_no_increment() {
    let _serial = serial();
    let _dog = watchdog("fork_child counts", Duration::from_secs(120));
    // `fork_child` wants `'static`: the counter is leaked for the test.
    let shared: &'static Counter = Box::leak(Box::new(counter()));
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            fork_child(move || {
                bump(shared, PER_CHILD);
                0
            })
            .unwrap()
        })
        .collect();
    bump(shared, PER_CHILD);
    for child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(*shared.lock(), (CHILDREN + 1) * PER_CHILD);

    let local = counter();
    scope(|s| {
        let children: Vec<_> = (0..CHILDREN)
            .map(|_| {
                s.fork_child(|| {
                    bump(&local, PER_CHILD);
                    0
                })
                .unwrap()
            })
            .collect();
        bump(&local, PER_CHILD);
        for child in children {
            assert!(child.wait().unwrap().success());
        }
    });
    assert_eq!(*local.lock(), (CHILDREN + 1) * PER_CHILD);
    assert_no_descendants();
}

#[test]
fn map_workers_lose_no_increment_beside_a_parent_thread() {
    let _serial = serial();
    let _dog = watchdog("map counts", Duration::from_secs(120));
    let shared = counter();
    let items: Vec<u64> = (0..CHILDREN).collect();
    // A thread of the parent takes the lock too: the workers are watched
    // for stalls (the default policy), and none may stall on this lock,
    // which lives in shared memory and is released by its holder.
    let options = MapOptions::new()
        .workers(CHILDREN as usize)
        .threads(ThreadPolicy::Proceed);
    let ones = alongside(&shared, PER_CHILD, || {
        map(
            &items,
            |_| {
                bump(&shared, PER_CHILD);
                1u8
            },
            &options,
        )
        .unwrap()
    });
    assert_eq!(ones, [1, 1, 1]);
    let plain = alongside(&shared, PER_CHILD, || {
        map_plain(
            &items,
            |_| {
                bump(&shared, PER_CHILD);
                1u8
            },
            &options,
        )
        .unwrap()
    });
    assert_eq!(&*plain, [1, 1, 1]);
    let sum = alongside(&shared, PER_CHILD, || {
        reduce(
            0..CHILDREN as usize,
            &options,
            0u64,
            |_| {
                bump(&shared, PER_CHILD);
                1
            },
            |a, b| a + b,
        )
        .unwrap()
    });
    assert_eq!(sum, CHILDREN);
    assert_eq!(*shared.lock(), 3 * (CHILDREN + 1) * PER_CHILD);
    assert_no_descendants();
}

#[test]
fn pool_and_duplex_children_lose_no_increment() {
    let _serial = serial();
    let _dog = watchdog("pool counts", Duration::from_secs(120));
    let shared: &'static Counter = Box::leak(Box::new(counter()));
    let pool = ProcessPoolBuilder::new()
        .workers(2)
        .threads(ThreadPolicy::Proceed)
        .build_forking(move |times: u64| {
            bump(shared, times);
            times
        })
        .unwrap();
    let done = alongside(shared, PER_CHILD, || {
        let tasks: Vec<_> = (0..CHILDREN)
            .map(|_| pool.submit(&PER_CHILD).unwrap())
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).sum::<u64>()
    });
    assert_eq!(done, CHILDREN * PER_CHILD);
    drop(pool);
    let (mut end, child) = ply_os::ipc::fork_duplex::<u64, u64, _>(move |mut end| {
        let Ok(times) = end.recv() else { return 1 };
        bump(shared, times);
        end.send(&times).map_or(2, |()| 0)
    })
    .unwrap();
    end.send(&PER_CHILD).unwrap();
    bump(shared, PER_CHILD);
    assert_eq!(end.recv().unwrap(), PER_CHILD);
    assert!(child.wait().unwrap().success());
    assert_eq!(*shared.lock(), (CHILDREN + 1) * PER_CHILD + 2 * PER_CHILD);
    assert_no_descendants();
}

ply_core::shm_safe! {
    /// Where each process records the drops of a `Canary`.
    struct Drops {
        by_parent: AtomicU64,
        by_others: AtomicU64,
    }
}

/// Records, when dropped, whether the parent or another process dropped it.
/// `Send`: it releases nothing another process relies on.
struct Canary {
    drops: &'static Drops,
    parent: i32,
}

impl Drop for Canary {
    fn drop(&mut self) {
        if std::process::id() as i32 == self.parent {
            self.drops.by_parent.fetch_add(1, SeqCst);
        } else {
            self.drops.by_others.fetch_add(1, SeqCst);
        }
    }
}

fn new_canary() -> (Canary, &'static Drops) {
    let drops: &'static Drops = Box::leak(Box::new(
        SharedBox::new(Drops {
            by_parent: AtomicU64::new(0),
            by_others: AtomicU64::new(0),
        })
        .unwrap(),
    ));
    let parent = std::process::id() as i32;
    (Canary { drops, parent }, drops)
}

#[test]
fn fork_child_moves_the_closure_parent_drops_its_copy_at_the_fork() {
    let _serial = serial();
    let _dog = watchdog("fork_child drops", Duration::from_secs(60));
    let (canary, drops) = new_canary();
    let go: &'static SharedBox<AtomicBool> =
        Box::leak(Box::new(SharedBox::new(AtomicBool::new(false)).unwrap()));
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let child = fork_child(move || {
        let _mine = (&canary, &theirs);
        while !go.load(SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        0
    })
    .unwrap();
    // The parent's copy is gone already, the child's is not.
    assert_eq!(drops.by_parent.load(SeqCst), 1);
    assert_eq!(drops.by_others.load(SeqCst), 0);
    go.store(true, SeqCst);
    assert!(child.wait().unwrap().success());
    assert_eq!(
        drops.by_others.load(SeqCst),
        1,
        "the child drops its own copy"
    );
    // Both copies of `theirs` are closed: the parent's at the fork, the
    // child's at its exit. So this read sees the end instead of hanging.
    let mut rest = Vec::new();
    assert_eq!(ours.read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn workers_never_drop_the_callers_closure_whatever_their_end() {
    let _serial = serial();
    let _dog = watchdog("worker drops", Duration::from_secs(120));
    let (canary, drops) = new_canary();
    let items: Vec<u64> = (0..64).collect();
    // Several workers and chunks; item 5 panics once, item 9 crashes once:
    // each end leaves through `_exit` or a signal, never by dropping.
    let crashed: &'static SharedBox<[AtomicBool; 2]> = Box::leak(Box::new(
        SharedBox::new([AtomicBool::new(false), AtomicBool::new(false)]).unwrap(),
    ));
    let options = MapOptions::new()
        .workers(3)
        .chunking(ply_core::partition::Chunking::Fixed(4))
        .retry(Retry::runs(2));
    let out = map(
        &items,
        move |&x| {
            let _held = &canary;
            if x == 5 && !crashed[0].swap(true, SeqCst) {
                panic!("once");
            }
            if x == 9 && !crashed[1].swap(true, SeqCst) {
                // SAFETY: raise has no memory-safety preconditions.
                unsafe { libc::raise(libc::SIGKILL) };
            }
            x * 2
        },
        &options,
    );
    // The panic is not retried (only crashes are): the call fails, with
    // the rest of the results.
    assert!(out.is_err(), "{out:?}");
    assert_eq!(
        drops.by_others.load(SeqCst),
        0,
        "a worker dropped the closure"
    );
    assert_eq!(drops.by_parent.load(SeqCst), 1, "the caller's drop, once");

    let (canary, drops) = new_canary();
    let pool = ProcessPoolBuilder::new()
        .workers(2)
        .threads(ThreadPolicy::Proceed)
        .max_tasks_per_child(1) // each worker ends after one task
        .build_forking(move |x: u64| {
            let _held = &canary;
            x + 1
        })
        .unwrap();
    assert_eq!(
        drops.by_parent.load(SeqCst),
        1,
        "dropped at the server's fork"
    );
    for x in 0..4 {
        assert_eq!(pool.submit(&x).unwrap().join().unwrap(), x + 1);
    }
    assert_eq!(
        drops.by_others.load(SeqCst),
        0,
        "a worker dropped the handler"
    );
    drop(pool);
    // The fork server owns a copy, which it drops as it ends, after its
    // workers are gone.
    assert!(drops.by_others.load(SeqCst) <= 1);
    assert_no_descendants();
}
