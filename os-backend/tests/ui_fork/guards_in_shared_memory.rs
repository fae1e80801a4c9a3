// A claim cannot be put in shared memory either, where every process with
// the mapping would see it: guards and permits hold a reference, so they are
// not `ShmSafe`.
use ply_core::sync::{Semaphore, SpinMutex};
use ply_os::shm::SharedBox;
static SPIN: SpinMutex<u64> = SpinMutex::new(0);
static PERMITS: Semaphore = Semaphore::new(1);
fn main() {
    let _ = SharedBox::new(SPIN.lock());
    let _ = SharedBox::new(PERMITS.acquire());
    let _ = ply_os::ipc::SharedValue::new(SPIN.lock());
}
