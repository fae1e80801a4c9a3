//! Child subreaper and the sweep of re-parented descendants.
//!
//! When a process dies, its children are re-parented to the nearest ancestor
//! that declared itself a *child subreaper* (`prctl(PR_SET_CHILD_SUBREAPER)`,
//! Linux 3.4), instead of to init. A process that runs jobs and is a subreaper
//! therefore sees, as its own children, every descendant that outlived its
//! parent — the double-forked daemon, the `setsid` escapee once its shell is
//! gone — and can kill and reap them. See `prctl(2)`.

use std::io;

/// Makes the calling process a child subreaper.
///
/// # Errors
///
/// The `prctl` error.
pub(crate) fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes a flag, no pointers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The process group of `pid`, from `/proc/<pid>/stat` (the third field
/// after the command name).
pub(crate) fn process_group(pid: libc::pid_t) -> Option<libc::pid_t> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The value of `key` in the environment `pid` was started with (as of its
/// last `execve`), from `/proc/<pid>/environ`; `None` if unset or
/// unreadable.
pub(crate) fn environment_value(pid: libc::pid_t, key: &str) -> Option<Vec<u8>> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ.split(|&b| b == 0).find_map(|entry| {
        let value = entry.strip_prefix(key.as_bytes())?.strip_prefix(b"=")?;
        Some(value.to_vec())
    })
}

/// Whether `pid` (a child of ours) has exited and awaits reaping.
fn is_zombie(pid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Reaps every child for which `keep(pid)` is false; SIGKILLs first the live
/// ones for which `kill(pid)` is true. Returns how many of those are still
/// to be reaped: killed (or found dead) but not yet gone, so a later sweep
/// must come back for them.
pub(crate) fn sweep(
    keep: &dyn Fn(libc::pid_t) -> bool,
    kill: &dyn Fn(libc::pid_t) -> bool,
) -> usize {
    let mut pending = 0;
    for pid in crate::fork::own_children() {
        if keep(pid) {
            continue;
        }
        if kill(pid) {
            // SAFETY: kill has no memory-safety preconditions; `pid` is an
            // unreaped child of ours, so it cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        } else if !is_zombie(pid) {
            continue;
        }
        // SAFETY: waitpid with a null status pointer is allowed; the pid is
        // our child and no one else waits for it (it is no job's leader).
        if unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == 0 {
            pending += 1;
        }
    }
    pending
}
