// `shared_array` refuses every type that is not `ShmSafe`.
use ply_os::ipc::SharedArray;

/// `Copy`, so only the `ShmSafe` bound can refuse it: its `&'static str`
/// points into the memory of the process that made it.
#[derive(Clone, Copy)]
struct Named {
    _id: u32,
    _name: &'static str,
}

static LOCAL: u64 = 7;

fn main() {
    let _ = SharedArray::new(2, String::new()); // String
    let _ = SharedArray::new(2, vec![1u8]); // Vec
    let _ = SharedArray::new(2, Box::new(1u64)); // Box
    let _ = SharedArray::new(2, &LOCAL); // a reference
    let _ = SharedArray::new(2, "text"); // &'static str
    let _ = SharedArray::new(2, std::ptr::null::<u8>()); // a raw pointer
    let _ = SharedArray::new(2, std::ptr::null_mut::<u8>()); // a raw pointer
    let _ = SharedArray::new(2, Named { _id: 1, _name: "x" }); // a struct holding a &'static str
}
