//! The engine of the thread pool: the [`registry`] of queues and worker
//! threads (with the worker loop and stealing), how idle workers [`sleep`],
//! and the asymmetric fences both use ([`barrier`]). The public API in
//! `pool.rs`, `scope.rs`, `iter.rs` and `parallel.rs` is written on top of
//! [`Registry`]; nothing here knows about
//! task handles, scopes or iterators: it runs [`Job`](super::job::Job)s.
//!
//! The atomics go through [`primitive`], a facade that is loom's under
//! `--cfg loom`; [`loom_models`] model-checks the sleep/wake protocol and
//! closing racing submission (run: `RUSTFLAGS="--cfg loom" cargo test -p
//! ply-os --release --lib loom`).

mod barrier;
#[cfg(not(loom))]
pub(crate) mod forks;
pub(crate) mod primitive;
mod registry;
mod sleep;

#[cfg(all(test, loom))]
mod loom_models;

pub use registry::MAX_QUEUE_BOUND;
pub(crate) use registry::{
    Admission, NotPushed, Registry, StartFailure, WorkerConfig, help_own_pool,
};
