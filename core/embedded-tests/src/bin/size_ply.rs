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

/// Read and written with volatile accesses, so the loop cannot fold away.
static mut INPUT: u32 = 0;
static mut OUTPUT: u32 = 0;

#[entry]
fn main() -> ! {
    // SAFETY: the only reference to RING, taken once.
    let ring = unsafe { &mut *core::ptr::addr_of_mut!(RING) };
    let (mut tx, mut rx) = ring.split();
    let mut sum = 0u32;
    loop {
        // Values the compiler cannot see, so nothing folds away.
        // SAFETY: INPUT is a plain `u32` static that nothing references; a
        // volatile read of it is always valid.
        let v = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(INPUT)) };
        let _ = tx.push(v);
        if let Some(x) = rx.pop() {
            sum = sum.wrapping_add(x);
        }
        // SAFETY: OUTPUT is a plain `u32` static that nothing references; a
        // volatile write to it is always valid (single-threaded firmware).
        unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!(OUTPUT), sum) };
    }
}
