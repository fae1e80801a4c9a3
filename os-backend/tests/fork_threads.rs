//! Forking while other threads print, allocate or hold a lock of the
//! program's own, on every process API, 50 rounds each.
//!
//! Each case runs in a helper process (this binary again, running the
//! ignored `helper` test) whose stdout goes to /dev/null, so that threads can
//! print for real (taking stdout's lock) without flooding the test output.
//!
//! - stdout, stderr, allocator: ply takes stdout's and stderr's locks across
//!   its forks and glibc its allocator's, so every round must *succeed*.
//! - a `std::sync::Mutex` of the program's: ply cannot repair it; a round
//!   either succeeds (the lock was free at the fork) or fails, within the
//!   stall patience, with `Failure::Stalled` naming the other threads — and
//!   never hangs. A re-executed pool's workers never inherit it.

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Noise, NoiseKind, USER_LOCK, watchdog};
use ply_os::fork::{ChildExit, fork_child};
use ply_os::process::{
    Failure, MapError, MapOptions, PoolTaskError, ProcessPoolBuilder, ThreadPolicy, map, map_plain,
    reduce,
};

const ROUNDS: usize = 50;
const CASE: &str = "PLY_FORK_THREADS_CASE";

/// How long a stalled worker may sit before it is killed, in these tests.
const PATIENCE: Duration = Duration::from_millis(300);

/// What a worker does: print, allocate, and (for the mutex case) take the
/// program's own lock. Returns a value the parent can check.
fn work(x: u64, noise: NoiseKind) -> u64 {
    let _ = writeln!(std::io::stdout(), "worker {x}");
    let _ = write!(std::io::stderr(), "");
    let v: Vec<u64> = (0..(x % 100 + 10)).collect();
    let s = format!("{}", v.len());
    if let NoiseKind::UserMutex = noise {
        let mut g = USER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
    }
    std::hint::black_box((s, v));
    x * 2
}

fn noise_of(name: &str) -> NoiseKind {
    match name {
        "stdout" => NoiseKind::Stdout,
        "stderr" => NoiseKind::Stderr,
        "alloc" => NoiseKind::Alloc,
        "mutex" => NoiseKind::UserMutex,
        other => panic!("unknown noise {other}"),
    }
}

/// Whether a failure is the one allowed for the mutex case.
fn is_stall(failure: &Failure) -> bool {
    matches!(failure, Failure::Stalled { other_threads, .. } if *other_threads >= 2)
        && failure.to_string().contains("lock")
}

