//! The process pool's shared-memory channel (`pool/shm_channel.rs`) under
//! faults: a worker killed while it holds a request taken from the channel,
//! killed half-way through writing its reply, stopped while the submitter
//! waits, and a worker that lies in the channel (a reply length past its
//! slot). Each is reported to the right handle, never as another task's
//! result and never as undefined behaviour; the pool serves on and leaves no
//! child behind. Plus: many submitters, small and socket-sized messages,
//! every result accounted for; and an idle pool's workers sleep.
//!
//! A worker scribbles on its channel through its own mapping (found by name
//! in `/proc/self/maps`), at the offsets of the channel's layout on x86-64
//! and aarch64 (`CachePadded` lines of 128 bytes).

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{assert_no_descendants, serial, watchdog};
use ply_os::fork::Signal;
use ply_os::process::{Failure, PoolTaskError, ProcessPool, ProcessPoolBuilder, Retry};

/// Offsets in the channel's region.
const REQUEST_SEQ: usize = 0;
const REPLY_SEQ: usize = 128;
const REPLY_LEN: usize = 132;
const REPLY: usize = 256 + (16 << 10);

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
enum Job {
    Echo(Vec<u8>),
    /// SIGKILL itself while holding the request.
    KillSelf,
    /// SIGSTOP itself while holding the request.
    StopSelf,
    /// Write half a reply into the slot (unpublished), then SIGKILL itself.
    HalfReplyThenDie,
    /// Write half a reply into the slot (unpublished), then SIGSTOP itself.
    HalfReplyThenStop,
    /// Publish a reply of garbage bytes, then SIGKILL itself.
    GarbageThenDie,
    /// Publish a reply whose length is past its slot, then hang.
    LieAboutLength,
    /// Rewind the pool's request number in the channel by one, then reply
    /// normally: a pool that read its next number back from the channel
    /// would reuse this request's, and take this reply for the next task.
    RewindRequestNumber,
}

/// This worker's channel, mapped in this process.
fn my_channel() -> *mut u8 {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|l| l.contains("ply-pool-channel"))
        .expect("a worker maps its channel");
    let start = line.split('-').next().unwrap();
    usize::from_str_radix(start, 16).unwrap() as *mut u8
}

fn word(base: *mut u8, offset: usize) -> &'static AtomicU32 {
    // SAFETY: `base` is this worker's live channel mapping, which it keeps
    // until it exits; the offsets are of aligned `AtomicU32` fields inside it.
    unsafe { &*base.add(offset).cast::<AtomicU32>() }
}

fn raise(signal: libc::c_int) {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(signal) };
}

