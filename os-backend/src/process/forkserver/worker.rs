//! A pool worker's loop: answer requests from its channel until the pool closes
//! it or the task limit is reached.
//!
//! A request is a [`RequestHead`] followed by its argument (both postcard):
//! for the pool's handler, or for a function named by an
//! [`Entry`](crate::process::wire::Entry) (`submit_fn`).

use std::os::unix::net::UnixStream;

use super::answer::{bad_request, refusal};
use crate::ipc::frame::{self, DEFAULT_MAX_FRAME};
use crate::process::panic;
use crate::process::pool::shm_channel::{ShmChannel, VIA_SOCKET};
use crate::process::wire::{EXIT_SUPERVISOR_GONE, RequestHead};

/// What every worker of a pool is told.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkerLoop {
    /// Exit (to be replaced) after this many tasks.
    pub max_tasks: Option<u64>,
}

/// Answers requests announced in `channel` (their bytes there, or on
/// `stream` when too large) until the pool closes `stream` (exit 0),
/// `max_tasks` are done (exit 0, recycled), or a reply cannot be sent.
/// `init` runs first; if it panics, every request is answered with that
/// panic instead of being run (the worker stays, so it is not replaced over
/// and over). `handler` answers the pool's own requests. The protocol is in
/// `pool/shm_channel.rs`.
pub(crate) fn serve_requests(
    mut stream: UnixStream,
    channel: &ShmChannel,
    config: WorkerLoop,
    init: Option<&dyn Fn()>,
    handler: &dyn Fn(&[u8]) -> Vec<u8>,
) -> i32 {
    let init_failed = init.and_then(|init| panic::in_worker("initializer", init).err());
    let mut done = 0u64;
    let mut last = 0u32;
    loop {
        if config.max_tasks.is_some_and(|max| done >= max) {
            return 0; // recycled: the pool forks a fresh worker
        }
        let Some(request) = channel.wait_request(last, &stream) else {
            return 0; // the pool closed the connection: shut down
        };
        let (seq, len) = (request.seq, request.len);
        last = seq;
        let bytes = if len == VIA_SOCKET {
            match frame::read_frame(&mut stream, DEFAULT_MAX_FRAME) {
                Ok(bytes) => bytes,
                Err(_) => return 0,
            }
        } else {
            channel.request(len)
        };
        done += 1;
        let reply = match (
            &init_failed,
            postcard::take_from_bytes::<RequestHead>(&bytes),
        ) {
            (Some(why), _) => refusal(format!("the worker's initializer panicked: {why}")),
            (None, Ok((RequestHead::Handler, args))) => handler(args),
            (None, Ok((RequestHead::Call(entry), args))) => match entry.resolve() {
                Ok(function) => function.call(args),
                Err(why) => bad_request(why),
            },
            (None, Err(e)) => bad_request(format!("a request that did not decode: {e}")),
        };
        if config.max_tasks.is_some_and(|max| done >= max) {
            channel.retire(); // before the reply: no request is sent after it
        }
        let sent = match channel.send_reply(seq, &reply) {
            // Woken, and ran before its joiner named itself: look again.
            Some(true) if request.said_asleep && named_after_yield(channel, seq) => Ok(()),
            // Nobody spins on the reply: ring the supervisor (an empty frame).
            Some(true) => frame::write_frame(&mut stream, &[]),
            Some(false) => {
                if request.said_asleep {
                    // Woken by the pool, so its joiner yield-spins, likely
                    // on this CPU: let it run now (`shm_channel.rs`, 3).
                    std::thread::yield_now();
                }
                Ok(())
            }
            None => frame::write_frame(&mut stream, &reply),
        };
        if sent.is_err() {
            return EXIT_SUPERVISOR_GONE;
        }
    }
}

/// The second look of a woken worker before it rings (`shm_channel.rs`,
/// 3): the kernel often runs it on its waker's CPU before the submitter
/// reaches `join`, so it lets the submitter run, then looks whether a
/// joiner names request `seq` now.
fn named_after_yield(channel: &ShmChannel, seq: u32) -> bool {
    std::thread::yield_now();
    channel.joiner_named(seq)
}
