// `map_slice_plain` refuses every type that is not `ShmSafe`.
use ply_os::process::{MapOptions, map_slice_plain};

/// `Copy`, so only the `ShmSafe` bound can refuse it: its `&'static str`
/// points into the memory of the process that made it.
#[derive(Clone, Copy)]
struct Named {
    _id: u32,
    _name: &'static str,
}

static LOCAL: u64 = 7;

fn main() {
    let _ = map_slice_plain(&[1u8, 2], |_| String::new(), &MapOptions::new()); // String
    let _ = map_slice_plain(&[1u8, 2], |_| vec![1u8], &MapOptions::new()); // Vec
    let _ = map_slice_plain(&[1u8, 2], |_| Box::new(1u64), &MapOptions::new()); // Box
    let _ = map_slice_plain(&[1u8, 2], |_| &LOCAL, &MapOptions::new()); // a reference
    let _ = map_slice_plain(&[1u8, 2], |_| "text", &MapOptions::new()); // &'static str
    let _ = map_slice_plain(&[1u8, 2], |_| std::ptr::null::<u8>(), &MapOptions::new()); // a raw pointer
    let _ = map_slice_plain(&[1u8, 2], |_| std::ptr::null_mut::<u8>(), &MapOptions::new()); // a raw pointer
    let _ = map_slice_plain(&[1u8, 2], |_| Named { _id: 1, _name: "x" }, &MapOptions::new()); // a struct holding a &'static str
}