fn handle(job: Job) -> Vec<u8> {
    let base = || my_channel();
    match job {
        Job::Echo(bytes) => bytes,
        Job::KillSelf => {
            raise(libc::SIGKILL);
            unreachable!()
        }
        Job::StopSelf => {
            raise(libc::SIGSTOP);
            Vec::new()
        }
        Job::HalfReplyThenDie => {
            let base = base();
            for i in 0..64 {
                // SAFETY: inside the reply slot of this worker's mapping.
                unsafe { base.add(REPLY + i).write_volatile(0xA5) };
            }
            raise(libc::SIGKILL);
            unreachable!()
        }
        Job::HalfReplyThenStop => {
            let base = base();
            for i in 0..64 {
                // SAFETY: inside the reply slot of this worker's mapping.
                unsafe { base.add(REPLY + i).write_volatile(0x5A) };
            }
            raise(libc::SIGSTOP);
            Vec::new()
        }
        Job::GarbageThenDie => {
            let base = base();
            for i in 0..8 {
                // SAFETY: as above.
                unsafe { base.add(REPLY + i).write_volatile(0xFF) };
            }
            word(base, REPLY_LEN).store(8, Ordering::Relaxed);
            let seq = word(base, REQUEST_SEQ).load(Ordering::SeqCst);
            word(base, REPLY_SEQ).store(seq, Ordering::SeqCst);
            raise(libc::SIGKILL);
            unreachable!()
        }
        Job::RewindRequestNumber => {
            let request = word(base(), REQUEST_SEQ);
            request.store(
                request.load(Ordering::SeqCst).wrapping_sub(1),
                Ordering::SeqCst,
            );
            b"rewound".to_vec()
        }
        Job::LieAboutLength => {
            let base = base();
            word(base, REPLY_LEN).store(u32::MAX - 7, Ordering::Relaxed);
            let seq = word(base, REQUEST_SEQ).load(Ordering::SeqCst);
            word(base, REPLY_SEQ).store(seq, Ordering::SeqCst);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn pool() -> ProcessPool<Job, Vec<u8>> {
    ProcessPoolBuilder::new()
        .workers(2)
        .retry(Retry::never())
        .build(handle)
        .unwrap()
}

fn echo(pool: &ProcessPool<Job, Vec<u8>>, bytes: &[u8]) {
    let got = pool.submit(&Job::Echo(bytes.to_vec())).unwrap().join();
    assert_eq!(got.unwrap(), bytes);
}

fn state_of(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .unwrap_or('?')
}

fn wait_for_workers(pool: &ProcessPool<Job, Vec<u8>>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.worker_pids().len() != n {
        assert!(
            Instant::now() < deadline,
            "the pool did not get {n} workers back"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signaled(result: &Result<Vec<u8>, PoolTaskError>, want: Signal) -> bool {
    matches!(result, Err(PoolTaskError::Worker { failure: Failure::Signaled { signal, .. }, attempts: 1, .. }) if *signal == want)
}

/// Killed while holding a request, or half-way through writing its reply
/// into the channel: the task fails with the kill, whether its joiner was
/// spinning (submitted to a worker just used) or asleep (after idling).
#[test]
fn a_worker_killed_holding_a_request_or_writing_its_reply_fails_its_task() {
    let _serial = serial();
    let _dog = watchdog("killed worker", Duration::from_secs(120));
    let pool = pool();
    for job in [Job::KillSelf, Job::HalfReplyThenDie] {
        for idle_first in [false, true] {
            echo(&pool, b"warm");
            if idle_first {
                std::thread::sleep(Duration::from_millis(20)); // every party asleep
            }
            let result = pool.submit(&job).unwrap().join();
            assert!(signaled(&result, Signal::KILL), "{job:?}: {result:?}");
            wait_for_workers(&pool, 2);
            echo(&pool, b"after");
        }
    }
    drop(pool);
    assert_no_descendants();
}

/// Stopped half-way through writing its reply (or while holding the
/// request): the task times out, whether its joiner spun or slept, and the
/// other worker serves meanwhile.
#[test]
fn a_worker_stopped_holding_a_request_or_writing_its_reply_times_out() {
    let _serial = serial();
    let _dog = watchdog("stopped worker, timeout", Duration::from_secs(120));
    let timeout = Duration::from_millis(500);
    let pool = ProcessPoolBuilder::new()
        .workers(2)
        .retry(Retry::never())
        .task_timeout(timeout)
        .build(handle)
        .unwrap();
    for job in [Job::HalfReplyThenStop, Job::StopSelf] {
        for idle_first in [false, true] {
            echo(&pool, b"warm");
            if idle_first {
                std::thread::sleep(Duration::from_millis(20)); // every party asleep
            }
            let stuck = pool.submit(&job).unwrap();
            echo(&pool, b"meanwhile");
            let result = stuck.join();
            assert!(
                matches!(&result, Err(PoolTaskError::Worker { failure: Failure::Timeout(t), .. }) if *t == timeout),
                "{job:?}: {result:?}"
            );
            wait_for_workers(&pool, 2);
        }
    }
    drop(pool);
    assert_no_descendants();
}

/// A reply published in the channel and then the worker's death: the reply
/// is what counts (here garbage, so a corrupt response, not a crash).
#[test]
fn a_reply_published_before_death_is_the_tasks_outcome() {
    let _serial = serial();
    let _dog = watchdog("garbage then death", Duration::from_secs(120));
    let pool = pool();
    let before = pool.worker_pids();
    let result = pool.submit(&Job::GarbageThenDie).unwrap().join();
    assert!(
        matches!(&result, Err(PoolTaskError::Corrupt(_))),
        "{result:?}"
    );
    // The reply can be taken before the worker's death is seen: wait for
    // its replacement, so the next task does not go to the dying worker.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = pool.worker_pids();
        if now.len() == 2 && now.iter().any(|p| !before.contains(p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead worker was not replaced"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    echo(&pool, b"after");
    drop(pool);
    assert_no_descendants();
}

/// The pool numbers its requests from its own memory, never from the
/// channel: a worker that rewinds the number cannot make the next task take
/// an old reply. (That task may fail — the worker misbehaved — but never
/// with another task's result.)
#[test]
fn a_worker_rewinding_the_request_number_never_hands_out_an_old_reply() {
    let _serial = serial();
    let _dog = watchdog("rewound request number", Duration::from_secs(120));
    let pool = ProcessPoolBuilder::new()
        .workers(1)
        .retry(Retry::never())
        .task_timeout(Duration::from_secs(2))
        .build(handle)
        .unwrap();
    for round in 0..5u32 {
        // The rewinding task itself may fail (its worker confused its own
        // side of the channel), but never with another task's bytes.
        let first = pool.submit(&Job::RewindRequestNumber).unwrap().join();
        if let Ok(bytes) = &first {
            assert_eq!(bytes, b"rewound", "round {round}");
        }
        let next = format!("next {round}").into_bytes();
        let second = pool.submit(&Job::Echo(next.clone())).unwrap().join();
        assert!(
            !matches!(&second, Ok(bytes) if bytes == b"rewound"),
            "round {round}: the next task got the rewinding task's reply"
        );
        if let Ok(bytes) = &second {
            assert_eq!(bytes, &next, "round {round}");
        }
    }
    drop(pool);
    assert_no_descendants();
}

/// A worker that announces a reply longer than its slot is killed as
/// corrupt; the pool reads nothing past the slot.
#[test]
fn a_reply_length_past_the_slot_is_a_corrupt_worker() {
    let _serial = serial();
    let _dog = watchdog("lying worker", Duration::from_secs(120));
    let pool = pool();
    let result = pool.submit(&Job::LieAboutLength).unwrap().join();
    assert!(
        matches!(
            &result,
            Err(PoolTaskError::Worker {
                failure: Failure::Corrupt(_),
                ..
            })
        ),
        "{result:?}"
    );
    wait_for_workers(&pool, 2);
    echo(&pool, b"after");
    drop(pool);
    assert_no_descendants();
}

/// A worker stopped while its submitter waits delays only that task: the
/// other worker serves meanwhile, and when the stopped one is killed from
/// outside its task reports that kill.
#[test]
fn a_worker_stopped_while_the_submitter_waits_delays_only_its_task() {
    let _serial = serial();
    let _dog = watchdog("stopped worker", Duration::from_secs(120));
    let pool = pool();
    let stuck = pool.submit(&Job::StopSelf).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stopped = loop {
        if let Some(pid) = pool.worker_pids().into_iter().find(|&p| state_of(p) == 'T') {
            break pid;
        }
        assert!(Instant::now() < deadline, "no worker stopped");
        std::thread::sleep(Duration::from_millis(1));
    };
    let waiter = std::thread::spawn(move || stuck.join());
    for i in 0..50u8 {
        echo(&pool, &[i; 3]);
    }
    assert!(!waiter.is_finished(), "the stopped task was not answered");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(stopped, libc::SIGKILL) };
    let result = waiter.join().unwrap();
    assert!(signaled(&result, Signal::KILL), "{result:?}");
    wait_for_workers(&pool, 2);
    echo(&pool, b"after");
    drop(pool);
    assert_no_descendants();
}

/// Four submitters at once, small requests through the channel and large
/// ones (over its 16 KiB slots) through the socket: every result comes back
/// to its own handle, once.
#[test]
fn many_submitters_get_every_result_through_channel_and_socket() {
    let _serial = serial();
    let _dog = watchdog("many submitters", Duration::from_secs(120));
    let pool = pool();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let pool = &pool;
            s.spawn(move || {
                let mut pending = Vec::new();
                for i in 0..300u32 {
                    let len = if i % 10 == 0 { 20_000 } else { 8 };
                    let mut bytes = vec![0u8; len];
                    bytes[..4].copy_from_slice(&t.to_le_bytes());
                    bytes[4..8].copy_from_slice(&i.to_le_bytes());
                    bytes[len - 1] = (i % 251) as u8;
                    let handle = pool.submit(&Job::Echo(bytes.clone())).unwrap();
                    pending.push((handle, bytes));
                    // Joined in pairs: the second of each pair waits in the
                    // queue or on the other worker meanwhile.
                    if i % 2 == 1 {
                        for (handle, bytes) in pending.drain(..) {
                            assert_eq!(handle.join().unwrap(), bytes, "submitter {t}, task {i}");
                        }
                    }
                }
            });
        }
    });
    drop(pool);
    assert_no_descendants();
}

/// Once the pool has nothing to do, its workers, its fork server and its
/// supervisor thread sleep: each is blocked (state `S`) and stays blocked
/// for half a second without being switched in once (a timed poll loop
/// would be, hundreds of times) and without CPU time (a spinning worker
/// would gain tens of clock ticks; one tick is allowed, for accounting).
#[test]
fn an_idle_pools_workers_sleep() {
    let _serial = serial();
    let _dog = watchdog("idle pool", Duration::from_secs(60));
    let pool = pool();
    for i in 0..20u8 {
        echo(&pool, &[i]);
    }
    let mut sleepers: Vec<String> = pool
        .worker_pids()
        .iter()
        .map(|p| format!("/proc/{p}"))
        .collect();
    assert_eq!(sleepers.len(), 2);
    sleepers.push(format!("/proc/{}", pool.server_pid().unwrap()));
    let supervisors = supervisor_threads();
    assert_eq!(supervisors.len(), 1, "one pool, one supervisor thread");
    sleepers.extend(supervisors);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sleepers.iter().all(|s| activity_of(s).0 == 'S') {
        assert!(Instant::now() < deadline, "the idle pool kept running");
        std::thread::sleep(Duration::from_millis(1));
    }
    let before: Vec<_> = sleepers.iter().map(|s| activity_of(s)).collect();
    std::thread::sleep(Duration::from_millis(500));
    for (task, (_, ticks_before, switches_before)) in sleepers.iter().zip(before) {
        let (state, ticks, switches) = activity_of(task);
        assert_eq!(state, 'S', "{task} woke up while the pool was idle");
        assert_eq!(
            switches, switches_before,
            "{task} was switched in while the pool was idle"
        );
        assert!(
            ticks <= ticks_before + 1,
            "{task} used {} clock ticks of CPU while the pool was idle",
            ticks - ticks_before
        );
    }
    drop(pool);
    assert_no_descendants();
}

/// The `/proc` directories of this process's pool supervisor threads.
fn supervisor_threads() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    tasks
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            // The thread's name, cut to the kernel's 15 bytes.
            (name.trim_end() == "ply-process-poo").then(|| dir.display().to_string())
        })
        .collect()
}

/// A task's state, its CPU time (user + system, in clock ticks) and how
/// often it has been switched out (voluntarily or not), from its `/proc`
/// directory.
fn activity_of(dir: &str) -> (char, u64, u64) {
    let stat = std::fs::read_to_string(format!("{dir}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    // After the name: state (field 3), ..., utime (14), stime (15).
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let state = fields.first().and_then(|f| f.chars().next()).unwrap_or('?');
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let switches = status
        .lines()
        .filter(|l| l.contains("ctxt_switches:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    (
        state,
        ticks(11).unwrap_or(0) + ticks(12).unwrap_or(0),
        switches,
    )
}

/// A worker sleeps on its channel with no timeout. Shutting the pool down
/// (by `shutdown`, `terminate` or drop) wakes the sleeping workers and ends
/// them all, even one stopped (`SIGSTOP`) in its sleep or in its spin right
/// after a reply: the call returns and every child is reaped.
#[test]
fn shutting_down_ends_workers_asleep_on_their_channels_stopped_or_not() {
    let _serial = serial();
    let _dog = watchdog("sleeping workers at shutdown", Duration::from_secs(120));
    let stop = |pid: i32| {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        while state_of(pid) != 'T' {
            std::thread::yield_now();
        }
    };
    for (how, stopped) in [
        ("drop", None),
        ("shutdown", None),
        ("terminate", None),
        ("drop", Some("asleep")),
        ("shutdown", Some("asleep")),
        ("terminate", Some("just replied")),
        ("drop", Some("just replied")),
    ] {
        let pool = pool();
        for i in 0..20u8 {
            echo(&pool, &[i]);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pool.worker_pids().iter().all(|&p| state_of(p) == 'S') {
            assert!(Instant::now() < deadline, "the idle workers kept running");
            std::thread::sleep(Duration::from_millis(1));
        }
        match stopped {
            Some("asleep") => stop(pool.worker_pids()[0]),
            // Still in its spin window (200 µs) or just past it.
            Some(_) => {
                echo(&pool, b"wake one");
                pool.worker_pids().into_iter().for_each(stop);
            }
            None => {}
        }
        match how {
            "shutdown" => pool.shutdown(),
            "terminate" => pool.terminate(),
            _ => {}
        }
        drop(pool);
        assert_no_descendants();
    }
}
