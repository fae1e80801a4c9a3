// A borrow that outlives the call: the parent could write through its guard what the child reads.
use ply_core::sync::SpinMutex;
static SPIN: SpinMutex<u64> = SpinMutex::new(0);
fn main() {
    let mut guard = SPIN.lock();
    let count: &mut u64 = &mut guard;
    let _ = ply_os::fork::fork_child(move || { *count += 1; 0 });
    *guard += 1;
}
