// `map`: each worker has a copy of the closure; a guard taken out of it would be released by every worker.
use ply_core::sync::SpinMutex;
fn main() {
    let counter = ply_os::shm::SharedBox::new(SpinMutex::new(0u64)).unwrap();
    let slot = std::cell::RefCell::new(Some(counter.lock()));
    let _ = ply_os::process::map(&[1u8], |_| slot.borrow_mut().take().is_some(), &Default::default());
}
