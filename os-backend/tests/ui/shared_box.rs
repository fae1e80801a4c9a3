// `shared_box` refuses every type that is not `ShmSafe`.
use ply_os::shm::SharedBox;
use ply_core::sync::SpinMutex;
use std::cell::Cell;

/// `Copy`, so only the `ShmSafe` bound can refuse it: its `&'static str`
/// points into the memory of the process that made it.
#[derive(Clone, Copy)]
struct Named {
    _id: u32,
    _name: &'static str,
}

static LOCAL: u64 = 7;

fn main() {
    let _ = SharedBox::new(String::new()); // String
    let _ = SharedBox::new(vec![1u8]); // Vec
    let _ = SharedBox::new(Box::new(1u64)); // Box
    let _ = SharedBox::new(&LOCAL); // a reference
    let _ = SharedBox::new("text"); // &'static str
    let _ = SharedBox::new(std::ptr::null::<u8>()); // a raw pointer
    let _ = SharedBox::new(std::ptr::null_mut::<u8>()); // a raw pointer
    let _ = SharedBox::new(Named { _id: 1, _name: "x" }); // a struct holding a &'static str
    let _ = SharedBox::new(SpinMutex::new(String::new())); // the lock is fine, the String is not
    let _ = SharedBox::new(Cell::new(0u32)); // `ShmSafe` but not `Sync`: processes would race on it
}
