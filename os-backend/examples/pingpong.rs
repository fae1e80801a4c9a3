use std::time::Instant;
fn main() {
    let (a, b) = ply_os::ipc::duplex::<u64, u64>().unwrap();
    let mut a = Some(a);
    let child = ply_os::fork::fork_child(|| {
        drop(a.take());
        let mut b = b.reverse();
        while let Ok(x) = b.recv() {
            b.send(&(x + 1)).unwrap();
        }
        0
    })
    .unwrap();
    let mut a = a.unwrap();
    let n = 20000;
    let t = Instant::now();
    for i in 0..n {
        a.send(&i).unwrap();
        assert_eq!(a.recv().unwrap(), i + 1);
    }
    println!("pingpong {:?}", t.elapsed() / n as u32);
    drop(a);
    child.wait().unwrap();
}
