//! The fork-join map: results, crashes, panics, timeouts, and the retry
//! accounting, each under a watchdog.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::{assert_no_descendants, serial, watchdog};
use ply_core::partition::Chunking;
use ply_os::fork::Signal;
use ply_os::process::{Failure, MapError, MapOptions, Retry, map_slice, map_slice_plain, reduce};
use ply_os::shm::SharedBox;

fn opts() -> MapOptions {
    MapOptions::new().workers(2)
}

#[test]
fn a_million_items_match_sequential_every_way() {
    let _serial = serial();
    let _dog = watchdog("a million items", Duration::from_secs(120));
    let inputs: Vec<u64> = (0..1_000_000).collect();
    let expected: Vec<u64> = inputs.iter().map(|x| x * 3 + 1).collect();
    for chunking in [
        Chunking::Auto,
        Chunking::Even,
        Chunking::Fixed(777),
        Chunking::Guided { min: 100 },
    ] {
        let o = opts().chunking(chunking);
        assert_eq!(
            map_slice_plain(&inputs, |x| x * 3 + 1, &o).unwrap(),
            expected
        );
    }
    let small = &inputs[..50_000];
    assert_eq!(
        map_slice(small, |x| x * 3 + 1, &opts()).unwrap(),
        expected[..50_000]
    );
    let total = reduce(
        0..1_000_000,
        || 0u64,
        |i| i as u64 * 3 + 1,
        |a, b| a + b,
        &opts(),
    );
    assert_eq!(total.unwrap(), expected.iter().sum::<u64>());
    assert_no_descendants();
}

#[test]
fn empty_input_and_bad_options() {
    let none: [u8; 0] = [];
    assert_eq!(map_slice_plain(&none, |&x| x, &opts()).unwrap(), []);
    assert!(matches!(
        map_slice_plain(&[1u8], |&x| x, &MapOptions::new().workers(0)),
        Err(MapError::Options(_))
    ));
}

/// A worker SIGKILLs itself in the middle of a chunk, once (a marker in
/// shared memory says whether it already happened): the chunk is re-issued
/// and the result is complete and correct.
#[test]
fn a_worker_killed_mid_map_has_its_chunk_redone() {
    let _serial = serial();
    let _dog = watchdog("killed mid map", Duration::from_secs(120));
    let killed = SharedBox::new(AtomicUsize::new(0)).unwrap();
    let inputs: Vec<u64> = (0..1_000_000).collect();
    let out = map_slice_plain(
        &inputs,
        |&x| {
            if x == 500_000 && killed.fetch_add(1, Relaxed) == 0 {
                // SAFETY: raise has no preconditions; this child dies here.
                unsafe { libc::raise(libc::SIGKILL) };
            }
            x + 1
        },
        &opts().chunking(Chunking::Fixed(10_000)),
    )
    .unwrap();
    assert_eq!(killed.load(Relaxed), 2, "the item ran again after the kill");
    assert!(out.iter().enumerate().all(|(i, &y)| y == i as u64 + 1));
    assert_no_descendants();
}

#[test]
fn a_crash_every_time_fails_with_the_signal_the_items_and_what_completed() {
    let _serial = serial();
    let _dog = watchdog("crash every time", Duration::from_secs(120));
    let inputs: Vec<u32> = (0..1000).collect();
    let err = map_slice(
        &inputs,
        |&x| {
            if x == 700 {
                // A real segfault's default action (Rust's own handler
                // would return from a raised, non-fault SIGSEGV).
                // SAFETY: signal and raise have no memory preconditions.
                unsafe {
                    libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                    libc::raise(libc::SIGSEGV);
                }
            }
            x
        },
        &opts().chunking(Chunking::Fixed(100)).retry(Retry::runs(2)),
    )
    .unwrap_err();
    match err {
        MapError::Worker {
            items,
            failure,
            attempts,
            pid,
            completed,
        } => {
            assert_eq!(items, 700..800);
            assert_eq!(attempts, 2);
            assert!(pid > 0);
            assert!(matches!(failure, Failure::Signaled { signal, .. } if signal == Signal::SEGV));
            // Whatever completed is there, and right; the failed chunk is not.
            assert_eq!(completed.len(), 1000);
            assert!(completed[700..800].iter().all(Option::is_none));
            for (i, r) in completed.iter().enumerate() {
                if let Some(v) = r {
                    assert_eq!(*v, i as u32);
                }
            }
        }
        other => panic!("unexpected {other}"),
    }
    assert_no_descendants();
}

