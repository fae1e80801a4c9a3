//! The other half of `shm_safe_bounds.rs`: types declared with `shm_safe!`
//! (a struct, an enum) cross `fork()` through every shared-memory API, and
//! come back whole.

use std::time::Duration;

use ply_os::fork::scope;
use ply_os::ipc::{ProcessQueue, SharedArray, SharedValue};
use ply_os::process::{MapOptions, map_plain, reduce};

ply_os::shm::shm_safe! {
    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    struct Point {
        x: f64,
        y: f64,
        tag: char,
    }
}

ply_os::shm::shm_safe! {
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Reply {
        Idle,
        Done { item: u32, square: u64 },
        Failed(i32),
    }
}

fn reply(item: u32) -> Reply {
    match item % 3 {
        0 => Reply::Idle,
        1 => Reply::Done {
            item,
            square: u64::from(item) * u64::from(item),
        },
        _ => Reply::Failed(-(item as i32)),
    }
}

#[test]
fn a_struct_set_in_a_child_is_read_whole_by_the_parent() {
    let point = SharedValue::new(Point {
        x: 0.0,
        y: 0.0,
        tag: ' ',
    })
    .unwrap();
    scope(|s| {
        let child = s
            .fork_child(|| {
                point.set(Point {
                    x: 1.5,
                    y: -2.25,
                    tag: 'λ',
                });
                0
            })
            .unwrap();
        assert!(child.wait().unwrap().success());
    });
    assert_eq!(
        point.get(),
        Point {
            x: 1.5,
            y: -2.25,
            tag: 'λ'
        }
    );
}

#[test]
fn enums_cross_a_shared_array_and_a_process_queue() {
    let array = SharedArray::new(30, Reply::Idle).unwrap();
    let queue = ProcessQueue::<Reply, 8>::new().unwrap();
    scope(|s| {
        let child = s
            .fork_child(|| {
                let mut slots = array.lock().expect("no holder died");
                for (i, slot) in slots.iter_mut().enumerate() {
                    *slot = reply(i as u32);
                }
                drop(slots);
                for i in 0..100 {
                    queue.put(reply(i));
                }
                0
            })
            .unwrap();
        for i in 0..100 {
            let got = queue
                .get_timeout(Duration::from_secs(60))
                .expect("the child stalled");
            assert_eq!(got, reply(i), "item {i} out of order or corrupt");
        }
        assert!(child.wait().unwrap().success());
    });
    assert_eq!(queue.try_get(), None, "no extra items");
    let expected: Vec<Reply> = (0..30).map(reply).collect();
    assert_eq!(&*array.lock().expect("no holder died"), &expected[..]);
}

#[test]
fn map_plain_returns_enums_and_reduce_folds_tuples() {
    let inputs: Vec<u32> = (0..10_000).collect();
    let options = MapOptions::new().workers(2);
    let replies = map_plain(&inputs, |&i| reply(i), &options).unwrap();
    assert!(replies.iter().zip(&inputs).all(|(&r, &i)| r == reply(i)));
    // (count, sum) of the squares of the multiples of 7.
    let (count, sum) = reduce(
        0..10_000,
        &options,
        (0u64, 0u64),
        |i| {
            if i % 7 == 0 {
                (1, (i * i) as u64)
            } else {
                (0, 0)
            }
        },
        |a, b| (a.0 + b.0, a.1 + b.1),
    )
    .unwrap();
    let multiples = (0..10_000u64).filter(|i| i % 7 == 0);
    assert_eq!(count, multiples.clone().count() as u64);
    assert_eq!(sum, multiples.map(|i| i * i).sum::<u64>());
}
