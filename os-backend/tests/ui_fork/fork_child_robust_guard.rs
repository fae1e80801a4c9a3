// A robust lock's guard is a claim too: not `Send`.
use ply_core::sync::RobustMutex;
use ply_os::{liveness::ThreadLiveness, park::FutexPark, shm::SharedBox};
fn main() {
    let m = SharedBox::new(RobustMutex::new(0u64, ThreadLiveness, FutexPark)).unwrap();
    let m: &'static SharedBox<_> = Box::leak(Box::new(m));
    let mut guard = m.lock().unwrap();
    let _ = ply_os::fork::fork_child(move || { *guard += 1; 0 });
}
