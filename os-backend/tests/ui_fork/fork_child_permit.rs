// A semaphore permit: released twice, by each copy.
use ply_core::sync::Semaphore;
static PERMITS: Semaphore = Semaphore::new(1);
fn main() {
    let permit = PERMITS.acquire();
    let _ = ply_os::fork::fork_child(move || { let _held = &permit; 0 });
}
