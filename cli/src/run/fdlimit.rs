//! How many jobs ply can afford to run at once with the file descriptors
//! it may open (`ulimit -n`).
//!
//! Every running job holds descriptors in ply: its pidfd, its stdout and
//! stderr pipes (and stdin with `--pipe`), its cgroup's three files, and up
//! to two temporary files its output spills to; starting one briefly holds
//! the child's pipe ends too. Out of descriptors, a start fails with
//! EMFILE — a job that never ran. So, as GNU parallel does (it checks its
//! file handles before it starts jobs), the slots are capped up front to
//! what the limit leaves after the descriptors already open and a reserve
//! for ply's own (the joblog, an input file, a spawn in progress).

/// Descriptors one running job may hold in ply (see the module doc).
pub const PER_JOB: u64 = 9;
/// Descriptors kept back for ply's own use and a start in progress.
pub const RESERVE: u64 = 16;

/// The most jobs that fit in `limit` descriptors when `open` are already
/// open (at least 1: with fewer, a start fails and says why).
pub fn affordable(limit: u64, open: u64) -> u64 {
    (limit.saturating_sub(open).saturating_sub(RESERVE) / PER_JOB).max(1)
}

/// The soft `RLIMIT_NOFILE` and the descriptors open now; `None` where
/// either cannot be known (no limit, no `/proc`).
pub fn current() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    // The directory's own descriptor is listed too.
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64 - 1;
    Some((limit.rlim_cur, open))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slots_fit_in_what_the_limit_leaves() {
        // ulimit -n 64 with 10 open: (64 - 10 - 16) / 9 = 4 jobs.
        assert_eq!(affordable(64, 10), 4);
        assert_eq!(affordable(1024, 10), 110);
        // Nothing left: one slot, whose start then fails with its reason.
        assert_eq!(affordable(20, 10), 1);
        assert_eq!(affordable(5, 10), 1);
        let (limit, open) = current().expect("Linux has /proc and a limit");
        assert!(open >= 3 && open < limit, "{open} of {limit}");
    }
}
