// `SharedArray`'s guard (on the robust lock) cannot go to a scoped child.
fn main() {
    let array = ply_os::ipc::SharedArray::new(4, 0u32).unwrap();
    ply_os::fork::scope(|s| {
        let mut bins = array.lock().unwrap();
        let _ = s.fork_child(move || { bins[0] += 1; 0 });
    });
}
