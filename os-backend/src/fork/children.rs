//! The children of a process, as the kernel lists them.
//!
//! Linux (3.5+, `CONFIG_PROC_CHILDREN`) lists each thread's children in
//! `/proc/<pid>/task/<tid>/children`: a child belongs to the thread that
//! forked it (or to the process's main thread, if it was re-parented here).
//! The children of a process are the union over its threads. Zombies, not
//! yet reaped, are listed; a child forked or reaped while the files are
//! read may or may not be. `proc(5)` says this list is reliable only while
//! the children are stopped or not changing: a snapshot, to act on with a
//! re-check (a pidfd, `waitid`) where a reused pid would matter.

/// The direct children of process `pid`, as listed by each of its threads
/// (zombies included); empty if the process is gone or `/proc` cannot be
/// read.
///
/// # Example
///
/// ```
/// use ply_os::fork::{children_of, fork_child};
///
/// let child = fork_child(|| loop { std::thread::park() })?;
/// let me = std::process::id() as i32;
/// assert!(children_of(me).contains(&child.pid()));
/// drop(child); // kills and reaps it
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// The children of this process (see [`children_of`]).
pub(crate) fn own_children() -> Vec<i32> {
    children_of(std::process::id() as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::fork_child;

    /// Children forked by two threads (neither the main one) are all
    /// listed while both threads live (each thread's list is read), and a
    /// reaped one is not.
    #[test]
    fn lists_every_threads_children_and_not_the_reaped() {
        let mine = fork_child(|| {
            loop {
                std::thread::park();
            }
        })
        .unwrap();
        let (forked_tx, forked) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let forker = std::thread::spawn(move || {
            let theirs = fork_child(|| {
                loop {
                    std::thread::park();
                }
            })
            .unwrap();
            forked_tx.send(theirs.pid()).unwrap();
            let _ = done.recv(); // lives (with its child) until told
            drop(theirs); // kills and reaps it
        });
        let theirs = forked.recv().unwrap();
        let listed = own_children();
        assert!(listed.contains(&mine.pid()), "{listed:?}");
        assert!(listed.contains(&theirs), "{listed:?}");
        drop(done_tx);
        forker.join().unwrap();
        assert!(!own_children().contains(&theirs));
        assert!(children_of(i32::MAX).is_empty()); // no such process
    }
}