/// Runs one case in this (helper) process; returns the rounds that
/// succeeded and those that stalled.
fn run_case(api: &str, noise: NoiseKind) -> (usize, usize) {
    let _noise = Noise::start(noise, 2);
    let may_stall = matches!(noise, NoiseKind::UserMutex);
    let options = MapOptions::new()
        .workers(2)
        .threads(ThreadPolicy::Detect { patience: PATIENCE });
    let inputs: Vec<u64> = (0..64).collect();
    let (mut ok, mut stalls) = (0, 0);
    for round in 0..ROUNDS {
        let outcome: Result<(), String> = match api {
            "map" => match map(&inputs, |&x| work(x, noise), &options) {
                Ok(out) => {
                    assert_eq!(out, inputs.iter().map(|x| x * 2).collect::<Vec<_>>());
                    Ok(())
                }
                Err(MapError::Worker { failure, .. }) if may_stall && is_stall(&failure) => {
                    Err(failure.to_string())
                }
                Err(e) => panic!("round {round}: {e}"),
            },
            "map_plain" => match map_plain(&inputs, |&x| work(x, noise), &options) {
                Ok(out) => {
                    assert!(out.iter().zip(&inputs).all(|(y, x)| *y == x * 2));
                    Ok(())
                }
                Err(MapError::Worker { failure, .. }) if may_stall && is_stall(&failure) => {
                    Err(failure.to_string())
                }
                Err(e) => panic!("round {round}: {e}"),
            },
            "reduce" => match reduce(
                0..64,
                &options,
                0u64,
                |i| work(i as u64, noise),
                |a, b| a + b,
            ) {
                Ok(sum) => {
                    assert_eq!(sum, (0..64u64).map(|x| x * 2).sum::<u64>());
                    Ok(())
                }
                Err(MapError::Worker { failure, .. }) if may_stall && is_stall(&failure) => {
                    Err(failure.to_string())
                }
                Err(e) => panic!("round {round}: {e}"),
            },
            "pool" => {
                // Re-executed server: nothing of this process's lock state.
                let handler: fn(u64) -> u64 = match noise {
                    NoiseKind::UserMutex => |x| work(x, NoiseKind::UserMutex),
                    _ => |x| work(x, NoiseKind::Alloc),
                };
                let pool = ProcessPoolBuilder::new().workers(1).build(handler).unwrap();
                assert_eq!(
                    pool.submit(&(round as u64)).unwrap().join().unwrap(),
                    round as u64 * 2
                );
                Ok(())
            }
            "pool_forking" => {
                let pool = ProcessPoolBuilder::new()
                    .workers(1)
                    .threads(ThreadPolicy::Detect { patience: PATIENCE })
                    .build_forking(move |x: u64| work(x, noise))
                    .unwrap();
                match pool.submit(&(round as u64)).unwrap().join() {
                    Ok(y) => {
                        assert_eq!(y, round as u64 * 2);
                        Ok(())
                    }
                    Err(PoolTaskError::Worker { failure, .. })
                        if may_stall && is_stall(&failure) =>
                    {
                        Err(failure.to_string())
                    }
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            "fork_child" => {
                let mut child = fork_child(move || {
                    let _ = writeln!(std::io::stdout(), "child");
                    let v: Vec<u8> = vec![1; 1000];
                    let _ = format!("{}", v.len());
                    if let NoiseKind::UserMutex = noise {
                        // ply cannot repair this lock: the child gives up
                        // rather than hang.
                        let until = std::time::Instant::now() + PATIENCE;
                        loop {
                            if USER_LOCK.try_lock().is_ok() {
                                break;
                            }
                            if std::time::Instant::now() > until {
                                return 3;
                            }
                            std::thread::yield_now();
                        }
                    }
                    0
                })
                .unwrap();
                let exit = child
                    .wait_timeout(Duration::from_secs(30))
                    .unwrap()
                    .expect("the child finished");
                match exit {
                    ChildExit::Exited(0) => Ok(()),
                    ChildExit::Exited(3) if may_stall => Err("lock held".into()),
                    other => panic!("round {round}: child {other}"),
                }
            }
            other => panic!("unknown api {other}"),
        };
        match outcome {
            Ok(()) => ok += 1,
            Err(_) => stalls += 1,
        }
    }
    (ok, stalls)
}

/// Not a test on its own: the helper process of the tests below.
#[test]
#[ignore = "helper process for the fork-with-threads tests"]
fn helper() {
    let Ok(case) = std::env::var(CASE) else {
        return;
    };
    let (api, noise) = case.split_once(':').expect("api:noise");
    let (ok, stalls) = run_case(api, noise_of(noise));
    eprintln!("result={ok},{stalls}");
}

/// Runs `api` with `noise` threads in a helper process; returns the rounds
/// that succeeded and those that stalled.
fn in_helper(api: &str, noise: &str) -> (usize, usize) {
    let _dog = watchdog("fork with threads", Duration::from_secs(240));
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            "helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CASE, format!("{api}:{noise}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe; the helper dies with this process.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    };
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{api} with {noise}: {stderr}");
    let (ok, stalls) = stderr
        .lines()
        .find_map(|l| l.strip_prefix("result="))
        .and_then(|r| r.trim().split_once(','))
        .unwrap_or_else(|| panic!("no result from the helper: {stderr}"));
    (ok.parse().unwrap(), stalls.parse().unwrap())
}

macro_rules! must_succeed {
    ($($name:ident: $api:literal, $noise:literal;)*) => {$(
        #[test]
        fn $name() {
            assert_eq!(in_helper($api, $noise), (ROUNDS, 0));
        }
    )*};
}

must_succeed! {
    map_while_threads_print: "map", "stdout";
    map_while_threads_write_stderr: "map", "stderr";
    map_while_threads_allocate: "map", "alloc";
    map_plain_while_threads_print: "map_plain", "stdout";
    map_plain_while_threads_allocate: "map_plain", "alloc";
    reduce_while_threads_print: "reduce", "stdout";
    reduce_while_threads_allocate: "reduce", "alloc";
    pool_while_threads_print: "pool", "stdout";
    pool_while_threads_allocate: "pool", "alloc";
    pool_while_threads_hold_a_mutex: "pool", "mutex";
    pool_forking_while_threads_print: "pool_forking", "stdout";
    pool_forking_while_threads_allocate: "pool_forking", "alloc";
    fork_child_while_threads_print: "fork_child", "stdout";
    fork_child_while_threads_allocate: "fork_child", "alloc";
}

/// The program's own lock: rounds end (succeeding, or failing with a stall
/// that names the threads), never hang; run under the watchdog.
macro_rules! may_stall {
    ($($name:ident: $api:literal;)*) => {$(
        #[test]
        fn $name() {
            // Every round ended, one way or the other (a round that failed
            // any other way failed the helper).
            let (ok, stalls) = in_helper($api, "mutex");
            assert_eq!(ok + stalls, ROUNDS);
        }
    )*};
}

may_stall! {
    map_while_threads_hold_a_mutex: "map";
    map_plain_while_threads_hold_a_mutex: "map_plain";
    reduce_while_threads_hold_a_mutex: "reduce";
    pool_forking_while_threads_hold_a_mutex: "pool_forking";
    fork_child_while_threads_hold_a_mutex: "fork_child";
}

/// Runs `f` while another thread holds `USER_LOCK` for certain.
fn with_lock_held<T>(f: impl FnOnce() -> T) -> T {
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _g = USER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        held_tx.send(()).unwrap();
        let _ = done_rx.recv();
    });
    held_rx.recv().unwrap();
    let out = f();
    drop(done_tx);
    holder.join().unwrap();
    out
}

