//! The process channel with several producer and consumer processes: every
//! message delivered exactly once, each producer's messages in order as any
//! one consumer sees them, the end seen once all producers are gone, and a
//! stopped consumer delaying nobody.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{assert_no_descendants, serial, watchdog};
use ply_os::fork::{Signal, scope};
use ply_os::ipc::{IpcError, channel};

const PRODUCERS: u32 = 3;
const CONSUMERS: u32 = 3;
const PER_PRODUCER: u32 = 2_000;

#[test]
fn many_producers_and_consumers_deliver_each_message_once_in_order() {
    let _serial = serial();
    let _dog = watchdog("channel mpmc", Duration::from_secs(120));
    let (tx, rx) = channel::<(u32, u32, String)>().unwrap();
    // Consumers report (consumer, producer, index) back on a second channel.
    let (report_tx, report_rx) = channel::<Vec<(u32, u32)>>().unwrap();
    scope(|s| {
        let (tx, rx, report_tx, report_rx) = (&tx, &rx, &report_tx, &report_rx);
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                s.fork_child(move || {
                    tx.leave(); // a consumer: the producers' close must reach it
                    report_rx.leave();
                    let mut got = Vec::new();
                    for (p, i, text) in rx.iter() {
                        if text != format!("{p}:{i}") {
                            return 2;
                        }
                        got.push((p, i));
                    }
                    // Reports in pieces: a message has a size limit.
                    for part in got.chunks(4096) {
                        if report_tx.send(&part.to_vec()).is_err() {
                            return 3;
                        }
                    }
                    0
                })
                .unwrap()
            })
            .collect();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                s.fork_child(move || {
                    rx.leave();
                    report_tx.leave();
                    report_rx.leave();
                    for i in 0..PER_PRODUCER {
                        if tx.send(&(p, i, format!("{p}:{i}"))).is_err() {
                            return 1;
                        }
                    }
                    0
                })
                .unwrap()
            })
            .collect();
        // The parent holds neither end it does not use.
        tx.leave();
        rx.leave();
        report_tx.leave();
        for p in producers {
            assert!(p.wait().unwrap().success());
        }
        let mut seen: HashMap<(u32, u32), usize> = HashMap::new();
        let mut per_report_order_ok = true;
        for part in report_rx.iter() {
            let mut last: HashMap<u32, u32> = HashMap::new();
            for (p, i) in part {
                if let Some(&prev) = last.get(&p)
                    && prev >= i
                {
                    per_report_order_ok = false;
                }
                last.insert(p, i);
                *seen.entry((p, i)).or_default() += 1;
            }
        }
        for c in consumers {
            assert!(c.wait().unwrap().success());
        }
        assert!(
            per_report_order_ok,
            "a consumer saw a producer's messages out of order"
        );
        assert_eq!(
            seen.len(),
            (PRODUCERS * PER_PRODUCER) as usize,
            "a message was lost"
        );
        assert!(
            seen.values().all(|&n| n == 1),
            "a message was delivered twice"
        );
    });
    assert_no_descendants();
}

/// A consumer stopped while it waits takes nothing: the other consumer
/// receives everything, and the stopped one is still waiting afterwards.
#[test]
fn a_stopped_consumer_delays_no_one() {
    let _serial = serial();
    let _dog = watchdog("stopped consumer", Duration::from_secs(60));
    let (tx, rx) = channel::<u32>().unwrap();
    scope(|s| {
        let stopped = s
            .fork_child(|| {
                tx.leave();
                // SAFETY: raise has no memory-safety preconditions.
                unsafe { libc::raise(libc::SIGSTOP) };
                match rx.recv() {
                    Ok(_) | Err(IpcError::Closed) => 0,
                    Err(_) => 1,
                }
            })
            .unwrap();
        for i in 0..1000 {
            tx.send(&i).unwrap();
        }
        tx.leave();
        let total: u64 = rx.iter().map(u64::from).sum();
        assert_eq!(total, (0..1000u64).sum::<u64>());
        stopped.kill(Signal::CONT).unwrap();
        assert!(stopped.wait().unwrap().success());
    });
    assert_no_descendants();
}

/// Send fails as closed once every receiver is gone; a message too large
/// for the channel is refused whole; `()` messages are not taken for the end.
#[test]
fn closed_too_large_and_empty_messages() {
    // Serial: another test's children, forked meanwhile, would hold copies
    // of these ends and keep them open.
    let _serial = serial();
    let (tx, rx) = channel::<Vec<u8>>().unwrap();
    let too_big = vec![1u8; tx.max_message() + 1];
    assert!(matches!(tx.send(&too_big), Err(IpcError::TooLarge { .. })));
    drop(rx);
    assert!(matches!(tx.send(&vec![1]), Err(IpcError::Closed)));

    let (tx, rx) = channel::<()>().unwrap();
    tx.send(&()).unwrap();
    tx.send(&()).unwrap();
    drop(tx);
    assert_eq!(rx.iter().count(), 2);
}
