//! Unit and stress tests for the locks and signals (threads; the cross-process
//! versions are in the workspace's `tests/shared_sync.rs`, the loom models in
//! `core/tests/loom.rs`).

use super::*;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::vec::Vec;

const THREADS: usize = 4;
/// Increments per thread: a million in total in release, fewer in debug and Miri.
const PER_THREAD: usize = if cfg!(miri) {
    50
} else if cfg!(debug_assertions) {
    50_000
} else {
    250_000
};

/// Four threads increment a plain (non-atomic) counter under `lock`; any
/// overlap of critical sections would lose increments.
fn counts_exactly<L: Sync>(lock: &L, add: impl Fn(&L) + Sync) {
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..PER_THREAD {
                    add(lock);
                }
            });
        }
    });
}

#[test]
fn spin_mutex_excludes() {
    let m = SpinMutex::new(0usize);
    counts_exactly(&m, |m| *m.lock() += 1);
    assert_eq!(*m.lock(), THREADS * PER_THREAD);
}

#[test]
fn ticket_mutex_excludes() {
    // A fifth of the work: with four threads on a two-core machine, a FIFO spin
    // lock hands over only when the next ticket holder is running, so each
    // hand-off can wait for the scheduler (the convoy its docs describe).
    let m = TicketMutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..PER_THREAD / 5 {
                    *m.lock() += 1;
                }
            });
        }
    });
    assert_eq!(*m.lock(), THREADS * (PER_THREAD / 5));
}

#[test]
fn rwlock_writers_exclude() {
    let m = RwLock::new(0usize);
    counts_exactly(&m, |m| *m.write() += 1);
    assert_eq!(*m.read(), THREADS * PER_THREAD);
}

#[test]
fn bounded_forms_give_up_and_succeed() {
    let m = SpinMutex::new(1);
    let t = TicketMutex::new(1);
    let r = RwLock::new(1);
    {
        let _g = m.lock();
        let _h = t.lock();
        let _w = r.write();
        assert!(m.lock_with(Spins(100)).is_none());
        // SAFETY: only calls the raw lock's bounded `lock_with`, which fails
        // here (the lock is held), so the guard's state is untouched.
        assert!(!unsafe { m.raw() }.lock_with(Spins(100)));
        assert!(t.lock_with(Spins(100)).is_none());
        assert!(r.read_with(Spins(100)).is_none());
        assert!(r.write_with(Spins(100)).is_none());
        assert!(m.try_lock().is_none());
        assert!(t.try_lock().is_none());
    }
    assert_eq!(m.lock_with(Spins(0)).map(|g| *g), Some(1));
    assert_eq!(t.lock_with(Spins(0)).map(|g| *g), Some(1));
    assert_eq!(r.read_with(Spins(0)).map(|g| *g), Some(1));
    assert_eq!(r.write_with(Spins(0)).map(|g| *g), Some(1));
}

#[test]
fn deadline_patience_stops_when_the_check_says_so() {
    let m = SpinMutex::new(());
    let _g = m.lock();
    let mut checks = 0;
    let got = m.lock_with(Deadline(|| {
        checks += 1;
        checks > 5
    }));
    assert!(got.is_none());
    assert_eq!(checks, 6);
}

#[test]
fn ticket_mutex_serves_in_ticket_order() {
    // A holds the lock (taken free, with no ticket); B takes ticket 0, then C
    // ticket 1 (observed through the raw counters); when A releases, B must
    // enter before C.
    for _ in 0..if cfg!(miri) { 2 } else { 20 } {
        let m = TicketMutex::new(Vec::new());
        let guard = m.lock();
        std::thread::scope(|s| {
            let b = s.spawn(|| m.lock().push('B'));
            while !m.is_locked() || ticket_count(&m) < 1 {
                std::thread::yield_now();
            }
            let c = s.spawn(|| m.lock().push('C'));
            while ticket_count(&m) < 2 {
                std::thread::yield_now();
            }
            drop(guard);
            b.join().unwrap();
            c.join().unwrap();
        });
        assert_eq!(*m.lock(), ['B', 'C']);
    }
}

/// Tickets handed out so far (white-box: reads the raw lock's counter).
fn ticket_count<T>(m: &TicketMutex<T>) -> usize {
    // SAFETY: only reads the raw lock's atomic counter.
    let raw: &RawTicketMutex = unsafe { m.raw() };
    raw.tickets_issued()
}

