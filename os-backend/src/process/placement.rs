//! Where a freshly forked worker first runs.
//!
//! A forked child is queued on its parent's CPU. Where the scheduler does not
//! move new tasks to idle CPUs at fork time — seen on the 2-vCPU VM of
//! `BENCHMARKS.md`: the first worker did not run until the parent had forked
//! the second and gone to sleep — every worker but the last waits out the
//! parent's remaining forks, about 250 µs each when the parent holds 8 MiB.
//! [`Placement::move_off_this_cpu`] has the kernel move such a worker to
//! another allowed CPU at once (`sched_setaffinity` with the parent's CPU
//! taken out); when all are forked, [`Placement::restore`] gives each the
//! whole set back, so workers end with the affinity they would have
//! inherited. Measured there in an in-process A/B: a 1,000,000-item
//! `map_plain` 7–10% faster (medians 1.72 → 1.59, 1.83 → 1.65 and
//! 2.04 → 1.88 ms); the 170 ms primes reduce unchanged.
//!
//! Only ever an optimisation: every failure is ignored, and the worst case
//! is the scheduler's own placement.

use std::mem::size_of;

/// The forking thread's allowed CPUs, and the workers moved off its CPU.
pub(super) struct Placement {
    /// `None` if it could not be read (then nothing is moved).
    allowed: Option<libc::cpu_set_t>,
    moved: Vec<libc::pid_t>,
}

impl Placement {
    /// Reads the calling thread's CPU set (what its children inherit).
    pub(super) fn new() -> Self {
        // SAFETY: an all-zero cpu_set_t is a valid, empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a writable cpu_set_t of the size passed; 0 means
        // the calling thread.
        let read = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
        Placement {
            allowed: (read == 0).then_some(set),
            moved: Vec::new(),
        }
    }

    /// Moves the just-forked worker `pid` to the allowed CPUs other than the
    /// one this thread is on, if there are any.
    pub(super) fn move_off_this_cpu(&mut self, pid: libc::pid_t) {
        let Some(mut others) = self.allowed else {
            return;
        };
        // SAFETY: sched_getcpu has no preconditions.
        let here = unsafe { libc::sched_getcpu() };
        if here < 0 || here as usize >= libc::CPU_SETSIZE as usize {
            return;
        }
        // SAFETY: `here` < CPU_SETSIZE (checked), so CPU_CLR stays in the set.
        unsafe { libc::CPU_CLR(here as usize, &mut others) };
        if cpu_count(&others) == 0 {
            return;
        }
        // SAFETY: `others` is a valid cpu_set_t of the size passed; `pid` is
        // our unreaped child, so the id cannot name another process.
        if unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &others) } == 0 {
            self.moved.push(pid);
        }
    }

    /// Gives every moved worker the whole allowed set back.
    pub(super) fn restore(self) {
        let Some(allowed) = self.allowed else {
            return;
        };
        for pid in self.moved {
            // SAFETY: as in `move_off_this_cpu`; a worker that has exited
            // meanwhile is a zombie until reaped, so this fails harmlessly.
            unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &allowed) };
        }
    }
}

/// The number of CPUs in `set`.
fn cpu_count(set: &libc::cpu_set_t) -> i32 {
    // SAFETY: CPU_COUNT only reads the set it is given, a valid reference.
    unsafe { libc::CPU_COUNT(set) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPUs in `set`, in order.
    fn cpus(set: &libc::cpu_set_t) -> Vec<usize> {
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu` < CPU_SETSIZE, so CPU_ISSET reads inside the set.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, set) })
            .collect()
    }

    fn affinity_of(pid: libc::pid_t) -> libc::cpu_set_t {
        // SAFETY: an all-zero cpu_set_t is a valid, empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is writable and of the size passed.
        let rc = unsafe { libc::sched_getaffinity(pid, size_of::<libc::cpu_set_t>(), &mut set) };
        assert_eq!(rc, 0);
        set
    }

    #[test]
    fn a_moved_worker_leaves_this_cpu_and_gets_the_whole_set_back() {
        let go = crate::shm::SharedBox::new(std::sync::atomic::AtomicBool::new(false)).unwrap();
        crate::fork::scope(|s| {
            let child = s
                .fork_child(|| {
                    while !go.load(std::sync::atomic::Ordering::Acquire) {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    0
                })
                .unwrap();
            let mut placement = Placement::new();
            let allowed = placement.allowed.expect("readable affinity");
            placement.move_off_this_cpu(child.pid());
            if cpu_count(&allowed) >= 2 {
                assert_eq!(placement.moved, [child.pid()]);
                let moved = affinity_of(child.pid());
                assert_eq!(cpu_count(&moved), cpu_count(&allowed) - 1);
            } else {
                assert!(placement.moved.is_empty(), "nowhere else to go");
            }
            placement.restore();
            assert_eq!(cpus(&affinity_of(child.pid())), cpus(&allowed));
            go.store(true, std::sync::atomic::Ordering::Release);
            assert!(child.wait().unwrap().success());
        });
    }
}
