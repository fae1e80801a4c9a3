// `for_each` refuses items that are not `Sync`: several workers see them.
use std::cell::Cell;

use ply_os::thread::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1).unwrap();
    let cells = [Cell::new(0), Cell::new(0)];
    pool.for_each(&cells, |c| c.set(c.get() + 1));
}
