//! ply-core's queue, lock, signal and partition tests that need no threads, on
//! a Cortex-M3 (QEMU's lm3s6965evb), plus the embedded form of a race: a
//! SysTick interrupt pushes into an SPSC ring while the main loop pops.
//!
//! Each test prints `test NAME ... ok` through semihosting; the run ends with
//! `N passed, 0 failed` and exit status 0. A failed assertion panics: the panic
//! handler prints it and exits QEMU with status 1, which fails CI.
#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use ply_core::partition::{ChunkDispenser, CostFn, Even, Fixed, Guided, Schedule, Weighted, shard};
use ply_core::queue::mpmc::{ArrayQueue, ScqQueue, SliceScqQueue};
use ply_core::queue::spsc::{Consumer, Producer, Ring, SliceRing};
use ply_core::queue::storage::Inline;
use ply_core::sync::{
    Barrier, Event, LockWith, Once, RwLock, Semaphore, SpinMutex, Spins, TicketMutex,
};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("FAILED: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

/// Runs each test function, printing its name, then the closing tally.
macro_rules! run_tests {
    ($($name:ident),* $(,)?) => {{
        let mut passed = 0;
        $(
            $name();
            hprintln!("test {} ... ok", stringify!($name));
            passed += 1;
        )*
        passed
    }};
}

#[entry]
fn main() -> ! {
    let passed = run_tests!(
        spsc_fifo_full_and_empty,
        spsc_capacity_one,
        spsc_wraps_for_odd_capacities,
        spsc_slice_ring_over_a_static_buffer,
        spsc_chunks_wrap_into_two_slices,
        spsc_drops_leftovers_once,
        array_queue_fifo_and_force_push,
        scq_matches_a_fifo_model,
        scq_over_caller_buffers,
        spin_and_ticket_locks,
        rwlock_readers_and_writers,
        semaphore_permits_and_timeouts,
        event_set_wait_clear,
        barrier_and_once,
        schedules_cover_every_index_once,
        dispenser_claims_and_reclaims,
        systick_interrupt_feeds_the_ring_in_order,
    );
    hprintln!("{} passed, 0 failed", passed);
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::bkpt();
    }
}

// ---- queues ----

fn spsc_fifo_full_and_empty() {
    let mut ring = Ring::<u32, 3>::new();
    let (mut tx, mut rx) = ring.split();
    assert!(rx.is_empty());
    assert_eq!(rx.pop(), None);
    for i in 1..=3 {
        assert_eq!(tx.push(i), Ok(()));
    }
    assert!(tx.is_full());
    assert_eq!(tx.push(4), Err(4));
    assert_eq!(rx.pop(), Some(1));
    assert_eq!(tx.push(4), Ok(()));
    for i in 2..=4 {
        assert_eq!(rx.pop(), Some(i));
    }
    assert_eq!(rx.pop(), None);
}

fn spsc_capacity_one() {
    let mut ring = Ring::<u8, 1>::new();
    let (mut tx, mut rx) = ring.split();
    for i in 0..20 {
        assert_eq!(tx.push(i), Ok(()));
        assert_eq!(tx.push(99), Err(99));
        assert_eq!(rx.peek(), Some(&i));
        assert_eq!(rx.pop(), Some(i));
        assert_eq!(rx.pop(), None);
    }
}

/// Many laps at every fill level; FIFO and the capacity bound hold throughout.
fn laps<const N: usize>() {
    let mut ring = Ring::<u32, N>::new();
    let (tx, rx) = ring.split();
    laps_over(tx, rx, N);
}

