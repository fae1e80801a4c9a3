//! A pool worker's loop: answer requests on its socket until the pool closes
//! it or the task limit is reached.
//!
//! A request is a [`RequestHead`] followed by its argument (both postcard):
//! for the pool's handler, or for a function named by an
//! [`Entry`](crate::process::wire::Entry) (`submit_fn`).

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::answer::{bad_request, refusal};
use crate::ipc::frame::{self, DEFAULT_MAX_FRAME};
use crate::ipc::ready::wait_readable;
use crate::process::panic;
use crate::process::supervisor::SPIN_BEFORE_SLEEP;
use crate::process::wire::{EXIT_SUPERVISOR_GONE, RequestHead};

/// What every worker of a pool is told.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkerLoop {
    /// Exit (to be replaced) after this many tasks.
    pub max_tasks: Option<u64>,
}

/// Answers requests on `stream` until the supervisor closes the connection
/// (exit 0), `max_tasks` are done (exit 0, recycled), or a reply cannot be
/// sent. `init` runs first; if it panics, every request is answered with
/// that panic instead of being run (the worker stays, so it is not
/// replaced over and over). `handler` answers the pool's own requests.
pub(crate) fn serve_requests(
    mut stream: UnixStream,
    config: WorkerLoop,
    init: Option<&dyn Fn()>,
    handler: &dyn Fn(&[u8]) -> Vec<u8>,
) -> i32 {
    let init_failed = init.and_then(|init| panic::in_worker("initializer", init).err());
    let mut done = 0u64;
    loop {
        if config.max_tasks.is_some_and(|max| done >= max) {
            return 0; // recycled: the pool forks a fresh worker
        }
        let spin_until = Instant::now() + SPIN_BEFORE_SLEEP;
        while Instant::now() < spin_until
            && !wait_readable(stream.as_fd(), Some(Duration::ZERO)).unwrap_or(true)
        {
            std::thread::yield_now();
        }
        let Ok(bytes) = frame::read_frame(&mut stream, DEFAULT_MAX_FRAME) else {
            return 0; // the pool closed the connection: shut down
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
        if frame::write_frame(&mut stream, &reply).is_err() {
            return EXIT_SUPERVISOR_GONE;
        }
    }
}
