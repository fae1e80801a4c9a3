// The impls ply-core gives, and every shape `shm_safe!` accepts.
use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use crossbeam_utils::CachePadded;
use ply_core::partition::{ChunkDispenser, Fixed};
use ply_core::queue::{mpmc, spmc, spsc};
use ply_core::sync::{Barrier, Event, Once, RwLock, Semaphore, SpinMutex, TicketMutex};
use ply_core::ShmSafe;

fn shm_safe<T: ShmSafe>() {}

ply_core::shm_safe! {
    /// Named fields, attributes and doc comments.
    #[derive(Debug, Default)]
    #[repr(C)]
    pub struct Counters {
        /// Items done.
        pub done: AtomicU64,
        failed: AtomicBool,
    }
}

ply_core::shm_safe! {
    #[derive(Clone, Copy)]
    pub struct Pair(pub u32, f64,);
}

ply_core::shm_safe! {
    #[derive(Clone, Copy)]
    #[repr(align(64))]
    pub struct Marker;
}

ply_core::shm_safe! {
    #[derive(Clone, Copy)]
    #[repr(u8)]
    pub enum Reply {
        Idle = 0,
        Done { item: u32, value: f64 },
        Failed(i32, char),
    }
}

fn main() {
    shm_safe::<(u8, bool, char, f32, i128, ())>();
    shm_safe::<[[AtomicUsize; 4]; 2]>();
    shm_safe::<Option<std::num::NonZeroU32>>();
    shm_safe::<(Cell<u32>, UnsafeCell<u64>, MaybeUninit<[u8; 3]>)>();
    shm_safe::<CachePadded<AtomicU64>>();
    shm_safe::<SpinMutex<Counters>>();
    shm_safe::<TicketMutex<[Pair; 8]>>();
    shm_safe::<RwLock<(u64, u64)>>();
    shm_safe::<(Semaphore, Event, Barrier, Once<Reply>)>();
    shm_safe::<spsc::Ring<Reply, 16>>();
    shm_safe::<spmc::Ring<u64, 16>>();
    shm_safe::<mpmc::ArrayQueue<Marker, 16>>();
    shm_safe::<mpmc::ScqQueue<Pair, 16>>();
    shm_safe::<(ChunkDispenser<4>, Fixed)>();
    shm_safe::<Counters>();
}
