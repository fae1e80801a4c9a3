// After a holder's death the data may be torn (the holder was killed between
// two stores of one value). A `char`, or an enum with fields, may then be no
// valid value: the recovery guard must not deref to it, nor mark it
// consistent (which would hand it out through the next ordinary guard). Only
// `reset` (overwrite without reading) is offered.
use ply_core::sync::{Liveness, RecoveryGuard, SpinPark};

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

#[allow(dead_code)]
enum Job {
    Idle,
    Running { id: u32, progress: f32 },
}

fn read_char(g: RecoveryGuard<'_, char, One, SpinPark>) -> char {
    *g
}

fn write_job(mut g: RecoveryGuard<'_, Job, One, SpinPark>) {
    *g = Job::Idle;
}

fn accept_option(g: RecoveryGuard<'_, Option<core::num::NonZeroU32>, One, SpinPark>) {
    let _ = RecoveryGuard::mark_consistent(g);
}

fn main() {}
