//! CPU pinning for the calling thread (`sched_setaffinity`).
//!
//! Benchmarks of two communicating threads mislead on a small VM when both land
//! on one CPU: they never contend. Pinning them to distinct CPUs makes the
//! measurement mean what it says.

use std::io;

/// The CPUs this process may run on, in increasing order.
///
/// # Errors
///
/// The `sched_getaffinity` error.
///
/// # Example
///
/// ```
/// let cpus = ply_os::affinity::allowed_cpus()?;
/// assert!(!cpus.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a valid, writable cpu_set_t of the size we pass.
    let rc = unsafe { libc::sched_getaffinity(0, size, &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, so CPU_ISSET reads inside `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pins the calling thread to `cpu`.
///
/// # Errors
///
/// `InvalidInput` if `cpu` is out of range, or the `sched_setaffinity` error
/// (for example `EINVAL` when the CPU is not allowed for this process).
///
/// # Example
///
/// ```
/// let cpus = ply_os::affinity::allowed_cpus()?;
/// std::thread::spawn(move || ply_os::affinity::pin_current_thread(cpus[0]))
///     .join()
///     .unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cpu {cpu} is out of range (CPU_SETSIZE is {})",
                libc::CPU_SETSIZE
            ),
        ));
    }
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` < CPU_SETSIZE (checked above), so CPU_SET writes inside `set`.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size we pass; pid 0 = this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_restricts_the_thread_to_one_cpu() {
        let cpus = allowed_cpus().unwrap();
        let target = *cpus.last().unwrap();
        let seen = std::thread::spawn(move || {
            pin_current_thread(target).unwrap();
            allowed_cpus().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![target]);
    }

    #[test]
    fn out_of_range_cpu_is_an_error() {
        let err = pin_current_thread(1 << 20).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
