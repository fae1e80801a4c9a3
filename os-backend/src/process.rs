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
//! | forking a process that has threads can deadlock the child | pool workers come from a single-threaded fork server |
//! | everything crosses a pipe pickled | `map`'s closure and inputs are shared copy-on-write; plain-data results come back through shared memory |
//!
//! # Fork-join map
//!
//! [`map`], [`map_plain`] and [`reduce`] fork `workers` children for one call.
//! The closure and the inputs are *not* serialized: `fork` gives each child the
//! parent's memory, copy-on-write. Children claim chunks from ply-core's
//! `ChunkDispenser` in shared memory and report each finished chunk on their
//! own socket (with the results, serialized, for [`map`]; results of
//! [`map_plain`] and [`reduce`] are written straight into shared memory). The
//! parent watches: a child that dies has the chunk it held re-issued to a
//! fresh child, up to [`OnCrash::Retry`]'s attempts; a chunk that finishes
//! nowhere is an error naming the items and the cause. Results are only ever
//! taken from chunks reported complete, so nothing is silently dropped.
//!
//! [`map_plain`] returns its results where the workers wrote them, as
//! [`SharedResults`] (a `&[O]`), and recycles that mapping for the next call:
//! on a small VM the cost of a trivial map is page faults and page-table
//! work, not ply's bookkeeping, so the fast path is the one that touches
//! fewest fresh pages (see [`SharedResults`] and `BENCHMARKS.md`).
//!
//! # Failures
//!
//! A worker's end is described by [`Failure`]: the signal with its name (and
//! "possibly out of memory" when the cgroup's OOM-kill counter moved), the exit
//! code, a panic's message, or a timeout.

mod failure;
mod map;
mod placement;
mod pool;
mod prefetch;
mod results;
mod server;

pub use failure::Failure;
pub use map::{MAX_MAP_WORKERS, MapError, MapOptions, OnCrash, map, map_plain, reduce};
pub use pool::{PoolTaskError, ProcessPool, ProcessPoolBuilder, ProcessPoolError, ProcessTask};
pub use results::{RESULT_CACHE_LIMIT, SharedResults, clear_result_cache};
