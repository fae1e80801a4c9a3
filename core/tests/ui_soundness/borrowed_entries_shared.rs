// Entries lent to a queue are borrowed exclusively: with a shared borrow the
// caller could store to them behind the queue's back.
use std::sync::atomic::{AtomicUsize, Ordering};

use ply_core::queue::mpmc::{BorrowedEntries, Entries};

fn main() {
    let words: [AtomicUsize; 4] = Default::default();
    let entries = BorrowedEntries::new(&words);
    words[0].store(5, Ordering::Relaxed);
    let _ = entries.len();
}