fn laps_over<S>(mut tx: Producer<'_, S>, mut rx: Consumer<'_, S>, capacity: usize)
where
    S: ply_core::queue::storage::Slots<Item = MaybeUninit<u32>>,
{
    let (mut next_in, mut next_out) = (0u32, 0u32);
    for round in 0..(5 * capacity + 7) {
        for _ in 0..round % (capacity + 1) {
            if tx.push(next_in).is_ok() {
                next_in += 1;
            }
        }
        assert!(tx.len() <= capacity);
        for _ in 0..(round % 3 + 1) {
            if let Some(v) = rx.pop() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
    }
    while let Some(v) = rx.pop() {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_in, next_out);
    assert!(next_in as usize > 2 * capacity);
}

fn spsc_wraps_for_odd_capacities() {
    laps::<1>();
    laps::<2>();
    laps::<3>();
    laps::<5>();
    laps::<7>();
    laps::<16>();
}

fn spsc_slice_ring_over_a_static_buffer() {
    static mut BUFFER: [MaybeUninit<u32>; 13] = [MaybeUninit::uninit(); 13];
    // SAFETY: this test is the only user of BUFFER, and runs once.
    let buffer = unsafe { &mut *core::ptr::addr_of_mut!(BUFFER) };
    for capacity in [1, 5, 13] {
        let mut ring = SliceRing::new(&mut buffer[..capacity]).unwrap();
        let (tx, rx) = ring.split();
        laps_over(tx, rx, capacity);
    }
    assert!(SliceRing::new(&mut buffer[..0]).is_err());
}

fn spsc_chunks_wrap_into_two_slices() {
    let mut ring = Ring::<u16, 4>::new();
    let (mut tx, mut rx) = ring.split();
    assert_eq!(tx.push_slice(&[0, 0, 0]), 3);
    assert_eq!(rx.pop_slice(&mut [0; 3]), 3);
    assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5]), 4);
    let chunk = rx.read_chunk(4).unwrap();
    assert_eq!(chunk.as_slices(), (&[1][..], &[2, 3, 4][..]));
    chunk.commit(2);
    let mut out = [0; 4];
    assert_eq!(rx.pop_slice(&mut out), 2);
    assert_eq!(&out[..2], &[3, 4]);
}

static DROPS: AtomicUsize = AtomicUsize::new(0);
struct Counted;
impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, SeqCst);
    }
}

fn spsc_drops_leftovers_once() {
    DROPS.store(0, SeqCst);
    {
        let mut ring = Ring::<Counted, 3>::new();
        let (mut tx, mut rx) = ring.split();
        for _ in 0..2 {
            assert!(tx.push(Counted).is_ok());
            drop(rx.pop());
        }
        for _ in 0..3 {
            assert!(tx.push(Counted).is_ok());
        }
        assert_eq!(DROPS.load(SeqCst), 2);
    }
    assert_eq!(DROPS.load(SeqCst), 5);
}

fn array_queue_fifo_and_force_push() {
    fn check<const N: usize>() {
        let q = ArrayQueue::<u32, N>::new();
        for lap in 0..4u32 {
            for i in 0..N as u32 {
                assert_eq!(q.push(lap * 100 + i), Ok(()));
            }
            assert_eq!(q.push(7), Err(7));
            assert_eq!(q.len(), N);
            for i in 0..N as u32 {
                assert_eq!(q.pop(), Some(lap * 100 + i));
            }
            assert_eq!(q.pop(), None);
        }
        for i in 0..N as u32 {
            assert_eq!(q.force_push(i), None);
        }
        assert_eq!(q.force_push(1000), Some(0));
        assert_eq!(q.len(), N);
    }
    check::<1>();
    check::<3>();
    check::<5>();
    check::<8>();
}

/// A deterministic walk of pushes and pops against a small array model.
fn scq_walk(push: impl Fn(u32) -> Result<(), u32>, pop: impl Fn() -> Option<u32>, cap: usize) {
    let mut model = [0u32; 64];
    let (mut head, mut len) = (0usize, 0usize);
    let mut x = 12345u32;
    for step in 0..2000u32 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        if (x >> 16).is_multiple_of(2) {
            match push(step) {
                Ok(()) => {
                    model[(head + len) % 64] = step;
                    len += 1;
                }
                Err(v) => {
                    assert_eq!(v, step);
                    assert_eq!(len, cap, "full below capacity");
                }
            }
        } else {
            let want = (len > 0).then(|| model[head]);
            if len > 0 {
                head = (head + 1) % 64;
                len -= 1;
            }
            assert_eq!(pop(), want);
        }
    }
}

