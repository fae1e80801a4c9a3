// An rwlock's write guard.
use ply_core::sync::RwLock;
static RW: RwLock<u64> = RwLock::new(0);
fn main() {
    let mut guard = RW.write();
    let _ = ply_os::fork::fork_child(move || { *guard += 1; 0 });
}
