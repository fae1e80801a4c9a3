// `map`'s inputs are copied into every worker too.
use ply_core::sync::SpinMutex;
fn main() {
    let counter = ply_os::shm::SharedBox::new(SpinMutex::new(0u64)).unwrap();
    let inputs = [std::cell::RefCell::new(Some(counter.lock()))];
    let _ = ply_os::process::map(&inputs, |slot| slot.borrow_mut().take().is_some(), &Default::default());
}
