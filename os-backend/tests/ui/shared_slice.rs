// `shared_slice` refuses every type that is not `ShmSafe`.
use ply_os::shm::SharedSlice;
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
    let _ = SharedSlice::new(2, |_| String::new()); // String
    let _ = SharedSlice::new(2, |_| vec![1u8]); // Vec
    let _ = SharedSlice::new(2, |_| Box::new(1u64)); // Box
    let _ = SharedSlice::new(2, |_| &LOCAL); // a reference
    let _ = SharedSlice::new(2, |_| "text"); // &'static str
    let _ = SharedSlice::new(2, |_| std::ptr::null::<u8>()); // a raw pointer
    let _ = SharedSlice::new(2, |_| std::ptr::null_mut::<u8>()); // a raw pointer
    let _ = SharedSlice::new(2, |_| Named { _id: 1, _name: "x" }); // a struct holding a &'static str
    let _ = SharedSlice::new(2, |_| SpinMutex::new(String::new())); // the lock is fine, the String is not
    let _ = SharedSlice::new(2, |_| Cell::new(0u32)); // `ShmSafe` but not `Sync`: processes would race on it
}
