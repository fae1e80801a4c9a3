// A scoped task may not borrow a value that dies inside the scope.
use ply_os::thread::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1).unwrap();
    pool.scope(|s| {
        let local = vec![1, 2, 3];
        s.spawn(|| println!("{local:?}"));
    });
}