#[test]
fn a_panic_and_a_hang_are_reported_not_retried() {
    let _serial = serial();
    let _dog = watchdog("panic and hang", Duration::from_secs(120));
    let inputs: Vec<u32> = (0..100).collect();
    let err = map_slice_plain(
        &inputs,
        |&x| if x == 5 { panic!("bad item {x}") } else { x },
        &opts(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, MapError::Worker { failure: Failure::Panicked(m), attempts: 1, .. } if m.contains("bad item 5")),
        "{err}"
    );
    // The message names the worker and where it panicked.
    let text = err.to_string();
    assert!(text.contains("worker process"), "{text}");
    assert!(text.contains("process_map.rs"), "{text}");
    let start = Instant::now();
    let err = map_slice_plain(
        &inputs,
        |&x| {
            if x == 50 {
                std::thread::sleep(Duration::from_secs(600));
            }
            x
        },
        &opts().task_timeout(Duration::from_millis(300)),
    )
    .unwrap_err();
    assert!(
        matches!(&err, MapError::Worker { failure: Failure::Timeout(_), items, .. } if items.contains(&50)),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_no_descendants();
}

/// The case from issue 11: `Retry::runs(2)` and two items that crash only on
/// their first run must succeed every time. Each crash charges only its own
/// chunk; chunks a dying worker had finished but not yet reported are
/// redone without being charged.
#[test]
fn two_items_that_crash_once_each_always_succeed_with_two_runs() {
    let _serial = serial();
    let _dog = watchdog("retry accounting", Duration::from_secs(300));
    let inputs: Vec<u64> = (0..20_000).collect();
    for round in 0..30 {
        let crashed = SharedBox::new([AtomicUsize::new(0), AtomicUsize::new(0)]).unwrap();
        let chunking = if round % 2 == 0 {
            Chunking::Fixed(100)
        } else {
            Chunking::Auto
        };
        let out = map_slice_plain(
            &inputs,
            |&x| {
                let which = match x {
                    3_000 => Some(0),
                    17_000 => Some(1),
                    _ => None,
                };
                if let Some(k) = which
                    && crashed[k].fetch_add(1, Relaxed) == 0
                {
                    std::process::abort();
                }
                x * 2
            },
            &opts().chunking(chunking).retry(Retry::runs(2)),
        );
        let out = out.unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(out.iter().enumerate().all(|(i, &y)| y == i as u64 * 2));
        // Each crashed once and ran again; a chunk finished but lost with
        // its worker's unsent reports may run once more, uncharged.
        assert!(crashed[0].load(Relaxed) >= 2, "round {round}");
        assert!(crashed[1].load(Relaxed) >= 2, "round {round}");
    }
    assert_no_descendants();
}

/// `reduce` hands back the partial results of the chunks that finished.
#[test]
fn reduce_reports_the_finished_chunks() {
    let _serial = serial();
    let _dog = watchdog("reduce partials", Duration::from_secs(60));
    let err = reduce(
        10..110,
        || 0u64,
        |i| {
            if i == 55 {
                panic!("no");
            }
            i as u64
        },
        |a, b| a + b,
        &MapOptions::new()
            .workers(1)
            .chunking(Chunking::Fixed(10))
            .retry(Retry::never()),
    )
    .unwrap_err();
    let MapError::Worker {
        items, completed, ..
    } = err
    else {
        panic!("unexpected {err}");
    };
    assert_eq!(items, 50..60, "items are the range's own numbers");
    for (range, sum) in &completed {
        assert_eq!(*sum, range.clone().map(|i| i as u64).sum::<u64>());
        assert!(!range.contains(&55));
    }
    assert_no_descendants();
}
