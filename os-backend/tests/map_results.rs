//! `map_plain`'s results stay in shared memory and their mapping is recycled
//! across calls. Recycling must never show a caller stale values, never write
//! into pages another process still reads, and never keep very large
//! mappings.
//!
//! The recycled mapping is per process, so the tests here take a global lock
//! (each test binary is its own process, so other test files do not interfere).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ply_os::fork::{fork_child, scope};
use ply_os::process::{MapError, MapOptions, RESULT_CACHE_LIMIT, clear_result_cache, map_plain};
use ply_os::shm::SharedBox;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn opts() -> MapOptions {
    MapOptions::new().workers(2)
}

fn inputs(n: u64) -> Vec<u64> {
    (0..n).collect()
}

#[test]
fn a_dropped_mapping_is_reused_without_stale_values() {
    let _guard = serial();
    clear_result_cache();
    let first = map_plain(&inputs(100_000), |x| x * 2, &opts()).unwrap();
    assert_eq!(
        first,
        inputs(100_000).iter().map(|x| x * 2).collect::<Vec<_>>()
    );
    let first_at = first.as_ptr() as usize;
    drop(first);

    // A smaller call takes the kept mapping; it sees only its own results.
    let second = map_plain(&inputs(60_000), |x| x + 7, &opts()).unwrap();
    assert_eq!(
        second.as_ptr() as usize,
        first_at,
        "the mapping was not reused"
    );
    assert_eq!(second.len(), 60_000);
    assert_eq!(
        second,
        inputs(60_000).iter().map(|x| x + 7).collect::<Vec<_>>()
    );

    // While `second` holds it, a third call needs a mapping of its own.
    let third = map_plain(&inputs(1_000), |x| x * x, &opts()).unwrap();
    assert_ne!(third.as_ptr() as usize, first_at);
    assert_eq!(
        third,
        inputs(1_000).iter().map(|x| x * x).collect::<Vec<_>>()
    );
    assert_eq!(
        second[59_999],
        59_999 + 7,
        "a later call changed held results"
    );

    // `second` was alive while the third call forked its workers; those are
    // ply's own (reaped before `third` was handed out), so `second`'s mapping
    // is still recycled. One mapping is kept: the first dropped.
    drop(second);
    drop(third);
    assert_eq!(clear_result_cache(), 100_000 * 8);
    assert_eq!(clear_result_cache(), 0);
}

/// A child forked (by the caller, not by the map) while results are alive
/// shares their pages. Dropping them in the parent must not recycle the
/// mapping, or the parent's next call would rewrite what the child reads.
#[test]
fn results_alive_across_a_foreign_fork_are_not_recycled() {
    let _guard = serial();
    clear_result_cache();
    const N: u64 = 200_000;
    let tripled = map_plain(&inputs(N), |x| x * 3, &opts()).unwrap();
    let go = SharedBox::new(AtomicU32::new(0)).unwrap();
    scope(|s| {
        let go = &go;
        // Moved into the child: the parent's copy of `tripled` is dropped at the fork.
        let reader = s
            .fork_child(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                while go.load(Ordering::Acquire) == 0 {
                    if Instant::now() > deadline {
                        return 2;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                let intact = tripled.iter().enumerate().all(|(i, &v)| v == i as u64 * 3);
                if intact { 0 } else { 1 }
            })
            .unwrap();
        assert_eq!(clear_result_cache(), 0, "shared results were recycled");
        // Same size, so a recycled mapping would be taken and overwritten here.
        let next = map_plain(&inputs(N), |x| x + 1, &opts()).unwrap();
        assert_eq!(next[7], 8);
        go.store(1, Ordering::Release);
        let exit = reader.wait().unwrap();
        assert!(exit.success(), "the child saw its results change: {exit}");
    });
}

/// A child inherits the parent's kept mapping (shared pages); it must map its
/// own rather than write results into the parent's.
#[test]
fn a_child_does_not_reuse_its_parents_kept_mapping() {
    let _guard = serial();
    clear_result_cache();
    const N: u64 = 50_000;
    let five = map_plain(&inputs(N), |x| x * 5, &opts()).unwrap();
    let kept_at = five.as_ptr();
    drop(five); // kept, with the multiples of five in it
    let child = fork_child(move || {
        let mine = map_plain(&inputs(N), |x| x + 11, &MapOptions::new().workers(1)).unwrap();
        let right = mine.iter().enumerate().all(|(i, &v)| v == i as u64 + 11);
        if right { 0 } else { 1 }
    })
    .unwrap();
    assert!(child.wait().unwrap().success());
    // SAFETY: the kept mapping is still mapped in this process (nothing has
    // taken it: the tests are serial and the cache holds it until the
    // `clear_result_cache` below), `N` u64s long and aligned; it is read here
    // only, after the child that could have written it has exited.
    let kept = unsafe { std::slice::from_raw_parts(kept_at, N as usize) };
    assert!(
        kept.iter().enumerate().all(|(i, &v)| v == i as u64 * 5),
        "the child wrote into the parent's kept mapping"
    );
    assert_eq!(clear_result_cache(), N as usize * 8);
}

#[test]
fn results_larger_than_the_limit_are_unmapped_on_drop() {
    let _guard = serial();
    clear_result_cache();
    // 4 KiB results, one more than fit under the limit.
    let n = RESULT_CACHE_LIMIT / 4096 + 1;
    let ids: Vec<u64> = (0..n as u64).collect();
    let pages = map_plain(&ids, |&i| [i; 512], &opts()).unwrap();
    assert_eq!(pages.len(), n);
    assert!(
        pages
            .iter()
            .enumerate()
            .all(|(i, p)| p[0] == i as u64 && p[511] == i as u64)
    );
    drop(pages);
    assert_eq!(clear_result_cache(), 0);
    // Owned copies are plain `Vec`s.
    let owned: Vec<u64> = map_plain(&ids[..3], |&i| i * 10, &opts())
        .unwrap()
        .into_vec();
    assert_eq!(owned, vec![0, 10, 20]);
}

/// Mappings are page-aligned; a type aligned beyond 4 KiB is refused, also
/// when a kept mapping is there to be taken.
#[test]
fn over_aligned_results_are_refused_even_with_a_kept_mapping() {
    let _guard = serial();
    clear_result_cache();
    drop(map_plain(&inputs(10_000), |x| x + 1, &opts()).unwrap()); // kept
    ply_core::shm_safe! {
        #[derive(Clone, Copy, Debug)]
        #[repr(align(8192))]
        struct Wide;
    }
    let err = map_plain(&[1u8], |_| Wide, &opts()).unwrap_err();
    assert!(
        matches!(err, MapError::Os(ref e) if e.kind() == std::io::ErrorKind::InvalidInput),
        "{err}"
    );
    assert_eq!(
        clear_result_cache(),
        10_000 * 8,
        "the kept mapping was lost"
    );
}
