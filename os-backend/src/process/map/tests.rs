//! A worker's corrupt messages, written from inside the worker to its own
//! socket: every kind becomes that worker's `Failure::Corrupt`.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use super::run::WORKER_OUT;
use super::*;
use crate::ipc::frame;
use crate::process::Failure;
use crate::process::wire::{ChunkResult, MapReport};

/// Writes `bytes`, from inside a worker, to the worker's socket.
fn send_raw(bytes: &[u8]) {
    let fd = WORKER_OUT.with(Cell::get);
    assert!(fd >= 0, "not in a map worker");
    // SAFETY: `fd` is this worker's open socket, owned by the worker loop
    // further up this thread's stack; `ManuallyDrop` leaves it open.
    let mut out = ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(fd) });
    std::io::Write::write_all(&mut *out, bytes).unwrap();
}

/// Sends, from inside a worker, one frame holding `payload`.
fn send_frame(payload: &[u8]) {
    let mut wire = Vec::new();
    frame::write_frame(&mut wire, payload).unwrap();
    send_raw(&wire);
}

/// Sends, from inside a worker, a report of `chunk` with `results`.
fn send_report(chunk: u32, results: Vec<u64>) {
    let report = MapReport {
        chunk,
        result: ChunkResult::Done(results),
    };
    send_frame(&frame::encode(&report).unwrap());
}

/// The corrupt messages a worker can send, each with what its error says.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Bytes that are no report at all.
    Unreadable,
    /// A report for a chunk that does not exist.
    NoSuchChunk,
    /// A frame header announcing more than the frame limit.
    HugeFrame,
}

impl Lie {
    const ALL: [Lie; 3] = [Lie::Unreadable, Lie::NoSuchChunk, Lie::HugeFrame];

    /// Sends it, then a well-formed report of chunk 3 with wrong results,
    /// which must not be taken; then, if `wait`, waits to be killed for it
    /// (so that it still holds its chunk then).
    fn tell(self, wait: bool) {
        match self {
            Lie::Unreadable => send_frame(&[0xff; 7]),
            // Panicked: a report that decodes whatever the map's results.
            Lie::NoSuchChunk => send_frame(
                &frame::encode(&MapReport::<()> {
                    chunk: 9999,
                    result: ChunkResult::Panicked("no".into()),
                })
                .unwrap(),
            ),
            Lie::HugeFrame => send_raw(&u32::MAX.to_le_bytes()),
        }
        send_report(3, vec![7; 10]);
        if wait {
            // Bounded: if never killed, the test fails on its result.
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }

    fn says(self) -> &'static str {
        match self {
            Lie::Unreadable => "a report:",
            Lie::NoSuchChunk => "chunk 9999, not in this round",
            Lie::HugeFrame => "exceeds the maximum",
        }
    }
}

/// The failure every corrupt message must become: the worker's
/// `Failure::Corrupt`, on its first run (a corrupt message is not retried),
/// for the chunk it held (items 20..30) if it `waited` to be killed; if it
/// went on, and perhaps ended before its message was read, for a chunk it
/// left unreported.
fn assert_corrupt<C>(err: &MapError<C>, lie: Lie, waited: bool) {
    match err {
        MapError::Worker {
            items,
            failure: Failure::Corrupt(why),
            attempts: 1,
            ..
        } => {
            if waited {
                assert_eq!(*items, 20..30, "{lie:?}: {why}");
            } else {
                assert_eq!(items.len(), 10, "{lie:?}: {why}");
            }
            assert!(why.contains(lie.says()), "{lie:?}: {why}");
        }
        other => panic!("{lie:?} (waited: {waited}): {other}"),
    }
}

