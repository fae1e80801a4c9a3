//! What crosses the sockets between ply's processes, and the exit codes its
//! own processes end with.
//!
//! Every message is a postcard-encoded value in a length-prefixed frame
//! ([`ipc::frame`](crate::ipc::frame)): the fork-join map's reports, the
//! pool's requests and replies, and the fork server's control messages alike.

use serde::{Deserialize, Serialize};

use crate::fork::ChildExit;

/// The fork server was sent a message it does not understand.
pub(crate) const EXIT_BAD_CONTROL: i32 = 2;
/// A re-executed fork server could not start (its bootstrap did not check out).
pub(crate) const EXIT_BAD_BOOTSTRAP: i32 = 3;
/// A pool worker could not send its reply: the supervisor is gone.
pub(crate) const EXIT_SUPERVISOR_GONE: i32 = 4;
// A worker whose closure panicked exits with `fork::EXIT_PANICKED` (101).

// ---- the fork-join map: worker -> parent ----

/// One finished (or failed) chunk, from a map worker.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct MapReport<R> {
    /// The chunk's index in the schedule.
    pub chunk: u32,
    pub result: ChunkResult<R>,
}

/// What became of a chunk.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum ChunkResult<R> {
    /// Done; `R` is what the map sends back (the results for `map`, nothing
    /// for `map_slice_plain` and `reduce`, whose results are in shared memory).
    Done(R),
    /// The closure panicked, with this message.
    Panicked(String),
}

// ---- the process pool: supervisor <-> fork server ----

/// A function of the program, named so that a re-executed copy of the same
/// binary finds it: its offset from an anchor function in ply, which moves
/// with the binary's load address.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The monomorphized trampoline that knows the request and response types.
    pub trampoline: i64,
    /// The user's function, called by the trampoline.
    pub function: i64,
    /// A hash of the trampoline's type parameters, checked before the call.
    pub types: u64,
}

/// Supervisor -> fork server.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum ToServer {
    /// The first message to a re-executed server: what its workers run.
    Setup(Setup),
    /// Fork a worker for `slot`, incarnation `generation`.
    Spawn { slot: u32, generation: u64 },
    /// Kill every worker, reap them, and exit (the supervisor has settled
    /// every task by then).
    Shutdown,
}

/// What a re-executed server's workers run.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Setup {
    pub handler: Entry,
    /// Run once in each worker before its first task.
    pub initializer: Option<Entry>,
    /// A worker exits after this many tasks.
    pub max_tasks: Option<u64>,
}

/// Fork server -> supervisor.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum FromServer {
    /// The server is up (and, re-executed, has checked its setup).
    Ready,
    /// A worker was forked. The message carries two descriptors: the
    /// worker's pidfd, and the supervisor's end of its socket pair.
    Spawned {
        slot: u32,
        generation: u64,
        pid: i32,
    },
    /// A fork failed (for example at the process limit).
    SpawnFailed {
        slot: u32,
        generation: u64,
        error: String,
    },
    /// A worker ended (and was reaped).
    Exited { pid: i32, exit: ChildExit },
    /// The setup could not be used (a re-executed server only).
    SetupFailed(String),
}

// ---- the process pool: supervisor <-> worker ----

/// What a request to a pool worker runs; its argument follows, encoded.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum RequestHead {
    /// The pool's handler.
    Handler,
    /// The function this entry names (`submit_fn`).
    Call(Entry),
}

/// A worker's answer to one request.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Reply<R> {
    Done(R),
    Panicked(String),
    BadRequest(String),
}
