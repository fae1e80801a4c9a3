// `reduce`'s map closure.
use ply_core::sync::SpinMutex;
fn main() {
    let counter = ply_os::shm::SharedBox::new(SpinMutex::new(0u64)).unwrap();
    let held = std::cell::RefCell::new(Some(counter.lock()));
    let _ = ply_os::process::reduce(0..10, &Default::default(), 0u64, |i| { held.borrow_mut().take(); i as u64 }, |a, b| a + b);
}
