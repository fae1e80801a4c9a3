//! Task cells and their per-thread cache, attacked from the API: results of
//! every size and alignment (zero-sized, over-aligned, larger than the cache
//! keeps), more layouts than the cache keeps lists for, handles joined on
//! other threads or dropped unjoined, threads that exit holding cached cells,
//! a result whose `Drop` submits to the pool, and a forked child that builds
//! its own pool from a cache it inherited. Every value is counted: each one
//! made is seen intact once and dropped once.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ply_os::thread::{TaskError, ThreadPool};
use support::{pool, watchdog};

/// Drops of values of `T`, by a counter per test.
#[derive(Debug)]
struct Counted<T> {
    value: T,
    drops: Arc<AtomicUsize>,
}

impl<T> Drop for Counted<T> {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

/// Drops of [`Empty`] values (a zero-sized type carries no counter).
static EMPTY_DROPS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, PartialEq)]
struct Empty;

impl Drop for Empty {
    fn drop(&mut self) {
        EMPTY_DROPS.fetch_add(1, SeqCst);
    }
}

#[derive(Debug, PartialEq, Clone, Copy)]
#[repr(align(64))]
struct Line(u64);

#[derive(Debug, PartialEq, Clone, Copy)]
#[repr(align(4096))]
struct Page(u64);

fn aligned<T>(value: &T) -> bool {
    (value as *const T as usize) % align_of::<T>() == 0
}

/// Six layouts (more than the cache keeps lists for), interleaved, some
/// joined and some dropped unjoined, for many rounds; each value checked
/// where the task made it (alignment) and where it is joined (contents).
#[test]
fn results_of_every_size_and_alignment_arrive_intact_and_drop_once() {
    let _dog = watchdog("sizes and alignments", Duration::from_secs(120));
    let pool = pool("ply-cells", 2);
    let drops = Arc::new(AtomicUsize::new(0));
    let empty_before = EMPTY_DROPS.load(SeqCst);
    let rounds = 300u64;
    let mut made = 0;
    fn counted<T>(value: T, drops: &Arc<AtomicUsize>) -> Counted<T> {
        Counted {
            value,
            drops: drops.clone(),
        }
    }
    for round in 0..rounds {
        let a = counted(round as u8, &drops);
        let b = counted([round; 3], &drops);
        let c = counted(Line(round), &drops);
        let d = counted([round; 20], &drops); // a cell larger than the cache keeps
        let e = counted(Page(round), &drops);
        made += 5;
        let ha = pool.submit(move || a).unwrap();
        let hb = pool.submit(move || b).unwrap();
        let hc = pool
            .submit(move || {
                assert!(aligned(&c.value));
                c
            })
            .unwrap();
        let hd = pool.submit(move || d).unwrap();
        let he = pool
            .submit(move || {
                assert!(aligned(&e.value));
                e
            })
            .unwrap();
        let hz = pool.submit(|| Empty).unwrap();
        let hunit = pool.submit(|| ()).unwrap();
        if round % 3 == 0 {
            // Dropped unjoined: the results are dropped by whichever side
            // lets go last.
            drop((ha, hc, he, hz));
        } else {
            assert_eq!(he.join().unwrap().value, Page(round));
            assert!(matches!(hz.join(), Ok(Empty)));
            assert_eq!(hc.join().unwrap().value, Line(round));
            assert_eq!(ha.join().unwrap().value, round as u8);
        }
        assert_eq!(hd.join().unwrap().value, [round; 20]);
        assert_eq!(hb.join().unwrap().value, [round; 3]);
        assert_eq!(hunit.join(), Ok(()));
    }
    drop(pool); // every task has run, so every result is dropped
    assert_eq!(drops.load(SeqCst), made);
    assert_eq!(EMPTY_DROPS.load(SeqCst) - empty_before, rounds as usize);
}

