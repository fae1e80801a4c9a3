//! The engine under hostile and stopped peers: none may delay another, and
//! every kill is reported with its reason.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::*;
use crate::fork::fork_unchecked;
use crate::ipc::frame::{DEFAULT_MAX_FRAME, write_frame};

/// Forks a worker that runs `behave` on its end of a fresh socket pair.
fn worker(behave: impl FnOnce(&mut UnixStream) -> i32) -> Worker<&'static str> {
    let (parent, mut child_end) = UnixStream::pair().unwrap();
    let parent_fd = std::os::fd::AsRawFd::as_raw_fd(&parent);
    let body = || {
        // SAFETY: closes the child's copy of the parent's end only.
        unsafe { libc::close(parent_fd) };
        behave(&mut child_end)
    };
    // SAFETY: the behaviours these tests give touch only the socket (and
    // their own stack): nothing in shared memory, so nothing the parent's
    // copy could release or change.
    let child = unsafe { fork_unchecked(body) }.unwrap();
    Worker::new(Process::Own(child), Conn::new(parent), "")
}

fn stop_self() {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// What happened to each slot, in order.
#[derive(Debug, Default)]
struct Seen {
    frames: Vec<(usize, Vec<u8>)>,
    ends: Vec<(usize, End)>,
}

/// Polls until every worker has ended (at most `limit`, then panics).
fn run(fleet: &mut Fleet<&'static str>, limit: Duration) -> Seen {
    let give_up = Instant::now() + limit;
    let mut seen = Seen::default();
    while !fleet.is_empty() {
        assert!(Instant::now() < give_up, "the fleet did not end: {seen:?}");
        let (events, _) = fleet.poll(&[], Some(give_up)).unwrap();
        for event in events {
            match event {
                Event::Frame { slot, payload } => seen.frames.push((slot, payload)),
                Event::Ended { slot, end } => {
                    fleet.remove(slot);
                    seen.ends.push((slot, end));
                }
            }
        }
    }
    seen
}

/// A stopped writer (mid-frame, with megabytes in flight), a drip feeder,
/// an oversized header and an idle peer, beside one good worker: the good
/// worker's frame and exit come before any of them is dealt with; the bad
/// ones are killed for the reason ply had (a deadline, a corrupt header),
/// and every one is reaped.
#[test]
fn no_peer_delays_another_and_kills_carry_their_reason() {
    const GOOD: usize = 0;
    const STOPPED: usize = 1;
    const BIG_STOPPED: usize = 2;
    const DRIP: usize = 3;
    const HUGE_HEADER: usize = 4;
    const IDLE: usize = 5;
    let mut fleet = Fleet::new(6);
    // The bad ones first, so they are up before the good one speaks.
    fleet.insert(
        STOPPED,
        worker(|s| {
            let _ = s.write_all(&[100, 0, 0, 0, 1, 2, 3, 4, 5]);
            stop_self();
            0
        }),
    );
    fleet.insert(
        BIG_STOPPED,
        worker(|s| {
            let len = 8u32 << 20;
            let _ = s.write_all(&len.to_le_bytes());
            let chunk = vec![7u8; 64 << 10];
            for i in 0..128 {
                if i == 16 {
                    stop_self(); // 1 MiB in: stopped mid-message
                }
                if s.write_all(&chunk).is_err() {
                    return 1;
                }
            }
            0
        }),
    );
    fleet.insert(
        DRIP,
        worker(|s| {
            // 4,000 bytes at one per 5 ms: no frame completes in 20 s.
            let header = 4000u32.to_le_bytes();
            for byte in header.iter().chain([1u8; 4000].iter()).cycle() {
                if s.write_all(&[*byte]).is_err() {
                    return 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            0
        }),
    );
    fleet.insert(
        HUGE_HEADER,
        worker(|s| {
            let len = (DEFAULT_MAX_FRAME + 1) as u32;
            let _ = s.write_all(&len.to_le_bytes());
            std::thread::sleep(Duration::from_secs(600));
            0
        }),
    );
    fleet.insert(
        IDLE,
        worker(|_| {
            std::thread::sleep(Duration::from_secs(600));
            0
        }),
    );
    let patience = Duration::from_secs(5);
    let deadline = Instant::now() + patience;
    for slot in [STOPPED, BIG_STOPPED, DRIP, IDLE] {
        fleet.set_deadline(slot, Some((deadline, KillReason::Timeout(patience))));
    }
    fleet.insert(
        GOOD,
        worker(|s| {
            let mut wire = Vec::new();
            write_frame(&mut wire, b"hello").unwrap();
            let _ = s.write_all(&wire);
            0
        }),
    );
    let seen = run(&mut fleet, Duration::from_secs(60));

    assert_eq!(seen.frames, vec![(GOOD, b"hello".to_vec())]);
    let order: Vec<usize> = seen.ends.iter().map(|(slot, _)| *slot).collect();
    let position = |slot| order.iter().position(|&s| s == slot).unwrap();
    // The good worker ended before any deadline passed; the huge header was
    // refused as soon as it arrived, before the deadline too.
    assert!(
        position(GOOD) < position(STOPPED) && position(GOOD) < position(IDLE),
        "{order:?}"
    );
    for (slot, end) in &seen.ends {
        match *slot {
            GOOD => {
                assert_eq!(end.exit, Some(ChildExit::Exited(0)));
                assert_eq!(end.killed, None);
            }
            HUGE_HEADER => {
                assert!(
                    matches!(&end.killed, Some(KillReason::Corrupt(why)) if why.contains("exceeds the maximum")),
                    "{end:?}"
                );
                assert_eq!(end.exit, Some(ChildExit::Signaled(Signal::KILL)));
            }
            _ => {
                assert_eq!(end.killed, Some(KillReason::Timeout(patience)), "{end:?}");
                // The signal is real, but the reason is what gets reported.
                assert_eq!(end.exit, Some(ChildExit::Signaled(Signal::KILL)));
                assert_eq!(
                    end.killed.as_ref().unwrap().failure(),
                    Failure::Timeout(patience)
                );
            }
        }
    }
    assert_eq!(seen.ends.len(), 6, "every worker reaped");
}

/// A dead worker's last frames all come before its end, whatever the
/// timing: a worker that writes many frames and exits at once.
#[test]
fn a_dead_workers_last_frames_come_before_its_end() {
    for round in 0..50 {
        let mut fleet = Fleet::new(2);
        for slot in 0..2 {
            fleet.insert(
                slot,
                worker(move |s| {
                    let mut wire = Vec::new();
                    for i in 0..(round * 7 % 60 + 1) as u32 {
                        write_frame(&mut wire, &i.to_le_bytes()).unwrap();
                    }
                    let _ = s.write_all(&wire);
                    if round % 3 == 0 {
                        // Die by a signal right after writing.
                        // SAFETY: raise has no memory-safety preconditions.
                        unsafe { libc::raise(libc::SIGKILL) };
                    }
                    0
                }),
            );
        }
        let seen = run(&mut fleet, Duration::from_secs(60));
        let expected = round * 7 % 60 + 1;
        for slot in 0..2 {
            let frames: Vec<u32> = seen
                .frames
                .iter()
                .filter(|(s, _)| *s == slot)
                .map(|(_, f)| u32::from_le_bytes(f[..4].try_into().unwrap()))
                .collect();
            assert_eq!(
                frames,
                (0..expected as u32).collect::<Vec<_>>(),
                "round {round}"
            );
        }
    }
}
