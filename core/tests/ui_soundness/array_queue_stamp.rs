// An array queue's stamps carry its protocol: safe code that could store to
// one could make a pop read a cell nobody wrote. Reaching one is `unsafe`.
use std::sync::atomic::Ordering;

use ply_core::queue::mpmc::{ArrayQueue, StampedSlots};

fn main() {
    // "Full for position 0": the next pop would read an uninitialized String.
    let queue = ArrayQueue::<String, 2>::new();
    queue.slots().stamp(0).store(1, Ordering::Relaxed);
    let _ = queue.pop();
}