/// Threads submit, hand their handles to other threads to join (or drop),
/// and exit with cells in their caches; cells are freed on threads other
/// than the ones that took them.
#[test]
fn handles_joined_elsewhere_and_threads_exiting_with_cached_cells() {
    let _dog = watchdog("cells across threads", Duration::from_secs(120));
    let pool = Arc::new(pool("ply-cells-x", 2));
    let drops = Arc::new(AtomicUsize::new(0));
    let per_thread = 2000u64;
    let threads = 6u64;
    let (to_joiner, joiner_rx) = mpsc::channel();
    let joiner = std::thread::spawn(move || {
        let mut sum = 0;
        for h in joiner_rx {
            let h: ply_os::thread::TaskHandle<Counted<u64>> = h;
            sum += h.join().unwrap().value;
        }
        sum
    });
    let submitters: Vec<_> = (0..threads)
        .map(|t| {
            let (pool, drops, to_joiner) = (pool.clone(), drops.clone(), to_joiner.clone());
            std::thread::spawn(move || {
                let mut own = 0;
                for i in 0..per_thread {
                    let value = Counted {
                        value: t * per_thread + i,
                        drops: drops.clone(),
                    };
                    let h = pool.submit(move || value).unwrap();
                    match i % 3 {
                        0 => own += h.join().unwrap().value,
                        1 => to_joiner.send(h).unwrap(),
                        _ => drop(h),
                    }
                }
                own
            })
        })
        .collect();
    drop(to_joiner);
    let own: u64 = submitters.into_iter().map(|s| s.join().unwrap()).sum();
    let joined_elsewhere = joiner.join().unwrap();
    let all = threads * per_thread;
    let expected_sum = |rem| (0..all).filter(|v| v % per_thread % 3 == rem).sum::<u64>();
    assert_eq!(own, expected_sum(0));
    assert_eq!(joined_elsewhere, expected_sum(1));
    drop(pool);
    assert_eq!(drops.load(SeqCst), all as usize);
}

/// A result whose `Drop` submits a task to the same pool and joins it: on
/// the joining thread, and on a worker (the handle was dropped first, so
/// the worker drops the result as it frees the cell).
#[test]
fn a_result_whose_drop_submits_to_the_pool() {
    let _dog = watchdog("drop submits", Duration::from_secs(120));

    struct Resubmit {
        pool: Arc<ThreadPool>,
        id: u32,
        seen: mpsc::Sender<Result<u32, TaskError>>,
    }
    impl Drop for Resubmit {
        fn drop(&mut self) {
            let id = self.id;
            let outcome = match self.pool.submit(move || id) {
                Ok(h) => h.join(),
                Err(_) => Err(TaskError::Cancelled),
            };
            self.seen.send(outcome).unwrap();
        }
    }

    let pool = Arc::new(pool("ply-cells-drop", 2));
    let (seen_tx, seen) = mpsc::channel();
    let n = 200u32;
    for id in 0..n {
        let value = Resubmit {
            pool: pool.clone(),
            id,
            seen: seen_tx.clone(),
        };
        let h = pool.submit(move || value).unwrap();
        if id % 2 == 0 {
            drop(h.join().unwrap()); // dropped here
        } else {
            drop(h); // dropped by a worker, or here if the task is done
        }
    }
    let mut ids: Vec<u32> = (0..n)
        .map(|_| {
            seen.recv_timeout(Duration::from_secs(30))
                .expect("a result's Drop never ran")
                .expect("the Drop's task failed")
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..n).collect::<Vec<_>>());
}

/// A process whose thread has cached cells forks; the child builds a pool
/// and uses the inherited cache. The child's count is its exit status.
#[test]
fn a_forked_child_builds_a_pool_from_an_inherited_cache() {
    let _dog = watchdog("fork with cached cells", Duration::from_secs(120));
    let pool = pool("ply-cells-fork", 2);
    // Fill this thread's cache: every handle joined here frees its cell here.
    let handles: Vec<_> = (0..500u64)
        .map(|i| pool.submit(move || i).unwrap())
        .collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..500).sum());

    // SAFETY: the child runs only the closure below and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(|| {
            let pool = ThreadPool::new(2).unwrap();
            let handles: Vec<_> = (0..2000u64)
                .map(|i| pool.submit(move || i).unwrap())
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>() == (0..2000).sum()
        });
        // SAFETY: ends the child without running the parent's exit code.
        unsafe { libc::_exit(if matches!(ok, Ok(true)) { 0 } else { 1 }) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    loop {
        // SAFETY: reaps our own child.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: {status:#x}"
    );
}
