//! # ply — parallel work in Rust
//!
//! The facade of the ply workspace: one dependency that re-exports
//!
//! - [`core`] (`ply-core`): the `no_std`, allocation-free scheduling core —
//!   lock-free queues, locks and signals, work partitioning;
//! - [`os`] (`ply-os`): the Linux backend — a thread pool; process
//!   parallelism (a fork-join `map`/`reduce` and a crash-proof `ProcessPool`);
//!   running external commands as whole process trees (`job`); IPC, shared
//!   memory, forked children, futex waiting, CPU pinning.
//!
//! # Example: a queue shared by a parent and a forked child
//!
//! ```
//! use ply::core::queue::spsc::Ring;
//! use ply::os::{fork, shm::SharedBox};
//!
//! let ring = SharedBox::new(Ring::<u64, 64>::new())?;
//! // SAFETY: the child uses only the producer, the parent only the consumer.
//! let (mut tx, mut rx) = unsafe { ring.split_unchecked() };
//! fork::scope(|s| {
//!     let child = s.fork_child(move || {
//!         for i in 0..1000 {
//!             while tx.push(i).is_err() {
//!                 std::hint::spin_loop();
//!             }
//!         }
//!         0
//!     })?;
//!     let mut sum = 0;
//!     for _ in 0..1000 {
//!         sum += loop {
//!             if let Some(v) = rx.pop() {
//!                 break v;
//!             }
//!         };
//!     }
//!     assert!(child.wait()?.success());
//!     assert_eq!(sum, 999 * 1000 / 2);
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]

pub use ply_core as core;
pub use ply_os as os;
