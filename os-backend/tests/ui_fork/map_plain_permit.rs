// `map_plain`.
use ply_core::sync::Semaphore;
fn main() {
    let permits = ply_os::shm::SharedBox::new(Semaphore::new(1)).unwrap();
    let permit = std::sync::Mutex::new(Some(permits.acquire()));
    let _ = ply_os::process::map_plain(&[1u8], |_| permit.lock().unwrap().take().is_some(), &Default::default());
}