fn scq_matches_a_fifo_model() {
    fn check<const N: usize>() {
        let q = ScqQueue::<u32, N>::new();
        scq_walk(|v| q.push(v), || q.pop(), N);
    }
    check::<1>();
    check::<2>();
    check::<4>();
    check::<16>();
}

fn scq_over_caller_buffers() {
    let mut slots = [MaybeUninit::<u32>::uninit(); 8];
    let mut entries: [AtomicUsize; 32] = [const { AtomicUsize::new(0) }; 32];
    let q = SliceScqQueue::new(&mut slots, &mut entries).unwrap();
    scq_walk(|v| q.push(v), || q.pop(), 8);
}

// ---- locks and signals ----

fn spin_and_ticket_locks() {
    let spin = SpinMutex::new(0u32);
    {
        let mut g = spin.lock();
        *g += 1;
        assert!(spin.try_lock().is_none());
        assert!(spin.lock_with(Spins(50)).is_none(), "bounded lock gives up");
    }
    assert_eq!(*spin.lock_with(Spins(50)).expect("free"), 1);

    let ticket = TicketMutex::new(5u32);
    {
        let _g = ticket.lock();
        assert!(ticket.try_lock().is_none());
        assert!(ticket.lock_with(Spins(50)).is_none());
    }
    // The waiter that gave up left the lock usable.
    *ticket.lock() += 1;
    assert_eq!(*ticket.try_lock().expect("free"), 6);
}

fn rwlock_readers_and_writers() {
    let lock = RwLock::new(1u32);
    {
        let a = lock.read();
        let b = lock.read();
        assert_eq!(*a + *b, 2);
        assert!(lock.try_write().is_none());
    }
    {
        let mut w = lock.write();
        *w = 9;
        assert!(lock.try_read().is_none());
    }
    assert_eq!(*lock.read(), 9);
}

fn semaphore_permits_and_timeouts() {
    let sem = Semaphore::new(2);
    let a = sem.try_acquire().expect("first");
    let b = sem.acquire();
    assert!(sem.try_acquire().is_none());
    assert!(sem.acquire_with(Spins(20)).is_none());
    drop(a);
    assert_eq!(sem.available(), 1);
    b.forget();
    assert_eq!(sem.available(), 1);
    sem.release(1);
    assert_eq!(sem.available(), 2);
}

fn event_set_wait_clear() {
    let event = Event::new();
    assert!(!event.is_set());
    assert!(!event.wait_with(Spins(20)));
    event.set();
    event.wait();
    assert!(event.wait_with(Spins(0)));
    event.clear();
    assert!(!event.is_set());
}

fn barrier_and_once() {
    let one = Barrier::new(1);
    for _ in 0..3 {
        assert!(one.wait().is_leader());
    }
    let two = Barrier::new(2);
    assert!(
        two.wait_with(Spins(20)).is_none(),
        "the other party never came"
    );

    static RUNS: AtomicU32 = AtomicU32::new(0);
    let once = Once::<u32>::new();
    for _ in 0..3 {
        assert_eq!(*once.call_once(|| RUNS.fetch_add(1, SeqCst) + 7), 7);
    }
    assert_eq!(RUNS.load(SeqCst), 1);
}

// ---- partition ----

/// Every index of `0..len` in exactly one chunk, in increasing order.
fn covers(s: &impl Schedule, len: usize) {
    let mut next = 0;
    for chunk in s.iter() {
        assert_eq!(chunk.start, next);
        next = chunk.end;
    }
    assert_eq!(next, len);
}

