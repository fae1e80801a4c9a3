//! A worker's corrupt report, from the worker's own socket.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

use super::run::WORKER_OUT;
use super::*;
use crate::ipc::frame;
use crate::process::Failure;
use crate::process::wire::{ChunkResult, MapReport};

/// Sends, from inside a worker, a report of `chunk` with `results`.
fn send_report(chunk: u32, results: Vec<u64>) {
    let fd = WORKER_OUT.with(Cell::get);
    assert!(fd >= 0, "not in a map worker");
    // SAFETY: `fd` is this worker's open socket, owned by the worker loop
    // further up this thread's stack; `ManuallyDrop` leaves it open.
    let mut out = ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(fd) });
    let report = MapReport {
        chunk,
        result: ChunkResult::Done(results),
    };
    frame::write_frame(&mut *out, &frame::encode(&report).unwrap()).unwrap();
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
