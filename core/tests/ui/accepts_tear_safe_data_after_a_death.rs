// After a holder's death, the recovery guard derefs to data of a `TearSafe`
// type: primitives, arrays and tuples of them, and structs declared
// `#[tear_safe]` in `shm_safe!`.
use ply_core::sync::{Liveness, RecoveryGuard, RobustGuard, SpinPark};

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

ply_core::shm_safe! {
    #[tear_safe]
    #[derive(Clone, Copy)]
    pub struct Account {
        pub balance: [i64; 2],
        pub open: bool,
        pub rate: f32,
    }
}

ply_core::shm_safe! {
    #[tear_safe]
    pub struct Pair(pub u8, pub (u16, core::sync::atomic::AtomicU32));
}

ply_core::shm_safe! {
    #[tear_safe]
    pub struct Nothing;
}

#[allow(dead_code)]
fn repair(
    mut g: RecoveryGuard<'_, Account, One, SpinPark>,
) -> RobustGuard<'_, Account, One, SpinPark> {
    g.balance[1] = 100 - g.balance[0];
    g.open = !g.open;
    RecoveryGuard::mark_consistent(g)
}

#[allow(dead_code)]
fn read(g: &RecoveryGuard<'_, (u64, [bool; 3], f64), One, SpinPark>) -> u64 {
    g.0 + u64::from(g.1[2])
}

fn main() {
    fn check<T: ply_core::TearSafe + ply_core::ShmSafe>() {}
    check::<Account>();
    check::<Pair>();
    check::<Nothing>();
}