/// With the lock held by another thread at every fork, the map's default
/// policy ends the call within seconds, with an error that names the
/// threads, the likely lock, and the docs.
#[test]
fn a_held_user_lock_fails_the_map_within_seconds_with_a_clear_error() {
    let _dog = watchdog("held lock, default policy", Duration::from_secs(60));
    let err = with_lock_held(|| {
        map(
            &[1u64, 2, 3],
            |&x| work(x, NoiseKind::UserMutex),
            &MapOptions::new().workers(2),
        )
        .unwrap_err()
    });
    let MapError::Worker { failure, .. } = &err else {
        panic!("unexpected {err}");
    };
    assert!(is_stall(failure), "{failure}");
    let text = err.to_string();
    for needle in ["other thread(s)", "lock", "Fork safety", "worker process"] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
}

/// The same for a pool whose server is forked from the caller: the task
/// fails as stalled; the pool itself stays usable for tasks that do not
/// need the lock.
#[test]
fn a_held_user_lock_fails_a_forked_pools_task_not_the_pool() {
    let _dog = watchdog("held lock, forked pool", Duration::from_secs(60));
    let pool = with_lock_held(|| {
        ProcessPoolBuilder::new()
            .workers(1)
            .threads(ThreadPolicy::Detect { patience: PATIENCE })
            .build_forking(|x: u64| {
                if x == 0 {
                    work(x, NoiseKind::UserMutex)
                } else {
                    x
                }
            })
            .unwrap()
    });
    match pool.submit(&0).unwrap().join() {
        Err(PoolTaskError::Worker { failure, .. }) => assert!(is_stall(&failure), "{failure}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(pool.submit(&7).unwrap().join().unwrap(), 7);
}

/// `ThreadPolicy::Refuse` forks nothing when other threads exist.
#[test]
fn refuse_forks_nothing_while_other_threads_exist() {
    let _noise = Noise::start(NoiseKind::Alloc, 1);
    let err = map(
        &[1u8],
        |&x| x,
        &MapOptions::new().threads(ThreadPolicy::Refuse),
    )
    .unwrap_err();
    assert!(
        matches!(err, MapError::ThreadsPresent { other_threads } if other_threads >= 1),
        "{err}"
    );
    let err = ProcessPoolBuilder::new()
        .threads(ThreadPolicy::Refuse)
        .build_forking(|x: u8| x)
        .unwrap_err();
    assert!(err.to_string().contains("other thread(s)"), "{err}");
    // A re-executed pool never forks the caller: not refused.
    let pool = ProcessPoolBuilder::new()
        .workers(1)
        .threads(ThreadPolicy::Refuse)
        .build(|x: u8| x + 1)
        .unwrap();
    assert_eq!(pool.submit(&1).unwrap().join().unwrap(), 2);
}
