// `submit` refuses a result that is an `Rc`: the handle would move it to
// the joining thread.
use std::rc::Rc;

use ply_os::thread::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1).unwrap();
    let _ = pool.submit(|| Rc::new(1));
}