#[test]
fn rwlock_no_writer_overlaps_a_reader() {
    let lock = RwLock::new(0u64);
    let readers_inside = AtomicU32::new(0);
    let writer_inside = AtomicBool::new(false);
    let rounds = PER_THREAD / 10;
    std::thread::scope(|s| {
        for id in 0..THREADS {
            let (lock, readers_inside, writer_inside) = (&lock, &readers_inside, &writer_inside);
            s.spawn(move || {
                for i in 0..rounds {
                    if (i + id) % 4 == 0 {
                        let mut g = lock.write();
                        assert!(!writer_inside.swap(true, SeqCst), "two writers");
                        assert_eq!(readers_inside.load(SeqCst), 0, "writer with readers");
                        *g += 1;
                        writer_inside.store(false, SeqCst);
                    } else {
                        let g = lock.read();
                        readers_inside.fetch_add(1, SeqCst);
                        assert!(!writer_inside.load(SeqCst), "reader with a writer");
                        let _ = *g;
                        readers_inside.fetch_sub(1, SeqCst);
                    }
                }
            });
        }
    });
    let writes: usize = (0..THREADS)
        .map(|id| (0..rounds).filter(|i| (i + id) % 4 == 0).count())
        .sum();
    assert_eq!(*lock.read() as usize, writes);
}

#[test]
fn rwlock_prefers_a_waiting_writer() {
    let lock = RwLock::new(0);
    let reader = lock.read();
    std::thread::scope(|s| {
        let writer = s.spawn(|| *lock.write() = 1);
        // Once the writer is registered, new readers stand aside.
        // SAFETY: white-box read of the raw lock's counter.
        while !unsafe { lock.raw() }.is_writer_waiting() {
            std::thread::yield_now();
        }
        assert!(
            lock.try_read().is_none(),
            "a new reader jumped the waiting writer"
        );
        drop(reader);
        writer.join().unwrap();
    });
    assert_eq!(*lock.read(), 1);
}

#[test]
fn semaphore_never_admits_more_than_its_permits() {
    const PERMITS: u32 = 3;
    let sem = Semaphore::new(PERMITS);
    let inside = AtomicU32::new(0);
    let high_water = AtomicU32::new(0);
    let total = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS * 2 {
            s.spawn(|| {
                for _ in 0..PER_THREAD / 10 {
                    let _permit = sem.acquire();
                    let now = inside.fetch_add(1, SeqCst) + 1;
                    high_water.fetch_max(now, SeqCst);
                    total.fetch_add(1, SeqCst);
                    inside.fetch_sub(1, SeqCst);
                }
            });
        }
    });
    assert!(
        high_water.load(SeqCst) <= PERMITS,
        "{}",
        high_water.load(SeqCst)
    );
    assert!(high_water.load(SeqCst) >= 1);
    assert_eq!(total.load(SeqCst), THREADS * 2 * (PER_THREAD / 10));
    assert_eq!(sem.available(), PERMITS);
}

#[test]
fn semaphore_release_wakes_a_waiter_and_forget_keeps_the_permit() {
    let sem = Semaphore::new(0);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| sem.acquire().forget());
        sem.release(1);
        waiter.join().unwrap();
    });
    assert_eq!(
        sem.available(),
        0,
        "the forgotten permit was not given back"
    );
    assert!(sem.try_acquire().is_none());
    assert_eq!(
        sem.available(),
        0,
        "a failed try_acquire must not add a permit"
    );
    assert!(sem.acquire_with(Spins(10)).is_none());
    sem.release(2);
    let a = sem.try_acquire();
    let b = sem.try_acquire();
    assert!(a.is_some() && b.is_some());
    assert!(sem.try_acquire().is_none());
}

#[test]
fn event_wakes_every_waiter() {
    let event = Event::new();
    let woke = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                event.wait();
                woke.fetch_add(1, SeqCst);
            });
        }
        assert!(!event.wait_with(Spins(10)));
        event.set();
    });
    assert_eq!(woke.load(SeqCst), THREADS as u32);
    assert!(event.is_set());
    event.clear();
    assert!(!event.is_set());
    assert!(!event.wait_with(Spins(3)));
}

#[test]
fn barrier_rounds_keep_everyone_in_step_with_one_leader() {
    let rounds = if cfg!(miri) { 3 } else { 200 };
    let barrier = Barrier::new(THREADS as u32);
    let phase = AtomicUsize::new(0);
    let leaders = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for round in 0..rounds {
                    assert_eq!(phase.load(SeqCst) / THREADS, round, "someone ran ahead");
                    phase.fetch_add(1, SeqCst);
                    if barrier.wait().is_leader() {
                        leaders.fetch_add(1, SeqCst);
                    }
                    // Everyone of this round has arrived.
                    assert!(phase.load(SeqCst) >= (round + 1) * THREADS);
                    // Second barrier so nobody starts the next round's count early.
                    barrier.wait();
                }
            });
        }
    });
    assert_eq!(leaders.load(SeqCst), rounds);
}

