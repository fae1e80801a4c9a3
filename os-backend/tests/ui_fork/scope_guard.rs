// In a scope, borrows are fine but claims are not.
use ply_core::sync::SpinMutex;
fn main() {
    let counter = ply_os::shm::SharedBox::new(SpinMutex::new(0u64)).unwrap();
    ply_os::fork::scope(|s| {
        let mut guard = counter.lock();
        let _ = s.fork_child(move || { *guard += 1; 0 });
    });
}
