//! Stalls and kills injected at several points of the process APIs: a
//! worker stopped mid-request and mid-reply, a stopped fork server, a map
//! worker stopped while sending its report. Each must delay only its own
//! work, be reported with the reason ply killed it for, and leave no child
//! behind. Every test runs under a watchdog; none sleeps to win a race.

mod common;

use std::time::{Duration, Instant};

use common::{assert_no_descendants, serial, watchdog};
use ply_core::partition::Chunking;
use ply_os::process::{
    Failure, MapError, MapOptions, PoolTaskError, ProcessPool, ProcessPoolBuilder, map, map_plain,
};

/// Stops this whole process (a `SIGSTOP` to itself).
fn stop_self() {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// Starts a thread that stops this process as soon as the calling thread is
/// blocked in `write` (sending a reply or report bigger than the socket
/// buffer): a stop in the middle of a message.
fn stop_when_writing() {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() };
    std::thread::spawn(move || {
        let path = format!("/proc/self/task/{me}/syscall");
        loop {
            let syscall = std::fs::read_to_string(&path).unwrap_or_default();
            let number: i64 = syscall
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(-1);
            if number == libc::SYS_write || number == libc::SYS_sendto {
                stop_self();
                return;
            }
            std::hint::spin_loop();
        }
    });
}

/// The scheduler state of `pid` (`'T'` when stopped).
fn state_of(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .unwrap_or('?')
}

fn wait_for_workers<Req, Resp>(pool: &ProcessPool<Req, Resp>, n: usize)
where
    Req: serde::Serialize + serde::de::DeserializeOwned + 'static,
    Resp: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.worker_pids().len() != n {
        assert!(
            Instant::now() < deadline,
            "the pool did not get back to {n} workers"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Requests the fault handler understands.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy)]
enum Job {
    /// Answer at once.
    Echo(u64),
    /// Stop this worker in the middle of the request.
    StopMidRequest,
    /// Stop this worker in the middle of a big reply.
    StopMidReply,
    /// Never answer.
    Hang,
    /// Die of `SIGTERM` at once.
    Crash,
    /// Die of `SIGTERM` once the fork server (this worker's parent) is
    /// stopped.
    CrashOnceServerStopped,
}

fn handle(job: Job) -> Vec<u8> {
    match job {
        Job::Echo(x) => x.to_le_bytes().to_vec(),
        Job::StopMidRequest => {
            stop_self();
            Vec::new()
        }
        Job::StopMidReply => {
            stop_when_writing();
            vec![7u8; 48 << 20]
        }
        Job::Hang => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        Job::Crash => die(),
        Job::CrashOnceServerStopped => {
            // SAFETY: getppid has no preconditions.
            let server = unsafe { libc::getppid() };
            let deadline = Instant::now() + Duration::from_secs(60);
            while state_of(server) != 'T' && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            die()
        }
    }
}

fn die() -> Vec<u8> {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGTERM) };
    unreachable!("SIGTERM ends the worker")
}

fn echo(pool: &ProcessPool<Job, Vec<u8>>, x: u64) -> u64 {
    let reply = pool.submit(&Job::Echo(x)).unwrap().join().unwrap();
    u64::from_le_bytes(reply[..8].try_into().unwrap())
}

/// A worker stopped in the middle of a request, or of a large reply, holds
/// up nobody else: other tasks complete while it is stopped, and its own
/// task fails with the timeout — not with the SIGKILL that ended it.
#[test]
fn a_stopped_worker_delays_only_its_own_task() {
    let _serial = serial();
    let _dog = watchdog("stopped worker", Duration::from_secs(120));
    for job in [Job::StopMidRequest, Job::StopMidReply, Job::Hang] {
        let timeout = Duration::from_secs(3);
        let pool = ProcessPoolBuilder::new()
            .workers(2)
            .task_timeout(timeout)
            .build(handle)
            .unwrap();
        let stuck = pool.submit(&job).unwrap();
        // While it is stuck, the other worker serves a stream of tasks, all
        // answered while the stuck one is still pending.
        for x in 0..20 {
            assert_eq!(echo(&pool, x), x);
        }
        let stuck = stuck
            .join_timeout(Duration::ZERO)
            .expect_err("the stuck task was still pending while the others were served");
        let result = stuck.join();
        assert!(
            matches!(&result, Err(PoolTaskError::Worker { failure: Failure::Timeout(t), .. }) if *t == timeout),
            "{job:?}: {result:?}"
        );
        wait_for_workers(&pool, 2);
        assert_eq!(echo(&pool, 99), 99);
        drop(pool);
        assert_no_descendants();
    }
}

