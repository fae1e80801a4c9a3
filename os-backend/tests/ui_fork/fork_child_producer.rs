// An spmc ring's producer role: the parent's copy would give it back, and a second producer could push beside the child.
use ply_core::queue::spmc::Ring;
static RING: Ring<u64, 4> = Ring::new();
fn main() {
    let mut producer = RING.producer().unwrap();
    let _ = ply_os::fork::fork_child(move || producer.push(1).map_or(1, |()| 0));
}
