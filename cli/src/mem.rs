//! Memory figures from `/proc`, in KiB.

/// A field of `/proc/<pid>/status` or `smaps_rollup` (`"VmRSS:"`, `"Pss:"`), in KiB.
fn proc_field_kib(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of a process (`VmRSS`): its private pages plus every shared
/// page it maps, counted in full.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field_kib(pid, "VmRSS:")
}

/// A field of `/proc/<pid>/status` (`"VmRSS:"`, `"VmHWM:"`), in KiB.
pub fn status_field_kib(pid: u32, field: &str) -> Option<u64> {
    proc_field_kib(&format!("/proc/{pid}/status"), field)
}

/// Proportional set size (`Pss`): private pages plus each shared page divided
/// by the number of processes sharing it — the fair cost of one forked child.
pub fn pss_kib(pid: u32) -> Option<u64> {
    proc_field_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}