/// The fork server stopped at several points — before the task, while it
/// runs, after the timeout's kill — does not delay the timeout's report;
/// once it resumes, the pool gets its worker back.
#[test]
fn a_stopped_fork_server_does_not_delay_a_timeout() {
    let _serial = serial();
    let _dog = watchdog("stopped server", Duration::from_secs(120));
    for point in ["before", "during", "after"] {
        let timeout = Duration::from_millis(500);
        let pool = ProcessPoolBuilder::new()
            .workers(2)
            .task_timeout(timeout)
            .build(handle)
            .unwrap();
        let server = pool.server_pid().unwrap();
        let stop = || {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(server, libc::SIGSTOP) };
        };
        if point == "before" {
            stop();
        }
        let stuck = pool.submit(&Job::Hang).unwrap();
        if point == "during" {
            stop();
        }
        let result = stuck.join();
        if point == "after" {
            stop();
        }
        assert!(
            matches!(
                &result,
                Err(PoolTaskError::Worker {
                    failure: Failure::Timeout(_),
                    ..
                })
            ),
            "{point}: {result:?}"
        );
        // Reported with the server still stopped (not after it resumed).
        let deadline = Instant::now() + Duration::from_secs(10);
        while state_of(server) != 'T' {
            assert!(
                Instant::now() < deadline,
                "{point}: the server never stopped"
            );
            std::thread::yield_now();
        }
        // The other worker still serves with the server stopped.
        assert_eq!(echo(&pool, 5), 5, "{point}");
        // SAFETY: as above.
        unsafe { libc::kill(server, libc::SIGCONT) };
        wait_for_workers(&pool, 2);
        assert_eq!(echo(&pool, 6), 6, "{point}");
        drop(pool);
        assert_no_descendants();
    }
}

/// A worker that crashes while the fork server (its parent, which alone can
/// reap it) is stopped — stopped before the task, or while it runs — has its
/// task failed at once with the real signal, the server still stopped: its
/// status is read while it is a zombie. (A server stopped after reaping,
/// before reporting, is the unit test in `process/pool/tests.rs`.)
#[test]
fn a_stopped_fork_server_does_not_delay_a_crash() {
    let _serial = serial();
    let _dog = watchdog("crash, server stopped", Duration::from_secs(120));
    for point in ["before", "during"] {
        let pool = ProcessPoolBuilder::new()
            .workers(2)
            .retry(ply_os::process::Retry::never())
            .build(handle)
            .unwrap();
        let server = pool.server_pid().unwrap();
        let stop = || {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(server, libc::SIGSTOP) };
        };
        let job = if point == "before" {
            stop();
            Job::Crash
        } else {
            Job::CrashOnceServerStopped
        };
        let crashed = pool.submit(&job).unwrap();
        if point == "during" {
            stop();
        }
        let result = crashed.join();
        assert!(
            matches!(
                &result,
                Err(PoolTaskError::Worker {
                    failure: Failure::Signaled { signal, .. },
                    attempts: 1,
                    ..
                }) if *signal == ply_os::fork::Signal::TERM
            ),
            "{point}: {result:?}"
        );
        assert_eq!(
            state_of(server),
            'T',
            "{point}: reported only after the server resumed"
        );
        assert_eq!(echo(&pool, 5), 5, "{point}: the other worker serves");
        // SAFETY: as above.
        unsafe { libc::kill(server, libc::SIGCONT) };
        wait_for_workers(&pool, 2);
        assert_eq!(echo(&pool, 6), 6, "{point}");
        drop(pool);
        assert_no_descendants();
    }
}

/// How long a task may take to resolve in these tests: far beyond the pool's
/// own patience for a stopped server (5 s), so only a task that waits without
/// a deadline fails it.
const RESOLVES_WITHIN: Duration = Duration::from_secs(40);

fn resolves<R: serde::de::DeserializeOwned>(
    task: ply_os::process::ProcessTask<R>,
    what: &str,
) -> Result<R, PoolTaskError> {
    task.join_timeout(RESOLVES_WITHIN)
        .unwrap_or_else(|_| panic!("{what}: the task never resolved"))
}

fn assert_no_worker<R: std::fmt::Debug>(result: Result<R, PoolTaskError>, what: &str) {
    assert!(
        matches!(&result, Err(PoolTaskError::NoWorker(why)) if why.contains("stopped")),
        "{what}: {result:?}"
    );
}

