//! Unit and stress tests of the event count (loom models in `core/tests/loom.rs`).

use super::*;
use crate::sync::Spins;
use crate::sync::tests::finishes;
use core::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

#[test]
fn a_notify_between_prepare_and_wait_is_not_lost() {
    let ec = EventCount::new();
    let key = ec.prepare_wait();
    ec.notify_one(); // lands before the wait: the wait must return at once
    assert!(ec.wait_with(key, Spins(0)), "notified before waiting");
    assert_eq!(ec.waiters(), 0);
}

#[test]
fn a_notify_with_nobody_registered_changes_nothing() {
    let ec = EventCount::new();
    ec.notify_one();
    ec.notify_all();
    assert_eq!(
        ec.epoch.load(SeqCst),
        0,
        "no waiter: no bump, no wake-up call"
    );
    let key = ec.prepare_wait();
    ec.notify_all();
    assert_eq!(ec.epoch.load(SeqCst), 1);
    ec.cancel_wait(key);
}

#[test]
fn a_wait_without_a_notify_runs_out_of_patience_and_deregisters() {
    let ec = EventCount::new();
    let key = ec.prepare_wait();
    assert!(!ec.wait_with(key, Spins(5)));
    assert_eq!(ec.waiters(), 0);
    let mut tries = 0;
    assert_eq!(
        ec.wait_until_with(
            || {
                tries += 1;
                None::<()>
            },
            Spins(50)
        ),
        None
    );
    // Patience is spent by failed attempts and by parks alike.
    assert!((2..=51).contains(&tries), "{tries} attempts");
    assert_eq!(ec.waiters(), 0);
}

#[test]
fn consumers_sleeping_on_an_event_count_get_every_item_once() {
    const PRODUCERS: usize = 2;
    const CONSUMERS: usize = 3;
    let per_producer: usize = if cfg!(miri) { 50 } else { 20_000 };
    let total = PRODUCERS * per_producer;
    let shared = Arc::new((
        Mutex::new(VecDeque::new()),
        EventCount::new(),
        AtomicUsize::new(0),
    ));
    let got = finishes(move || {
        std::thread::scope(|s| {
            for p in 0..PRODUCERS {
                let shared = &shared;
                s.spawn(move || {
                    for i in 0..per_producer {
                        shared.0.lock().unwrap().push_back(p * per_producer + i);
                        shared.1.notify_one();
                    }
                });
            }
            let consumers: Vec<_> = (0..CONSUMERS)
                .map(|_| {
                    let shared = &shared;
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        loop {
                            // Stop once every item is taken: a taker of the
                            // last item notifies everyone still asleep.
                            let item = shared.1.wait_until(|| {
                                if shared.2.load(SeqCst) == total {
                                    return Some(None);
                                }
                                shared.0.lock().unwrap().pop_front().map(Some)
                            });
                            let Some(item) = item else { break };
                            mine.push(item);
                            if shared.2.fetch_add(1, SeqCst) + 1 == total {
                                shared.1.notify_all();
                            }
                        }
                        mine
                    })
                })
                .collect();
            consumers
                .into_iter()
                .flat_map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    let mut seen = std::vec![0u8; total];
    for item in got {
        seen[item] += 1;
    }
    assert!(seen.iter().all(|&n| n == 1), "every item exactly once");
}

#[test]
fn a_panic_while_registered_does_not_leave_a_waiter_behind() {
    // The caller's code runs while a wait is registered in two places: the
    // attempt of `wait_until` (after `prepare_wait`) and the patience of
    // `wait_with`. A panic in either must not leave the registration behind,
    // or every later notify pays a bump and a wake-up call for nobody.
    let ec = EventCount::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ec.wait_until(|| -> Option<()> {
            if ec.waiters() > 0 {
                panic!("attempt panics while registered");
            }
            None
        })
    }));
    assert!(caught.is_err());
    assert_eq!(ec.waiters(), 0, "wait_until's registration was left behind");

    struct PanickingPatience;
    impl Patience for PanickingPatience {
        fn keep_waiting(&mut self) -> bool {
            panic!("patience panics while registered")
        }
    }
    let key = ec.prepare_wait();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ec.wait_with(key, PanickingPatience)
    }));
    assert!(caught.is_err());
    assert_eq!(ec.waiters(), 0, "wait_with's registration was left behind");
    ec.notify_all();
    assert_eq!(ec.epoch.load(SeqCst), 0, "a notify for nobody bumped");
}
