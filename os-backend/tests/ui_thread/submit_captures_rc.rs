// `submit` refuses a closure that captures an `Rc` (not `Send`).
use std::rc::Rc;

use ply_os::thread::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1).unwrap();
    let shared = Rc::new(1);
    let _ = pool.submit(move || *shared);
}
