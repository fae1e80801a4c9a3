// A lock is released by the thread that took it (the robust lock records its
// holder's thread; the others follow `lock_api`'s `GuardNoSend`), and a
// producer of an SPMC ring is unique by a flag it clears on its own thread.
// None of these may be sent to another thread.
use ply_core::queue::spmc;
use ply_core::sync::{
    Liveness, RecoveryGuard, RobustGuard, RwLockReadGuard, RwLockWriteGuard, SpinMutexGuard, SpinPark,
    TicketMutexGuard,
};

struct One;
// SAFETY: one owner that never dies.
unsafe impl Liveness for One {
    fn current(&self) -> u32 {
        1
    }
    fn is_alive(&self, _: u32) -> bool {
        true
    }
}

fn send<T: Send>() {}

fn main() {
    send::<SpinMutexGuard<'static, u8>>();
    send::<TicketMutexGuard<'static, u8>>();
    send::<RwLockReadGuard<'static, u8>>();
    send::<RwLockWriteGuard<'static, u8>>();
    send::<RobustGuard<'static, u8, One, SpinPark>>();
    send::<RecoveryGuard<'static, u8, One, SpinPark>>();
    send::<spmc::Producer<'static, u8, 4>>();
}
