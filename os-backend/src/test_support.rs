//! Helpers for the crate's own tests.

/// The state letter of process `pid` in `/proc/<pid>/stat` (`R`, `S`, `D`,
/// `T`, `Z`, …); `None` once it is gone (reaped).
pub(crate) fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may itself hold ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A child that parks for ever, and a sibling process that has seized it
/// with `PTRACE_SEIZE` and never waits for it: `(traced, tracer)`. Once
/// killed, the traced child is a zombie its tracer must wait for first, so
/// its parent (this process) cannot reap it until the tracer is gone — the
/// way a child in uninterruptible sleep cannot be reaped, without needing
/// one. Panics if the seize is refused (no ptrace rights).
#[cfg(not(loom))]
pub(crate) fn traced_by_a_sibling() -> (crate::fork::ForkedChild, crate::fork::ForkedChild) {
    use std::io::{Read, Write};

    let traced = crate::fork::fork_child(|| {
        loop {
            std::thread::park();
        }
    })
    .unwrap();
    let pid = traced.pid();
    let (mut here, mut there) = std::os::unix::net::UnixStream::pair().unwrap();
    let tracer = crate::fork::fork_child(move || {
        // SAFETY: PTRACE_SEIZE takes no pointers (address and data null);
        // `pid` is a live sibling, not reaped (its handle is held until this
        // answers).
        let seized = unsafe {
            libc::ptrace(
                libc::PTRACE_SEIZE,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                0,
            )
        };
        there.write_all(&[u8::from(seized == 0)]).unwrap();
        loop {
            std::thread::park(); // never waits for its tracee
        }
    })
    .unwrap();
    let mut seized = [0u8];
    here.read_exact(&mut seized).unwrap();
    assert_eq!(seized, [1], "PTRACE_SEIZE was refused");
    (traced, tracer)
}