/// The fork server stopped before a crash, while it is asked for the
/// crashed worker's replacement, and while a submitter waits for room: the
/// pool has no worker and cannot get one, yet every task resolves (the
/// crash with its signal, the others with `NoWorker`) while the server is
/// still stopped, a blocked `submit` returns, and nothing is left behind,
/// whether the server is then resumed (the pool recovers) or the pool is
/// dropped with the server still stopped.
#[test]
fn a_stopped_fork_server_leaves_no_task_waiting() {
    let _serial = serial();
    let _dog = watchdog("no worker, server stopped", Duration::from_secs(300));
    for point in ["before a crash", "during respawn", "during submit"] {
        let pool = ProcessPoolBuilder::new()
            .workers(1)
            .queue_bound(1)
            .retry(ply_os::process::Retry::runs(if point == "during respawn" {
                3
            } else {
                1
            }))
            .build(handle)
            .unwrap();
        let server = pool.server_pid().unwrap();
        let signal = |sig| {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(server, sig) };
        };
        let crash = if point == "during respawn" {
            // Dies once the server is stopped: its replacement is asked of
            // a stopped server; the task is retried, and has no worker.
            let task = pool.submit(&Job::CrashOnceServerStopped).unwrap();
            signal(libc::SIGSTOP);
            task
        } else {
            signal(libc::SIGSTOP);
            pool.submit(&Job::Crash).unwrap()
        };
        let result = resolves(crash, point);
        if point == "during respawn" {
            assert_no_worker(result, point);
        } else {
            assert!(
                matches!(
                    &result,
                    Err(PoolTaskError::Worker { failure: Failure::Signaled { signal, .. }, .. })
                        if *signal == ply_os::fork::Signal::TERM
                ),
                "{point}: {result:?}"
            );
            // Submitted with no worker: queued, then failed.
            let queued = pool.submit(&Job::Echo(1)).unwrap();
            if point == "during submit" {
                // The queue (bound 1) is full: this submit waits for room,
                // which only the failure of the queued task makes.
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::scope(|s| {
                    s.spawn(|| {
                        let blocked = pool.submit(&Job::Echo(2));
                        let _ = tx.send(());
                        assert_no_worker(resolves(blocked.unwrap(), point), point);
                    });
                    rx.recv_timeout(RESOLVES_WITHIN)
                        .expect("a submit blocked on a full queue never returned");
                    assert_no_worker(resolves(queued, point), point);
                });
            } else {
                assert_no_worker(resolves(queued, point), point);
            }
        }
        assert_eq!(
            state_of(server),
            'T',
            "{point}: resolved only once the server resumed"
        );
        if point == "during respawn" {
            // Dropped with the server still stopped: it is resumed to end.
            drop(pool);
        } else {
            signal(libc::SIGCONT);
            wait_for_workers(&pool, 1);
            assert_eq!(echo(&pool, 6), 6, "{point}: the pool recovered");
            drop(pool);
        }
        assert_no_descendants();
    }
}

/// A map worker stopped mid-item, or in the middle of sending a large
/// report, cannot deadlock the map (the parent once blocked reaping it while
/// holding the socket it was writing to): the timeout ends the call with
/// `Failure::Timeout`, and every worker is reaped.
#[test]
fn a_stopped_map_worker_times_out_wherever_it_stopped() {
    let _serial = serial();
    let _dog = watchdog("stopped map worker", Duration::from_secs(120));
    let inputs: Vec<u64> = (0..64).collect();
    let options = MapOptions::new()
        .workers(2)
        .chunking(Chunking::Fixed(8))
        .task_timeout(Duration::from_millis(500));
    // Before its first item, in the middle of an item.
    for stop_at in [0u64, 37] {
        let err = map_plain(
            &inputs,
            |&x| {
                if x == stop_at {
                    stop_self();
                }
                x
            },
            &options,
        )
        .unwrap_err();
        assert!(
            matches!(&err, MapError::Worker { failure: Failure::Timeout(_), items, .. } if items.contains(&(stop_at as usize))),
            "stop at {stop_at}: {err}"
        );
        assert_no_descendants();
    }
    // In the middle of sending a report of 8 MiB.
    let err = map(
        &inputs,
        |&x| {
            if x == 40 {
                stop_when_writing();
            }
            vec![x as u8; 1 << 20]
        },
        &options,
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            MapError::Worker {
                failure: Failure::Timeout(_),
                ..
            }
        ),
        "{err}"
    );
    assert_no_descendants();
}

/// The socket inodes this process holds that are listening (`/proc/net/unix`
/// flag `__SO_ACCEPTCON`, 0x10000).
fn listening_sockets_held() -> Vec<u64> {
    let held: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    std::fs::read_to_string("/proc/net/unix")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = u64::from_str_radix(fields.get(3)?, 16).ok()?;
            let inode: u64 = fields.get(6)?.parse().ok()?;
            (flags & 0x10000 != 0 && held.contains(&inode)).then_some(inode)
        })
        .collect()
}

/// The pool listens on nothing: its workers come with socket pairs, so no
/// other local process can open an idle connection to it (which used to
/// stall every task).
#[test]
fn a_pool_has_no_socket_another_process_could_connect_to() {
    let _serial = serial();
    let _dog = watchdog("no listener", Duration::from_secs(60));
    let before = listening_sockets_held();
    let pool = ProcessPoolBuilder::new().workers(2).build(handle).unwrap();
    assert_eq!(echo(&pool, 3), 3);
    assert_eq!(listening_sockets_held(), before);
    drop(pool);
    assert_no_descendants();
}
