//! Helpers for the crate's own tests.

/// The state letter of process `pid` in `/proc/<pid>/stat` (`R`, `S`, `D`,
/// `T`, `Z`, …); `None` once it is gone (reaped).
pub(crate) fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may itself hold ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}
