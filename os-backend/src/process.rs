//! Process parallelism: a fork-join [`map`] and a persistent, crash-proof
//! [`ProcessPool`].
//!
//! Processes are for isolation: code that may crash, leak or hang, and limits
//! per worker. Python's process pools are the reference users know, and their
//! best-known failures are the ones fixed here:
//!
//! | Python | ply |
//! |---|---|
//! | `multiprocessing.Pool` hangs forever when a worker is killed | a dead worker's chunk is re-issued (or the call fails with the cause); never a hang |
//! | `ProcessPoolExecutor` breaks the whole pool (`BrokenProcessPool`) | only the task the worker held fails, with the signal or exit code; the worker is replaced |
//! | forking a process that has threads can deadlock the child | pool workers come from a fork server started by re-executing the program; the fork-join map takes the standard locks across its forks and detects a stall on any other |
//! | everything crosses a pipe pickled | `map`'s closure and inputs are shared copy-on-write; plain-data results come back through shared memory |
//!
//! # Shape
//!
//! | file | what it holds |
//! |---|---|
//! | `map.rs` | [`map`], [`map_plain`], [`reduce`] and [`MapOptions`] (the rounds are in `map/run.rs`) |
//! | `pool.rs` | [`ProcessPool`], [`ProcessPoolBuilder`], [`ProcessTask`] |
//! | `supervisor/` | the engine both use: one `poll` loop over workers' sockets and pidfds, deadlines, kills with reasons |
//! | `forkserver/` | the pool's fork server: re-executed from `/proc/self/exe`, or forked on request |
//! | `error.rs` | [`Failure`], [`MapError`], [`PoolTaskError`], [`ProcessPoolError`] |
//! | `wire.rs` | the messages between ply's processes, and its exit codes |
//! | `retry.rs`, `threads.rs` | [`Retry`] and [`ThreadPolicy`], shared by map and pool |
//!
//! # Fork-join map
//!
//! [`map`], [`map_plain`] and [`reduce`] fork `workers` children for one call.
//! The closure and the inputs are *not* serialized: `fork` gives each child the
//! parent's memory, copy-on-write. Children claim chunks from ply-core's
//! `ChunkDispenser` in shared memory and report each finished chunk on their
//! own socket (with the results, serialized, for [`map`]; results of
//! [`map_plain`] and [`reduce`] are written straight into shared memory). The
//! parent watches: a child that crashes has the chunk it held re-issued to a
//! fresh child, as [`Retry`] allows; a chunk that fails for good is an error
//! naming the items, the worker and the cause, with the results that did
//! complete. Results are only ever taken from chunks reported complete, so
//! nothing is silently dropped.
//!
//! [`map_plain`] returns its results where the workers wrote them, as
//! [`SharedResults`] (a `&[O]`), and recycles that mapping for the next call:
//! on a small VM the cost of a trivial map is page faults and page-table
//! work, not ply's bookkeeping, so the fast path is the one that touches
//! fewest fresh pages (see [`SharedResults`] and `BENCHMARKS.md`).
//!
//! # Fork safety
//!
//! `fork` copies only the calling thread. A lock another thread held at that
//! instant stays held in the child, with nobody to release it.
//!
//! - **[`ProcessPool`]** never forks the caller: [`ProcessPoolBuilder::build`]
//!   starts its fork server by re-executing the program (`/proc/self/exe`),
//!   which is intercepted before `main` and becomes a single-threaded server;
//!   every worker is forked from it. The handler is a `fn` (a closure that
//!   captures nothing), found again in the re-executed program by its offset
//!   in the binary. Capturing closures need the server forked from the caller
//!   instead: [`ProcessPoolBuilder::build_forking`], under the same
//!   [`ThreadPolicy`] as the map.
//! - **[`map`], [`map_plain`], [`reduce`]** must fork the caller: the closure
//!   and the inputs reach the workers that way. ply takes the process-wide
//!   locks of its own and of Rust's standard library (stdout's, stderr's)
//!   across the fork and releases them on both sides, as glibc does for its
//!   allocator, so a worker may always print and allocate, whatever other
//!   threads do. A lock of *the program's own* that another thread held at
//!   the fork cannot be repaired. [`MapOptions::threads`] sets the policy:
//!   by default ([`ThreadPolicy::Detect`]) a worker that sits blocked on a
//!   lock without progress for three seconds is killed and the call fails
//!   with [`Failure::Stalled`], which names the number of other threads;
//!   [`ThreadPolicy::Refuse`] refuses to fork when other threads exist;
//!   [`ThreadPolicy::Proceed`] does not watch.
//! - What the workers are given is `Send` (the map's closure and inputs, a
//!   forking pool's handler), and they never drop it: a lock guard or a
//!   permit cannot be copied into a worker and released there (see
//!   [`fork`](crate::fork#what-the-child-is-given)).
//! - A worker's panic is printed as the worker's (`ply: worker process <pid>
//!   (items a..b) panicked at ...`), not as the parent's `thread 'main'
//!   panicked`, and comes back in the error with the items.
//!
//! # No peer can stall the caller
//!
//! The parent's side of both APIs is one event loop (`supervisor/`): workers'
//! sockets are read and written without blocking, each into its own buffer,
//! memory following the bytes that arrive; deadlines are per task; exits are
//! seen through pidfds and reaped without blocking. A worker stopped in the
//! middle of a reply, a stopped fork server, or a worker dripping bytes delays
//! only its own work. A pool left without workers by a stopped (or hung)
//! fork server fails the tasks waiting for one with
//! [`PoolTaskError::NoWorker`] after a few seconds, never waits for the
//! server without a deadline. The pool's workers reach it over socket pairs made by
//! the fork server and passed to the supervisor (`SCM_RIGHTS`): there is no
//! listening socket another process could connect to.
//!
//! # Failures
//!
//! A worker's end is described by [`Failure`]: the signal with its name (and
//! "possibly out of memory" when the cgroup's OOM-kill counter moved), the exit
//! code, a panic's message, or — when ply killed the worker — why: a timeout,
//! a stall, a cancel, a corrupt message. Never a bare `SIGKILL` for a kill
//! ply decided.
//!
//! # Limits
//!
//! - Linux 5.3 or later (pidfds).
//! - A re-executed fork server runs before `main`: the program's `main` does
//!   not run in it, and neither does anything `main` sets up. The pool's
//!   handler and initializer must not rely on such state.

mod error;
mod forkserver;
mod map;
mod panic;
mod placement;
mod pool;
mod prefetch;
mod results;
mod retry;
mod supervisor;
mod threads;
mod wire;

pub use error::{Failure, MapError, PoolTaskError, ProcessPoolError};
pub use map::{MAX_MAP_WORKERS, MapOptions, map, map_plain, reduce};
pub use pool::{ProcessPool, ProcessPoolBuilder, ProcessTask};
pub use results::{RESULT_CACHE_LIMIT, SharedResults, clear_result_cache};
pub use retry::Retry;
pub use threads::ThreadPolicy;
