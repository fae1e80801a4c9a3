// Every type here points into one process's memory, owns heap memory, or
// holds something that does: none may be placed in shared memory.
use std::sync::atomic::AtomicPtr;

use ply_core::queue::mpmc::ScqQueue;
use ply_core::sync::{Lazy, SpinMutex};
use ply_core::ShmSafe;

fn shm_safe<T: ShmSafe>() {}

struct Named {
    _id: u32,
    _name: String,
}

fn main() {
    shm_safe::<String>();
    shm_safe::<Vec<u64>>();
    shm_safe::<Box<u64>>();
    shm_safe::<&'static u64>();
    shm_safe::<&'static str>();
    shm_safe::<*const u8>();
    shm_safe::<*mut u8>();
    shm_safe::<AtomicPtr<u8>>();
    shm_safe::<fn() -> u32>();
    shm_safe::<Named>(); // a struct that holds a `String`
    shm_safe::<(u32, &'static str)>();
    shm_safe::<[Box<u8>; 2]>();
    shm_safe::<Option<&'static u8>>();
    shm_safe::<SpinMutex<String>>();
    shm_safe::<ScqQueue<Vec<u8>, 4>>();
    shm_safe::<Lazy<u32>>(); // holds its initializer, a function pointer
}
