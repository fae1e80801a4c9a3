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

#[entry]
fn main() -> ! {
    // SAFETY: the only reference to QUEUE, taken once.
    let queue = unsafe { &mut *core::ptr::addr_of_mut!(QUEUE) };
    let (mut tx, mut rx) = queue.split();
    let mut sum = 0u32;
    loop {
        // Values the compiler cannot see, so nothing folds away.
        let v = unsafe { core::ptr::read_volatile(0x2000_0000 as *const u32) };
        let _ = tx.enqueue(v);
        if let Some(x) = rx.dequeue() {
            sum = sum.wrapping_add(x);
        }
        unsafe { core::ptr::write_volatile(0x2000_0004 as *mut u32, sum) };
    }
}
