// `process_queue` refuses every type that is not `ShmSafe`.
use ply_os::ipc::ProcessQueue;

/// `Copy`, so only the `ShmSafe` bound can refuse it: its `&'static str`
/// points into the memory of the process that made it.
#[derive(Clone, Copy)]
struct Named {
    _id: u32,
    _name: &'static str,
}

fn main() {
    let _ = ProcessQueue::<String, 4>::new();
    let _ = ProcessQueue::<Vec<u8>, 4>::new();
    let _ = ProcessQueue::<Box<u64>, 4>::new();
    let _ = ProcessQueue::<&'static u64, 4>::new();
    let _ = ProcessQueue::<&'static str, 4>::new();
    let _ = ProcessQueue::<*const u8, 4>::new();
    let _ = ProcessQueue::<*mut u8, 4>::new();
    let _ = ProcessQueue::<Named, 4>::new();
}
