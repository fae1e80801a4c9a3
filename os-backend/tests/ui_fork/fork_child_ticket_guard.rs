// A ticket-lock guard.
use ply_core::sync::TicketMutex;
static TICKET: TicketMutex<u64> = TicketMutex::new(0);
fn main() {
    let mut guard = TICKET.lock();
    let _ = ply_os::fork::fork_child(move || { *guard += 1; 0 });
}