fn schedules_cover_every_index_once() {
    for len in [0, 1, 7, 100, 1001] {
        for parts in 1..6 {
            covers(&Even::new(len, parts).unwrap(), len);
            covers(&Fixed::new(len, parts).unwrap(), len);
            covers(&Guided::new(len, parts, 2, 3).unwrap(), len);
            covers(
                &Weighted::new(CostFn::new(len, |i| (i % 7) as u64), parts).unwrap(),
                len,
            );
            let mut next = 0;
            for k in 0..parts {
                let r = shard(k, parts, len).unwrap();
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, len);
        }
    }
    assert!(Even::new(5, 0).is_err());
    assert!(shard(3, 3, 10).is_err());
}

fn dispenser_claims_and_reclaims() {
    let schedule = Fixed::new(100, 7).unwrap();
    let d = ChunkDispenser::<2>::new();
    let first = d.claim(0, &schedule).expect("a chunk");
    assert_eq!(first.range, 0..7);
    // Worker 0 "dies" holding chunk 0: reclaimed, and re-issued first.
    assert_eq!(d.reclaim(0), Some(0));
    let mut seen = [0u8; 100];
    while let Some(claim) = d.claim(1, &schedule) {
        for i in claim.range {
            seen[i] += 1;
        }
        d.complete(1);
    }
    assert!(seen.iter().all(|&c| c == 1));
    assert_eq!(d.held_by(0), None);
}

// ---- an interrupt racing the main loop ----

/// Items the SysTick handler produces.
const TICK_ITEMS: u32 = 3000;
/// The ring between the SysTick handler (producer) and the main loop (consumer).
static TICK_RING: Ring<u32, 8> = Ring::new();
/// Pushes the handler found the ring full (and retried on a later tick).
static TICK_FULL: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    static mut PRODUCER: Option<Producer<'static, Inline<u32, 8>>> = None;
    static mut NEXT: u32 = 0;
    if *NEXT >= TICK_ITEMS {
        return;
    }
    let producer = PRODUCER.get_or_insert_with(|| {
        // SAFETY: the handler makes the ring's only producer, once; the main
        // loop makes its only consumer.
        unsafe { TICK_RING.split_unchecked() }.0
    });
    // Push the next item; if the ring is full, keep it for the next tick, so
    // nothing is skipped or repeated.
    if producer.push(*NEXT).is_ok() {
        *NEXT += 1;
    } else {
        TICK_FULL.fetch_add(1, SeqCst);
    }
}

fn systick_interrupt_feeds_the_ring_in_order() {
    // SAFETY: the main loop's only consumer of TICK_RING (see `SysTick`).
    let mut rx = unsafe { TICK_RING.split_unchecked() }.1;
    let mut core = cortex_m::Peripherals::take().expect("core peripherals");
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(2_000);
    core.SYST.clear_current();
    core.SYST.enable_interrupt();
    core.SYST.enable_counter();
    let mut expected = 0u32;
    let mut idle = 0u32;
    while expected < TICK_ITEMS {
        match rx.pop() {
            Some(v) => {
                assert_eq!(v, expected, "an item was lost, repeated or reordered");
                expected += 1;
                idle = 0;
                // Now and then fall behind until the handler has met a full
                // ring, so its retry path runs too.
                if v.is_multiple_of(500) {
                    let full_before = TICK_FULL.load(SeqCst);
                    let mut waited = 0u32;
                    while TICK_FULL.load(SeqCst) == full_before {
                        waited += 1;
                        assert!(
                            waited < 50_000_000,
                            "the SysTick interrupt stopped arriving"
                        );
                    }
                }
            }
            None => {
                idle += 1;
                assert!(idle < 50_000_000, "the SysTick interrupt stopped arriving");
            }
        }
    }
    core.SYST.disable_interrupt();
    core.SYST.disable_counter();
    assert_eq!(rx.pop(), None, "nothing after the last item");
    assert!(
        TICK_FULL.load(SeqCst) >= TICK_ITEMS / 500,
        "the full-ring path ran"
    );
    hprintln!(
        "  {} items from SysTick in order; the handler found the ring full {} times",
        TICK_ITEMS,
        TICK_FULL.load(SeqCst)
    );
}
