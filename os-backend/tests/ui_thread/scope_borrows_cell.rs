// A scoped task may not borrow a `Cell` (not `Sync`) the scope's caller
// also uses.
use std::cell::Cell;

use ply_os::thread::ThreadPool;

fn main() {
    let pool = ThreadPool::new(1).unwrap();
    let counter = Cell::new(0);
    pool.scope(|s| {
        s.spawn(|| counter.set(1));
        counter.set(2);
    });
}
