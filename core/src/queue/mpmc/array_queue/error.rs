//! What the never-waiting and bounded forms of [`ArrayQueue`](super::ArrayQueue)
//! report when they move nothing.

use core::fmt;

/// Why [`ArrayQueue::try_pop`](super::ArrayQueue::try_pop) (or
/// [`pop_with`](super::ArrayQueue::pop_with)) took nothing.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{ArrayQueue, TryPopError};
///
/// let q = ArrayQueue::<u8, 2>::new();
/// assert_eq!(q.try_pop(), Err(TryPopError::Empty));
/// assert_eq!(TryPopError::Empty.to_string(), "the queue is empty");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryPopError {
    /// The queue was empty at an instant during the call.
    Empty,
    /// The oldest item's push was in flight: its producer had claimed the slot
    /// and not yet published the item. The queue is *not* empty; retry, or use
    /// [`pop`](super::ArrayQueue::pop), which waits for the push to finish.
    Busy,
}

impl fmt::Display for TryPopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPopError::Empty => f.write_str("the queue is empty"),
            TryPopError::Busy => {
                f.write_str("the oldest item is still being pushed (the queue is not empty): retry")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TryPopError {}

/// Why [`ArrayQueue::try_push`](super::ArrayQueue::try_push) (or
/// [`push_with`](super::ArrayQueue::push_with)) did not add the value, which
/// comes back inside.
///
/// # Example
///
/// ```
/// use ply_core::queue::mpmc::{ArrayQueue, TryPushError};
///
/// let q = ArrayQueue::<u8, 1>::new();
/// q.push(1).unwrap();
/// let err = q.try_push(2).unwrap_err();
/// assert_eq!(err, TryPushError::Full(2));
/// assert_eq!(err.into_inner(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryPushError<T> {
    /// The queue was full at an instant during the call.
    Full(T),
    /// The slot to push into still held an item whose pop was in flight: its
    /// consumer had claimed it and not yet finished reading it. The queue is
    /// *not* full; retry, or use [`push`](super::ArrayQueue::push), which waits
    /// for the pop to finish.
    Busy(T),
}

impl<T> TryPushError<T> {
    /// The value that was not pushed.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_core::queue::mpmc::TryPushError;
    /// assert_eq!(TryPushError::Busy('x').into_inner(), 'x');
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TryPushError::Full(value) | TryPushError::Busy(value) => value,
        }
    }
}

impl<T> fmt::Display for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPushError::Full(_) => f.write_str("the queue is full"),
            TryPushError::Busy(_) => f.write_str(
                "the next slot is still being read by a pop (the queue is not full): retry",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl<T: fmt::Debug> std::error::Error for TryPushError<T> {}
