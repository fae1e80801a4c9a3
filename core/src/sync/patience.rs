//! Bounded waiting: how long a `*_with` operation keeps trying before it gives up.
//!
//! Every blocking operation in [`sync`](super) has a bounded form that takes a
//! [`Patience`]: after each failed attempt it asks `keep_waiting()`, and returns
//! `None`/`false` as soon as the answer is no. Code that can time out cannot
//! deadlock: a caller that holds lock A and wants lock B can give up, release A,
//! and retry.
//!
//! Operations that sleep through a [`Park`](super::Park) also ask, before every
//! park, how long that park may last ([`Patience::park_timeout`]), so a sleeping
//! waiter wakes up by its deadline instead of checking it only between sleeps.
//! `no_std` has no clock: [`Spins`] and [`Deadline`] (a caller-supplied check)
//! cannot say how long is left, so they never let a park sleep — it spins
//! briefly and returns. A patience with a clock (ply-os's `park::Until`) returns
//! the time left, which a futex park hands to the kernel.

use core::time::Duration;

use crate::sync::Timeout;

/// Decides, after each failed attempt, whether to keep trying.
///
/// # Example
///
/// ```
/// use ply_core::sync::{Patience, Spins};
///
/// let mut p = Spins(2);
/// assert!(p.keep_waiting());
/// assert!(p.keep_waiting());
/// assert!(!p.keep_waiting());
/// ```
pub trait Patience {
    /// Called after a failed attempt: `true` to try again, `false` to give up.
    fn keep_waiting(&mut self) -> bool;

    /// How long the next park may block, asked before every park. The default,
    /// for a patience without a clock, is `Timeout::After(Duration::ZERO)`: do
    /// not sleep (spin briefly and return, so `keep_waiting` is asked again
    /// soon). A patience with a clock returns the time left until its deadline.
    ///
    /// # Example
    ///
    /// ```
    /// use core::time::Duration;
    /// use ply_core::sync::{Deadline, Patience, Timeout};
    ///
    /// let mut p = Deadline(|| false);
    /// assert_eq!(p.park_timeout(), Timeout::After(Duration::ZERO));
    /// ```
    fn park_timeout(&mut self) -> Timeout {
        Timeout::After(Duration::ZERO)
    }
}

/// Gives up after this many failed attempts (`Spins(0)`: one attempt only).
///
/// # Example
///
/// ```
/// use ply_core::sync::{Semaphore, Spins};
///
/// let s = Semaphore::new(0);
/// assert!(s.acquire_with(Spins(100)).is_none()); // no permit came
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spins(pub u32);

impl Patience for Spins {
    fn keep_waiting(&mut self) -> bool {
        if self.0 == 0 {
            false
        } else {
            self.0 -= 1;
            true
        }
    }
}

/// Gives up once the check returns `true` ("the deadline has passed"). With
/// `std`, the check is typically `|| Instant::now() >= deadline`.
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// use ply_core::sync::{Deadline, Event};
///
/// let event = Event::new();
/// let deadline = Instant::now() + Duration::from_millis(5);
/// assert!(!event.wait_with(Deadline(|| Instant::now() >= deadline)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Deadline<F: FnMut() -> bool>(pub F);

impl<F: FnMut() -> bool> Patience for Deadline<F> {
    fn keep_waiting(&mut self) -> bool {
        !(self.0)()
    }
}

impl<P: Patience + ?Sized> Patience for &mut P {
    fn keep_waiting(&mut self) -> bool {
        (**self).keep_waiting()
    }

    fn park_timeout(&mut self) -> Timeout {
        (**self).park_timeout()
    }
}

/// Patience that never runs out: the unbounded forms.
pub(crate) struct Forever;

impl Patience for Forever {
    #[inline]
    fn keep_waiting(&mut self) -> bool {
        true
    }

    fn park_timeout(&mut self) -> Timeout {
        Timeout::Never
    }
}
