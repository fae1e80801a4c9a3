//! Which process a pool belongs to. `fork` copies a pool into the child
//! with none of its worker threads (only the forking thread exists there):
//! a task queued there would never run, a join of a worker would wait for a
//! thread that does not exist, and a job copied from the parent's queues,
//! run there, would run the parent's task a second time. So a pool counts
//! the forks made since it was built, and where that count differs it is
//! foreign: it takes no tasks (a scope runs its spawns inline), finds no
//! jobs to help with, and shuts down without waiting for anyone.
//!
//! Forks are counted by a `pthread_atfork` child handler (registered when
//! the first pool is built), so a pool checks with one load of a counter,
//! where comparing process ids would be a system call per submission. A
//! child made without `fork(3)` (a raw `clone`) is not counted.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32};

/// Forks this process is a child of, since the handler was registered.
static FORKS: AtomicU32 = AtomicU32::new(0);
/// Whether the handler is registered (or being registered).
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Runs in the child of every `fork`: an atomic add, safe there.
extern "C" fn count_fork_in_child() {
    FORKS.fetch_add(1, Relaxed);
}

/// Starts counting forks (once per process) and returns the count, to be
/// compared with [`count`] later. No `Once`: a `Once` copied by a fork while
/// another thread ran it would stay "running" in the child for ever.
pub(crate) fn start_counting() -> u32 {
    if !REGISTERED.swap(true, Relaxed) {
        // SAFETY: registers a handler that only adds to an atomic, which is
        // safe in a child of a multi-threaded process.
        let failed = unsafe { libc::pthread_atfork(None, None, Some(count_fork_in_child)) } != 0;
        if failed {
            REGISTERED.store(false, Relaxed); // forks stay uncounted
        }
    }
    count()
}

/// Forks counted so far in this process's ancestry (see [`start_counting`]).
/// Relaxed: the count changes only in a child's one thread, before anything
/// else runs there.
#[inline]
pub(crate) fn count() -> u32 {
    FORKS.load(Relaxed)
}
