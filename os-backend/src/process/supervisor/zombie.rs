//! The exit status of a process that is not this process's child: a pool
//! worker, whose parent is the fork server.
//!
//! Only a parent can reap a child (`waitid(P_PIDFD)` refuses others), and
//! the fork server may be stopped, so its report can be late by any amount.
//! But until its parent reaps it, an ended process is a zombie that keeps
//! its `/proc/<pid>/stat`, whose 52nd field (Linux 3.5+) is its exit status
//! in `waitpid`'s encoding, readable by its owner. The pid could have been
//! reaped and given to another process between the pidfd firing and the
//! read; so the read is checked afterwards through the pidfd: a signal 0
//! still deliverable means the process was not reaped yet, hence the pid was
//! still its own when the file was read (the pattern the pidfd man page
//! gives for race-free `/proc` reads). If the server reaped it first, its
//! report is on the way, and the caller waits for that, with a deadline.

use std::os::fd::BorrowedFd;

use crate::fork::ChildExit;

/// Tests only: `false` makes [`exit_status`] find nothing, as when the fork
/// server reaped the worker first.
#[cfg(test)]
pub(crate) static READ_ZOMBIES: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(true);

/// How `pid` (whose pidfd is `pidfd`, and which has ended) ended, while it
/// is still a zombie; `None` once its parent has reaped it, or if `/proc`
/// cannot tell.
pub(crate) fn exit_status(pid: i32, pidfd: BorrowedFd<'_>) -> Option<ChildExit> {
    #[cfg(test)]
    if !READ_ZOMBIES.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = parse_exit_code(&stat)?;
    // Still unreaped after the read: the file was this process's. (Signal 0
    // checks without sending; rustix's `Signal` has no 0, hence the raw call.)
    // SAFETY: pidfd_send_signal with a valid descriptor, signal 0, no info
    // and no flags reads and writes no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    (rc == 0).then(|| ChildExit::from_wait_status(status))
}

/// The exit status of a zombie's `/proc/<pid>/stat`: its state must be `Z`
/// (`X`, dead, is not shown by `/proc`) and field 52 holds the status.
fn parse_exit_code(stat: &str) -> Option<i32> {
    // "pid (comm) state ...": fields after the last ')' start at field 3.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    if fields.next()? != "Z" {
        return None;
    }
    // Field 3 was the state; field 52 is 49 further on.
    fields.nth(48)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::{Signal, fork_child};
    use std::time::{Duration, Instant};

    #[test]
    fn parses_a_zombies_status_and_nothing_else() {
        let fields = |state: &str, code: &str| {
            let mut f: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
            f[0] = state.into();
            f[49] = code.into();
            format!("42 (a (b) c) {}", f.join(" "))
        };
        assert_eq!(parse_exit_code(&fields("Z", "768")), Some(768));
        assert_eq!(parse_exit_code(&fields("R", "768")), None);
        assert_eq!(parse_exit_code(&fields("Z", "x")), None);
        assert_eq!(parse_exit_code("42 (short) Z 1 2"), None);
    }

    /// A grandchild whose parent is stopped: its status is read anyway.
    /// Once reaped, it is not read (nor anything of a later owner of its pid).
    #[test]
    fn reads_the_status_of_another_process_child_until_it_is_reaped() {
        for (code, want) in [
            (None, ChildExit::Signaled(Signal::TERM)),
            (Some(3), ChildExit::Exited(3)),
        ] {
            let (tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
            // The middle process forks the worker, tells its pid, and stops
            // (a stopped fork server), leaving the worker unreaped.
            let middle = fork_child(move || {
                let worker = fork_child(move || match code {
                    Some(code) => code,
                    None => {
                        // SAFETY: raise has no memory-safety preconditions.
                        unsafe { libc::raise(libc::SIGTERM) };
                        0
                    }
                })
                .unwrap();
                let _ = std::io::Write::write_all(&mut &tx, &worker.pid().to_le_bytes());
                // SAFETY: as above.
                unsafe { libc::raise(libc::SIGSTOP) };
                drop(worker);
                0
            })
            .unwrap();
            let mut pid = [0u8; 4];
            std::io::Read::read_exact(&mut &rx, &mut pid).unwrap();
            let pid = i32::from_le_bytes(pid);
            let pidfd = rustix::process::pidfd_open(
                rustix::process::Pid::from_raw(pid).unwrap(),
                rustix::process::PidfdFlags::empty(),
            )
            .unwrap();
            crate::ipc::ready::wait_readable(
                std::os::fd::AsFd::as_fd(&pidfd),
                Some(Duration::from_secs(30)),
            )
            .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let seen = loop {
                // The pidfd fires as the worker exits; it shows as a zombie
                // a moment later.
                if let Some(exit) = exit_status(pid, std::os::fd::AsFd::as_fd(&pidfd)) {
                    break exit;
                }
                assert!(Instant::now() < deadline, "never read");
                std::thread::yield_now();
            };
            assert_eq!(seen, want);
            // Reaped by its parent (killed, so it reaps nothing: resume it),
            // once it has stopped: a SIGCONT before its SIGSTOP would leave
            // it stopped for good.
            let deadline = Instant::now() + Duration::from_secs(30);
            let stopped = |pid: i32| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
                state.is_some_and(|s| s.starts_with('T'))
            };
            while !stopped(middle.pid()) {
                assert!(Instant::now() < deadline, "the middle never stopped");
                std::thread::yield_now();
            }
            middle.kill(Signal::CONT).unwrap();
            assert!(middle.wait().unwrap().success());
            assert_eq!(exit_status(pid, std::os::fd::AsFd::as_fd(&pidfd)), None);
        }
    }
}
