// A forking pool's handler: each worker would unlock its copy.
use ply_core::sync::SpinMutex;
static SPIN: SpinMutex<u64> = SpinMutex::new(0);
fn main() {
    let slot = std::sync::Mutex::new(Some(SPIN.lock()));
    let _ = ply_os::process::ProcessPoolBuilder::new().build_forking(move |x: u64| {
        slot.lock().unwrap().take();
        x
    });
}
