// A queue or lock moves its items between threads, so sharing one needs the
// items to be `Send`; `Rc` is not (its count is not atomic). Each line asks
// for what would let an `Rc` reach another thread.
use std::rc::Rc;

use ply_core::queue::mpmc::{ArrayQueue, ScqQueue};
use ply_core::queue::storage::Inline;
use ply_core::queue::{spmc, spsc};
use ply_core::sync::{RwLock, SpinMutex, TicketMutex};

fn sync<T: Sync>() {}
fn send<T: Send>() {}

fn main() {
    sync::<ArrayQueue<Rc<u8>, 2>>();
    sync::<ScqQueue<Rc<u8>, 2>>();
    sync::<spsc::Ring<Rc<u8>, 2>>();
    send::<spsc::Producer<'static, Inline<Rc<u8>, 2>>>();
    send::<spsc::Consumer<'static, Inline<Rc<u8>, 2>>>();
    sync::<spmc::Ring<Rc<u8>, 2>>();
    send::<spmc::Ring<Rc<u8>, 2>>();
    sync::<SpinMutex<Rc<u8>>>();
    sync::<TicketMutex<Rc<u8>>>();
    sync::<RwLock<Rc<u8>>>();
}
