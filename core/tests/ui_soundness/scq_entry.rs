// An SCQ queue's index-ring entries carry its protocol: safe code that could
// store to one could make a pop read a slot nobody wrote. Reaching one is
// `unsafe`.
use std::sync::atomic::Ordering;

use ply_core::queue::mpmc::{Entries, ScqQueue};

fn main() {
    // "Index 1 is ready at position 0": a pop would read an uninitialized String.
    let queue = ScqQueue::<String, 2>::new();
    queue.entries().1.get(0).store(5, Ordering::Relaxed);
    let _ = queue.pop();
}
