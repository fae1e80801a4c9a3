// A spin-lock guard: the parent's copy would unlock while the child is inside.
use ply_core::sync::SpinMutex;
static SPIN: SpinMutex<u64> = SpinMutex::new(0);
fn main() {
    let mut guard = SPIN.lock();
    let _ = ply_os::fork::fork_child(move || { *guard += 1; 0 });
}
