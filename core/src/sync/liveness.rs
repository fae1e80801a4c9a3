//! [`Liveness`]: who holds a robust lock, and whether they can still run.
//!
//! A [`RobustMutex`](super::RobustMutex) records its holder in the lock word
//! and, when a waiter has waited long enough, asks whether that holder is
//! alive. Both questions are the operating system's: ply-core has no notion of
//! a thread or a process, so it asks through this trait, as it sleeps through
//! [`Park`](super::Park). ply-os implements it for Linux threads (thread id
//! plus start time, read from `/proc`, so a reused thread id is not mistaken
//! for the holder).

/// The operating system's side of a robust lock: an identity token for the
/// calling owner, and whether the owner behind a token may still run.
///
/// # Safety
///
/// A robust lock hands a holder's lock (and the data it guards) to a waiter as
/// soon as [`is_alive`](Self::is_alive) says the holder is gone, so:
///
/// - `is_alive(token)` may return `false` only if the owner that got `token`
///   from [`current`](Self::current) can never run again (it has exited or
///   been killed). When unsure, it must return `true`.
/// - `current()` must return a token that is non-zero, below `2^31`, and
///   different from the token of every other owner that is alive at the same
///   time and may use the same lock; the calling owner must keep getting the
///   same token while it may hold a lock.
///
/// # Example
///
/// An implementation for a system whose only owner never dies (firmware with
/// one thread of control per lock):
///
/// ```
/// use ply_core::sync::Liveness;
///
/// struct Immortal;
/// // SAFETY: there is one owner, which never stops running: `is_alive` is
/// // always `true`, and the one token is non-zero and below 2^31.
/// unsafe impl Liveness for Immortal {
///     fn current(&self) -> u32 {
///         1
///     }
///     fn is_alive(&self, _token: u32) -> bool {
///         true
///     }
/// }
/// assert!(Immortal.is_alive(Immortal.current()));
/// ```
pub unsafe trait Liveness {
    /// The calling owner's token (see the trait's safety contract).
    fn current(&self) -> u32;

    /// Whether the owner that got `token` may still run (`true` when unsure).
    fn is_alive(&self, token: u32) -> bool;
}
