// `shared_value` refuses every type that is not `ShmSafe`.
use ply_os::ipc::SharedValue;

/// `Copy`, so only the `ShmSafe` bound can refuse it: its `&'static str`
/// points into the memory of the process that made it.
#[derive(Clone, Copy)]
struct Named {
    _id: u32,
    _name: &'static str,
}

static LOCAL: u64 = 7;

fn main() {
    let _ = SharedValue::new(String::new()); // String
    let _ = SharedValue::new(vec![1u8]); // Vec
    let _ = SharedValue::new(Box::new(1u64)); // Box
    let _ = SharedValue::new(&LOCAL); // a reference
    let _ = SharedValue::new("text"); // &'static str
    let _ = SharedValue::new(std::ptr::null::<u8>()); // a raw pointer
    let _ = SharedValue::new(std::ptr::null_mut::<u8>()); // a raw pointer
    let _ = SharedValue::new(Named { _id: 1, _name: "x" }); // a struct holding a &'static str
}
