//! Locks and signals: `no_std`, `const fn new()`, and shared-memory safe.
//!
//! | type | what | where it comes from |
//! |---|---|---|
//! | [`SpinMutex`] | test-and-test-and-set spin lock with graded backoff | written here: `spin::Mutex` has no growing backoff, and contended cores trade the line on every retry |
//! | [`TicketMutex`] | FIFO-fair spin lock | written here: graded waiting (the next in line polls, the rest back off and yield where there is an OS) and a bounded form that never abandons a ticket |
//! | [`RwLock`] | writer-preferring reader-writer spin lock | written here: `spin::RwLock` lets a stream of readers starve writers |
//! | [`RobustMutex`] | a lock whose holder may die (another process): the next `lock` says so, and the data can be repaired | written here, in the spirit of `pthread` robust mutexes; holder identity and liveness through the [`Liveness`] seam |
//! | [`Semaphore`], [`Permit`] | counting semaphore, RAII permit | written here (spin has none); waits through an [`EventCount`] |
//! | [`EventCount`] | sleep until a condition may have changed, without a lost wake-up: ply's one sleeping protocol | written here, after Vyukov's eventcount and folly's `EventCount`; waits through [`Park`] |
//! | [`Event`] | settable flag with waiting | written here; waits through [`Park`] |
//! | [`Barrier`] | reusable `n`-party barrier | written here, because it waits through [`Park`] (spin's spins only) |
//! | [`Once`], [`Lazy`] | one-time initialization | **taken from `spin`**, re-exported as is |
//! | guards | `MutexGuard`, `RwLockReadGuard`, … | **`lock_api`**: ply writes only the raw locks, as parking_lot does |
//!
//! # Waiting
//!
//! The locks spin: they are for short critical sections and need no OS. The
//! signals ([`Semaphore`], [`Event`], [`Barrier`]) wait through the [`Park`]
//! trait — [`SpinPark`] by default, a futex (sleeping in the kernel, also between
//! processes) with ply-os. Every blocking operation has a bounded form taking a
//! [`Patience`] ([`Spins`], a [`Deadline`] check, ply-os's clock-aware `Until`):
//! `lock_with`, `acquire_with`, `wait_with`, `read_with`/`write_with`, so code
//! can give up instead of deadlocking. The bounded forms honour the patience on
//! every park, not only between parks: each park is given the
//! [`Timeout`] the patience allows (see [`Park`]).
//!
//! # A panic while holding a lock
//!
//! Nothing here poisons (as with `lock_api`'s and `spin`'s locks, unlike
//! `std::sync::Mutex`): a guard dropped while a panic unwinds unlocks, and the
//! next holder sees the data as the panic left it, with no error. Keep the
//! data consistent at every point a critical section can panic, or catch the
//! panic and repair it before the guard goes. A [`RobustMutex`] reports the
//! *death* of a holder, not a panic: a holder that panics unlocks normally. A
//! [`Permit`] dropped by a panic gives its permit back. ([`Once`] does poison:
//! after its initializer panics, every later call panics, as in `spin`.)
//!
//! # Across processes
//!
//! Every type here is a few atomic words with no pointers, so it works in memory
//! shared between processes (`mmap(MAP_SHARED)` before `fork()`) exactly as
//! between threads. A process can die, or be stopped, anywhere inside them:
//!
//! - a *waiter* that dies costs the others at most a bounded delay: a
//!   [`TicketMutex`] revokes its turn, an [`RwLock`] expires its announcement;
//!   [`Semaphore`], [`Event`] and [`EventCount`] never wait for a waiter (a
//!   [`Barrier`] party that dies *before arriving* does stop its round: use
//!   [`Barrier::wait_with`]);
//! - a *holder* that dies leaves [`SpinMutex`], [`TicketMutex`] and [`RwLock`]
//!   held for good (the bounded forms let the others notice and give up);
//!   [`RobustMutex`] detects it through the [`Liveness`] seam and lets the next
//!   holder repair the data;
//! - a semaphore permit held by a process that dies is not given back.
//!
//! (`Lazy` holds its initializer function: it is process-local unless forced
//! before the fork.)

mod barrier;
mod event;
mod event_count;
mod liveness;
mod lock_with;
mod park;
pub(crate) mod patience;
mod robust_mutex;
mod rwlock;
mod semaphore;
mod spin_mutex;
mod ticket_mutex;

pub use barrier::{Barrier, BarrierWaitResult};
pub use event::Event;
pub use event_count::{EventCount, WaitKey};
pub use liveness::Liveness;
pub use lock_with::{LockWith, RwLockWith};
pub use park::{Park, SpinPark, Timeout};
pub use patience::{Deadline, Patience, Spins};
pub use robust_mutex::{RECHECK, RawRobustMutex, RobustError};
#[cfg(not(loom))]
pub use robust_mutex::{RecoveryGuard, RobustGuard, RobustMutex};
pub use rwlock::RawRwLock;
#[cfg(not(loom))]
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Permit, ReleaseError, Semaphore};
pub use spin_mutex::RawSpinMutex;
#[cfg(not(loom))]
pub use spin_mutex::{SpinMutex, SpinMutexGuard};
pub use ticket_mutex::RawTicketMutex;
#[cfg(not(loom))]
pub use ticket_mutex::{TicketMutex, TicketMutexGuard};

/// One-time initialization, from the `spin` crate (re-exported unchanged).
///
/// # Example
///
/// ```
/// use ply_core::sync::Once;
///
/// static CONFIG: Once<u32> = Once::new();
/// assert_eq!(*CONFIG.call_once(|| 42), 42);
/// assert_eq!(*CONFIG.call_once(|| 7), 42); // runs once
/// ```
pub use spin::Once;

/// A value computed on first use, from the `spin` crate (re-exported unchanged).
///
/// # Example
///
/// ```
/// use ply_core::sync::Lazy;
///
/// static TABLE: Lazy<[u32; 4]> = Lazy::new(|| [1, 2, 4, 8]);
/// assert_eq!(TABLE[3], 8);
/// ```
pub use spin::Lazy;

#[cfg(all(test, not(loom)))]
mod tests;
