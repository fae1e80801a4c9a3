// A guard behind a process-local lock: still not `Send`.
use ply_core::sync::SpinMutex;
static SPIN: SpinMutex<u64> = SpinMutex::new(0);
fn main() {
    let slot = std::sync::Mutex::new(Some(SPIN.lock()));
    let _ = ply_os::fork::fork_child(move || { slot.lock().unwrap().take(); 0 });
}
