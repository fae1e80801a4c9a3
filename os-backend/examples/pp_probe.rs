use std::time::Instant;
fn main() {
    let t = Instant::now();
    let pool = ply_os::process::ProcessPoolBuilder::new()
        .workers(2)
        .build(|x: u64| x + 1)
        .unwrap();
    println!("build {:?}", t.elapsed());
    let t = Instant::now();
    assert_eq!(pool.submit(&1).unwrap().join().unwrap(), 2);
    println!("first {:?}", t.elapsed());
    let t = Instant::now();
    for i in 0..2000u64 {
        assert_eq!(pool.submit(&i).unwrap().join().unwrap(), i + 1);
    }
    println!("round trip {:?}/task", t.elapsed() / 2000);
    let t = Instant::now();
    let v: Vec<u64> = pool.map(0..20000u64).map(Result::unwrap).collect();
    assert_eq!(v.len(), 20000);
    println!("map {:?}/task", t.elapsed() / 20000);
    let t = Instant::now();
    drop(pool);
    println!("drop {:?}", t.elapsed());
}
