//! A minimal firmware with one SPSC ring (ply-core), for the code-size
//! comparison with `size_heapless.rs`: the same program with heapless's
//! `spsc::Queue`. `cargo build --profile size --bin size_ply`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use ply_core::queue::spsc::Ring;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

static mut RING: Ring<u32, 16> = Ring::new();

#[entry]
fn main() -> ! {
    // SAFETY: the only reference to RING, taken once.
    let ring = unsafe { &mut *core::ptr::addr_of_mut!(RING) };
    let (mut tx, mut rx) = ring.split();
    let mut sum = 0u32;
    loop {
        // Values the compiler cannot see, so nothing folds away.
        let v = unsafe { core::ptr::read_volatile(0x2000_0000 as *const u32) };
        let _ = tx.push(v);
        if let Some(x) = rx.pop() {
            sum = sum.wrapping_add(x);
        }
        unsafe { core::ptr::write_volatile(0x2000_0004 as *mut u32, sum) };
    }
}
