//! A per-thread cache of task cells' memory.
//!
//! A thread that submits tasks and joins them in a loop frees one cell per
//! join and allocates one per submit. glibc's allocator keeps only seven
//! freed chunks of a size per thread (its tcache); past that, in a process
//! with threads, each free and each malloc of a small chunk is an atomic
//! compare-and-swap on its fast bins — two serialising instructions per task
//! on the submitting thread, which a profile of `submit` + `join` showed.
//! Here a thread keeps up to [`BLOCKS`] freed blocks of each of up to
//! [`LAYOUTS`] layouts (of at most [`MAX_SIZE`] bytes) in a plain vector and
//! hands them out again; anything else goes to the global allocator. The
//! cache is freed when its thread exits. (The recycling free lists of
//! allocators such as jemalloc's tcache, kept next to the one object that
//! needs them.)

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::RefCell;
use std::ptr::NonNull;

/// Freed blocks a thread keeps per layout: one batch of a submit-and-join
/// loop's worth (64 KiB for a 64-byte cell).
const BLOCKS: usize = 1024;
/// Layouts a thread keeps blocks for.
const LAYOUTS: usize = 4;
/// Larger blocks go straight back to the allocator.
const MAX_SIZE: usize = 128;

/// One thread's free blocks, by layout.
struct Cache {
    lists: Vec<(Layout, Vec<NonNull<u8>>)>,
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (layout, blocks) in self.lists.drain(..) {
            for block in blocks {
                // SAFETY: every cached block came from `alloc(layout)` and
                // is owned by the cache alone.
                unsafe { dealloc(block.as_ptr(), layout) };
            }
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Cache { lists: Vec::new() }) };
}

/// Memory for one value of `layout`, which must have a non-zero size (a
/// task cell always has one: it holds its state word): a block this thread
/// freed earlier, or a new one.
pub(super) fn take(layout: Layout) -> NonNull<u8> {
    // Checked, not assumed: `alloc` of a zero size is undefined behaviour,
    // and this function is safe to call.
    assert!(layout.size() > 0, "recycle::take of a zero-sized layout");
    if layout.size() <= MAX_SIZE {
        let cached = CACHE
            .try_with(|cache| {
                let mut cache = cache.try_borrow_mut().ok()?;
                let (_, blocks) = cache.lists.iter_mut().find(|(l, _)| *l == layout)?;
                blocks.pop()
            })
            .ok()
            .flatten();
        if let Some(block) = cached {
            return block;
        }
    }
    // SAFETY: the layout has a non-zero size (asserted above).
    let block = unsafe { alloc(layout) };
    NonNull::new(block).unwrap_or_else(|| handle_alloc_error(layout))
}

/// Takes back a block whose value has been dropped: keeps it for this
/// thread's next [`take`] of the same layout, or frees it.
///
/// # Safety
///
/// `block` came from [`take`] with this `layout` (on any thread), holds no
/// live value, and is not used again by the caller.
pub(super) unsafe fn give(block: NonNull<u8>, layout: Layout) {
    if layout.size() <= MAX_SIZE {
        let kept = CACHE
            .try_with(|cache| {
                let Ok(mut cache) = cache.try_borrow_mut() else {
                    return false;
                };
                let lists = &mut cache.lists;
                let index = match lists.iter().position(|(l, _)| *l == layout) {
                    Some(index) => index,
                    None if lists.len() < LAYOUTS => {
                        lists.push((layout, Vec::with_capacity(BLOCKS)));
                        lists.len() - 1
                    }
                    None => return false,
                };
                let blocks = &mut lists[index].1;
                if blocks.len() < BLOCKS {
                    blocks.push(block);
                    true
                } else {
                    false
                }
            })
            .unwrap_or(false); // the thread is exiting: its cache is gone
        if kept {
            return;
        }
    }
    // SAFETY: per the contract, the block came from `alloc(layout)` (in
    // `take`, directly or through a cache) and nobody uses it any more.
    unsafe { dealloc(block.as_ptr(), layout) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(layout: Layout) -> usize {
        CACHE.with(|cache| {
            let cache = cache.borrow();
            let list = cache.lists.iter().find(|(l, _)| *l == layout);
            list.map_or(0, |(_, blocks)| blocks.len())
        })
    }

    /// A block given back is the next one taken; the cache keeps at most
    /// `BLOCKS` per layout and nothing larger than `MAX_SIZE`; a thread's
    /// blocks stay with it.
    #[test]
    fn given_blocks_are_reused_on_their_thread_and_the_cache_is_bounded() {
        let small = Layout::new::<[u64; 4]>();
        let first = take(small);
        // SAFETY: from `take(small)`, holds no value, not used again.
        unsafe { give(first, small) };
        assert_eq!(cached(small), 1);
        let again = take(small);
        assert_eq!(again, first);
        assert_eq!(cached(small), 0);
        // SAFETY: as above (not leaked: Miri checks).
        unsafe { give(again, small) };

        let many: Vec<_> = (0..BLOCKS + 10).map(|_| take(small)).collect();
        for &block in &many {
            // SAFETY: as above.
            unsafe { give(block, small) };
        }
        assert_eq!(cached(small), BLOCKS);
        // Another thread has its own (empty) cache.
        std::thread::spawn(move || assert_eq!(cached(small), 0))
            .join()
            .unwrap();

        let large = Layout::from_size_align(MAX_SIZE + 8, 8).unwrap();
        let block = take(large);
        // SAFETY: as above.
        unsafe { give(block, large) };
        assert_eq!(cached(large), 0);
    }
}
