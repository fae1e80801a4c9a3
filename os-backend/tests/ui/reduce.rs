// `reduce` refuses every type that is not `ShmSafe`.
use ply_os::process::{MapOptions, reduce};

/// `Copy`, so only the `ShmSafe` bound can refuse it: its `&'static str`
/// points into the memory of the process that made it.
#[derive(Clone, Copy)]
struct Named {
    _id: u32,
    _name: &'static str,
}

static LOCAL: u64 = 7;

fn main() {
    let _ = reduce(0..2, || String::new(), |_| String::new(), |a, _| a, &MapOptions::new()); // String
    let _ = reduce(0..2, || vec![1u8], |_| vec![1u8], |a, _| a, &MapOptions::new()); // Vec
    let _ = reduce(0..2, || Box::new(1u64), |_| Box::new(1u64), |a, _| a, &MapOptions::new()); // Box
    let _ = reduce(0..2, || &LOCAL, |_| &LOCAL, |a, _| a, &MapOptions::new()); // a reference
    let _ = reduce(0..2, || "text", |_| "text", |a, _| a, &MapOptions::new()); // &'static str
    let _ = reduce(0..2, || std::ptr::null::<u8>(), |_| std::ptr::null::<u8>(), |a, _| a, &MapOptions::new()); // a raw pointer
    let _ = reduce(0..2, || std::ptr::null_mut::<u8>(), |_| std::ptr::null_mut::<u8>(), |a, _| a, &MapOptions::new()); // a raw pointer
    let _ = reduce(0..2, || Named { _id: 1, _name: "x" }, |_| Named { _id: 1, _name: "x" }, |a, _| a, &MapOptions::new()); // a struct holding a &'static str
}