/// A report of the wrong length, for the chunk the worker holds or for
/// another: the worker is killed as corrupt, and the call fails with
/// `Failure::Corrupt` naming that chunk's items (not `MapError::Os`), with
/// the other chunks' results.
#[test]
fn a_report_with_the_wrong_number_of_results_is_the_workers_corrupt_message() {
    let inputs: Vec<u64> = (0..40).collect();
    let options = MapOptions::new()
        .workers(2)
        .chunking(Chunking::Fixed(10))
        .retry(Retry::runs(3));
    for (lie_about, short, long) in [(2u32, 3usize, false), (3, 0, true)] {
        let err = map(
            &inputs,
            |&x| {
                if x == 25 {
                    // Item 25 is in chunk 2 (items 20..30).
                    let n = if long { 11 } else { short };
                    send_report(lie_about, vec![7; n]);
                }
                x * 2
            },
            &options,
        )
        .unwrap_err();
        let want = if long {
            "11 results for 10 items"
        } else {
            "3 results for 10 items"
        };
        match &err {
            MapError::Worker {
                items,
                failure: Failure::Corrupt(why),
                attempts: 1,
                ..
            } => {
                let first = lie_about as usize * 10;
                assert_eq!(*items, first..first + 10, "{why}");
                assert!(why.contains(want), "{why}");
            }
            other => panic!("{other}"),
        }
        // Every result that came back whole is kept, and each is right.
        let completed = err
            .completed()
            .expect("a worker failure carries its results");
        assert_eq!(completed.len(), 40);
        for (i, r) in completed.iter().enumerate() {
            match r {
                // Chunk 2 was the liar's: nothing it sent after its lie is
                // taken, whole or not.
                Some(_) if (20..30).contains(&i) => panic!("item {i}, from the liar"),
                // Chunk 3 may have been done (right) by the other worker.
                Some(v) => assert_eq!(*v, i as u64 * 2, "item {i}"),
                None => {}
            }
        }
    }
}

/// Every other corrupt message (unreadable, naming a chunk that does not
/// exist, a frame over the limit), sent by the worker holding chunk 2, which
/// then waits to be killed or goes on: the call fails with that worker's
/// `Failure::Corrupt`, never `MapError::Os` nor a panic, and nothing the
/// worker sent after it is taken.
#[test]
fn every_corrupt_message_fails_map_as_the_workers_corrupt() {
    let inputs: Vec<u64> = (0..40).collect();
    let options = MapOptions::new()
        .workers(2)
        .chunking(Chunking::Fixed(10))
        .retry(Retry::runs(3));
    for lie in Lie::ALL {
        for wait in [true, false] {
            let err = map(
                &inputs,
                |&x| {
                    if x == 25 {
                        lie.tell(wait);
                    }
                    x * 2
                },
                &options,
            )
            .unwrap_err();
            assert_corrupt(&err, lie, wait);
            let completed = err.completed().expect("a worker failure carries results");
            assert_eq!(completed.len(), 40);
            for (i, r) in completed.iter().enumerate() {
                if let Some(v) = r {
                    assert!(!(20..30).contains(&i), "{lie:?}: item {i}, from the liar");
                    // Chunk 3's false report (all 7s) was not taken.
                    assert_eq!(*v, i as u64 * 2, "{lie:?}: item {i}");
                }
            }
        }
    }
}

/// The same for `map_plain` and `reduce`, whose reports carry no results
/// (they are in shared memory): a corrupt one is still the worker's.
#[test]
fn every_corrupt_message_fails_map_plain_and_reduce_as_the_workers_corrupt() {
    let inputs: Vec<u64> = (0..40).collect();
    let options = MapOptions::new()
        .workers(2)
        .chunking(Chunking::Fixed(10))
        .retry(Retry::runs(3));
    let liar = |lie: Lie, wait: bool, x: u64| {
        if x == 25 {
            lie.tell(wait);
        }
        x * 2
    };
    for lie in Lie::ALL {
        for wait in [true, false] {
            let err = map_plain(&inputs, |&x| liar(lie, wait, x), &options).unwrap_err();
            assert_corrupt(&err, lie, wait);
            let err = reduce(
                0..40,
                &options,
                0u64,
                |i| liar(lie, wait, i as u64),
                |a, b| a + b,
            )
            .unwrap_err();
            assert_corrupt(&err, lie, wait);
        }
    }
}
