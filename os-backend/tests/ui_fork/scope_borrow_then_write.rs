// What a child borrows stays borrowed for the whole scope.
use ply_core::sync::SpinMutex;
fn main() {
    let counter = ply_os::shm::SharedBox::new(SpinMutex::new(0u64)).unwrap();
    let mut guard = counter.lock();
    ply_os::fork::scope(|s| {
        let count: &mut u64 = &mut guard;
        let _child = s.fork_child(move || { *count += 1; 0 });
        *guard += 1;
    });
}
