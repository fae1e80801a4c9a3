//! The firmware of `size_ply.rs` with heapless's `spsc::Queue` instead of
//! ply-core's ring. `cargo build --profile size --bin size_heapless`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use heapless::spsc::Queue;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

// Capacity 16 holds 15 items in heapless (one slot stays empty).
static mut QUEUE: Queue<u32, 16> = Queue::new();

/// Read and written with volatile accesses, so the loop cannot fold away.
static mut INPUT: u32 = 0;
static mut OUTPUT: u32 = 0;

#[entry]
fn main() -> ! {
    // SAFETY: the only reference to QUEUE, taken once.
    let queue = unsafe { &mut *core::ptr::addr_of_mut!(QUEUE) };
    let (mut tx, mut rx) = queue.split();
    let mut sum = 0u32;
    loop {
        // Values the compiler cannot see, so nothing folds away.
        // SAFETY: INPUT is a plain `u32` static that nothing references; a
        // volatile read of it is always valid.
        let v = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(INPUT)) };
        let _ = tx.enqueue(v);
        if let Some(x) = rx.dequeue() {
            sum = sum.wrapping_add(x);
        }
        // SAFETY: OUTPUT is a plain `u32` static that nothing references; a
        // volatile write to it is always valid (single-threaded firmware).
        unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!(OUTPUT), sum) };
    }
}
