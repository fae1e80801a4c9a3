// `fork_duplex`'s closure.
use ply_core::sync::SpinMutex;
static SPIN: SpinMutex<u64> = SpinMutex::new(0);
fn main() {
    let mut guard = SPIN.lock();
    let _ = ply_os::ipc::fork_duplex::<u8, u8, _>(move |_end| { *guard += 1; 0 });
}
