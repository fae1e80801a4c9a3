// A permit in a scope.
use ply_core::sync::Semaphore;
fn main() {
    let permits = ply_os::shm::SharedBox::new(Semaphore::new(1)).unwrap();
    ply_os::fork::scope(|s| {
        let permit = permits.acquire();
        let _ = s.fork_child(move || { let _held = &permit; 0 });
    });
}
