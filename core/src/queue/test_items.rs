//! Items for the queues' tests: each counts its drops, and may panic in drop.

use core::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::vec::Vec;

/// An item that counts its drops in `drops[id]` and panics in its drop when
/// `panics` is set: for checking that a panicking destructor neither drops an
/// item twice, nor leaves a dropped item in a queue, nor keeps the other items
/// from being dropped.
pub(crate) struct PanicsOnDrop<'a> {
    pub(crate) id: usize,
    pub(crate) drops: &'a [AtomicUsize],
    pub(crate) panics: bool,
}

impl<'a> PanicsOnDrop<'a> {
    /// Item `id`, panicking in drop if `id == panicking`.
    pub(crate) fn new(id: usize, drops: &'a [AtomicUsize], panicking: usize) -> Self {
        PanicsOnDrop {
            id,
            drops,
            panics: id == panicking,
        }
    }
}

impl Drop for PanicsOnDrop<'_> {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, SeqCst);
        if self.panics {
            panic!("item {} panics in drop", self.id);
        }
    }
}

/// How often each item was dropped.
pub(crate) fn drop_counts(drops: &[AtomicUsize]) -> Vec<usize> {
    drops.iter().map(|d| d.load(SeqCst)).collect()
}

/// Runs `f`, which must panic (an item's drop does), and returns.
pub(crate) fn expect_panic(f: impl FnOnce()) {
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    assert!(unwound.is_err(), "an item's drop should have panicked");
}