#[test]
fn barrier_wait_with_gives_up_alone() {
    let b = Barrier::new(2);
    assert!(b.wait_with(Spins(5)).is_none());
    assert_eq!(b.parties(), 2);
    assert!(Barrier::new(0).wait().is_leader(), "0 parties means 1");
}

#[test]
fn spin_park_returns_when_the_word_differs() {
    let word = core::sync::atomic::AtomicU32::new(3);
    SpinPark.wait(&word, 4); // differs: must return at once
    std::thread::scope(|s| {
        s.spawn(|| word.store(5, SeqCst));
        while word.load(SeqCst) == 3 {
            SpinPark.wait(&word, 3);
        }
    });
    assert_eq!(word.load(SeqCst), 5);
}

#[test]
fn once_and_lazy_run_their_initializer_once() {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    static LAZY: Lazy<u32> = Lazy::new(|| CALLS.fetch_add(1, SeqCst) + 10);
    let once = Once::new();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                assert_eq!(*LAZY, 10);
                assert_eq!(*once.call_once(|| 7), 7);
            });
        }
    });
    assert_eq!(CALLS.load(SeqCst), 1);
}

/// Runs `f` on a thread and returns its result, failing the test if it has not
/// finished within a generous watchdog: the tests of waits that must end (a
/// dead party, a deadline) would otherwise hang instead of failing.
pub(super) fn finishes<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("watchdog: the wait did not end")
}

/// Runs `f`, which must panic.
fn panics(f: impl FnOnce()) {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    assert!(caught.is_err(), "the critical section should have panicked");
}

#[test]
fn a_panic_in_a_critical_section_unlocks_without_poisoning() {
    // No lock here poisons (as `lock_api`'s do not): the guard's drop unlocks
    // while the panic unwinds, and the next holder sees the data as the panic
    // left it, with no error. A lock left held would hang the next `lock`.
    let spin = SpinMutex::new(0u32);
    panics(|| {
        let mut guard = spin.lock();
        *guard = 1;
        panic!("inside a spin lock");
    });
    assert_eq!(spin.try_lock().as_deref(), Some(&1));

    let ticket = TicketMutex::new(0u32);
    panics(|| {
        let mut guard = ticket.lock();
        *guard = 2;
        panic!("inside a ticket lock");
    });
    assert_eq!(ticket.try_lock().as_deref(), Some(&2));

    let rw = RwLock::new(0u32);
    panics(|| {
        let mut guard = rw.write();
        *guard = 3;
        panic!("inside a write lock");
    });
    panics(|| {
        let _guard = rw.read();
        panic!("inside a read lock");
    });
    assert_eq!(rw.try_write().as_deref(), Some(&3));

    struct One;
    // SAFETY: one owner, never reported dead.
    unsafe impl Liveness for One {
        fn current(&self) -> u32 {
            1
        }
        fn is_alive(&self, _: u32) -> bool {
            true
        }
    }
    let robust = RobustMutex::new(0u32, One, SpinPark);
    panics(|| {
        let mut guard = robust.lock().unwrap();
        *guard = 4;
        panic!("inside a robust lock");
    });
    // A panic is not a death: the lock is free and not reported inconsistent.
    assert_eq!(
        robust.lock_with(Spins(0)).map(|r| r.map(|g| *g).ok()),
        Some(Some(4))
    );

    let semaphore = Semaphore::new(1);
    panics(|| {
        let _permit = semaphore.acquire();
        panic!("holding a permit");
    });
    assert!(semaphore.try_acquire().is_some(), "the permit came back");
}

/// A park that counts its wake-up calls (and never sleeps).
struct CountingPark<'a>(&'a AtomicUsize);

impl Park for CountingPark<'_> {
    fn wait_timeout(&self, _: &AtomicU32, _: u32, _: Timeout) {}
    fn wake_one(&self, _: &AtomicU32) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_all(&self, _: &AtomicU32) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn an_event_waiter_that_panics_does_not_stay_registered() {
    // The patience is the caller's code, asked for the park's timeout while
    // the waiter is counted. A panic there must not leave it counted, or every
    // later `set` makes a wake-up call (a futex syscall with ply-os) for nobody.
    struct PanicsOnPark;
    impl Patience for PanicsOnPark {
        fn keep_waiting(&mut self) -> bool {
            true
        }
        fn park_timeout(&mut self) -> Timeout {
            panic!("the patience panics while the waiter is counted")
        }
    }
    let wakes = AtomicUsize::new(0);
    let event = Event::with_park(CountingPark(&wakes));
    panics(|| {
        event.wait_with(PanicsOnPark);
    });
    event.set();
    assert_eq!(wakes.load(SeqCst), 0, "a wake-up call for nobody");
}
