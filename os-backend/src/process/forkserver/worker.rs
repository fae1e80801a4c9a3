//! A pool worker's loop: answer requests on its socket until the pool closes
//! it or the task limit is reached.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ipc::frame::{self, DEFAULT_MAX_FRAME};
use crate::ipc::ready::wait_readable;
use crate::process::panic;
use crate::process::wire::{EXIT_SUPERVISOR_GONE, Reply};

/// How long a worker looks for the next request (yielding) before it sleeps
/// in `read`: a request that follows closely on the last reply is then
/// picked up without a wake-up, which on a VM costs tens of microseconds.
pub(crate) const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(200);

/// What every worker of a pool is told.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorkerLoop {
    /// Exit (to be replaced) after this many tasks.
    pub max_tasks: Option<u64>,
}

/// Answers requests on `stream` with `handler` until the supervisor closes
/// the connection (exit 0), `max_tasks` are done (exit 0, recycled), or a
/// reply cannot be sent.
pub(crate) fn serve_requests<Req, Resp>(
    handler: &dyn Fn(Req) -> Resp,
    mut stream: UnixStream,
    config: WorkerLoop,
) -> i32
where
    Req: DeserializeOwned,
    Resp: Serialize,
{
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
        let reply: Reply<Resp> = match frame::decode::<Req>(&bytes) {
            Ok(request) => match panic::in_worker(format_args!("task {done}"), || handler(request))
            {
                Ok(response) => Reply::Done(response),
                Err(message) => Reply::Panicked(message),
            },
            Err(e) => Reply::BadRequest(e.to_string()),
        };
        let encoded = frame::encode(&reply).or_else(|e| {
            frame::encode(&Reply::<Resp>::BadRequest(format!(
                "the response could not be encoded: {e}"
            )))
        });
        match encoded {
            Ok(bytes) if frame::write_frame(&mut stream, &bytes).is_ok() => {}
            _ => return EXIT_SUPERVISOR_GONE,
        }
    }
}
