//! The process-wide locks a fork must not copy while another thread holds
//! them.
//!
//! `fork` copies only the calling thread. A lock that another thread held at
//! that instant is held forever in the child, with no thread left to release
//! it: the child's first `println!` (stdout's lock) or allocation (the
//! allocator's) then never returns. The cure, from `pthread_atfork(3)` and
//! glibc's own treatment of `malloc`, is to *take* such locks in the forking
//! thread just before the fork, and release them on both sides afterwards:
//! then no other thread can be inside them at the fork, and the child gets
//! them free.
//!
//! [`ForkLocks`] does that for the locks Rust's standard library holds for the
//! whole process and which a child is likely to need: stdout's and stderr's.
//! glibc takes its allocator's and stdio's locks around `fork` itself. ply
//! keeps no other process-wide lock a child could need (its result cache is a
//! single atomic pointer).
//!
//! What cannot be fixed this way is a lock the *program* owns (a
//! `static Mutex`, a lock inside a library): ply does not know it exists.
//! [`other_threads`] counts the threads that could be holding one, so that
//! callers can apply a policy (see `process::ThreadPolicy`).

use std::io::{Stderr, StderrLock, Stdout, StdoutLock};

/// Stdout's and stderr's locks, held across a fork by the forking thread.
///
/// Taken in that order (the order `println!` then `eprintln!` inside one
/// `stdout().lock()` scope takes them), so that a thread that holds stdout's
/// lock and prints to stderr cannot deadlock with the fork.
pub(crate) struct ForkLocks {
    _out: StdoutLock<'static>,
    _err: StderrLock<'static>,
}

impl ForkLocks {
    /// Waits until no other thread is printing, and keeps it so until dropped.
    pub(crate) fn acquire() -> Self {
        ForkLocks {
            _out: Stdout::lock(&std::io::stdout()),
            _err: Stderr::lock(&std::io::stderr()),
        }
    }
}

/// The threads of this process other than the caller, read from
/// `/proc/self/stat` (its 20th field); `None` if it cannot be read.
pub(crate) fn other_threads() -> Option<usize> {
    // One `read` into the stack: the line is under 1 KiB (52 numbers and a
    // name of at most 64 bytes). `read_to_string` would `statx` the file and
    // read it in five growing reads, for every fork-join call.
    let mut buf = [0u8; 1024];
    let mut file = std::fs::File::open("/proc/self/stat").ok()?;
    let len = std::io::Read::read(&mut file, &mut buf).ok()?;
    let stat = buf.get(..len)?;
    // "pid (comm) state ppid ...": the fields after the last ')' start at
    // field 3, so num_threads (field 20) is the 18th of them.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let threads: usize = rest.split_whitespace().nth(17)?.parse().ok()?;
    Some(threads.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::fork_child;

    /// In a forked child only the forking thread exists; a thread it starts
    /// is counted.
    #[test]
    fn counts_the_threads_of_a_fresh_child() {
        let child = fork_child(|| {
            if other_threads() != Some(0) {
                return 1;
            }
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let t = std::thread::spawn(move || rx.recv().ok());
            let seen = other_threads();
            drop(tx);
            let _ = t.join();
            if seen == Some(1) { 0 } else { 2 }
        })
        .unwrap();
        assert!(child.wait().unwrap().success());
    }
}
