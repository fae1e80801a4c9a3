// An rwlock's read guard: the parent's copy would let a writer in.
use ply_core::sync::RwLock;
static RW: RwLock<u64> = RwLock::new(0);
fn main() {
    let guard = RW.read();
    let _ = ply_os::fork::fork_child(move || *guard as i32);
}
