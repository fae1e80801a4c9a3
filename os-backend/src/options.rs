//! [`InvalidOption`]: the one error every builder and option set of ply-os
//! reports bad settings with.

use std::fmt;

/// A setting outside its range: zero workers, a queue bound of zero, more
/// map workers than [`MAX_MAP_WORKERS`](crate::process::MAX_MAP_WORKERS).
/// Every pool and map reports one as the `Options` variant of its error
/// ([`thread::PoolError::Options`](crate::thread::PoolError::Options),
/// [`process::ProcessPoolError::Options`](crate::process::ProcessPoolError::Options),
/// [`process::MapError::Options`](crate::process::MapError::Options)),
/// when the pool is built or the call starts; never as a panic.
///
/// # Example
///
/// ```
/// use std::error::Error;
/// use ply_os::thread::{PoolError, ThreadPool};
///
/// let err = ThreadPool::new(0).unwrap_err();
/// let PoolError::Options(bad) = &err else { unreachable!() };
/// assert_eq!(bad.option(), "workers");
/// assert_eq!(err.to_string(), "invalid option `workers`: must be at least 1, not 0");
/// assert!(err.source().is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidOption {
    option: &'static str,
    problem: String,
}

impl InvalidOption {
    /// `option` (the builder method's name) is wrong: `problem` says how.
    pub(crate) fn new(option: &'static str, problem: impl Into<String>) -> Self {
        InvalidOption {
            option,
            problem: problem.into(),
        }
    }

    /// The option, named as its builder method.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::process::{ProcessPool, ProcessPoolError};
    /// let err = ProcessPool::builder().queue_bound(0).build(|x: u8| x).unwrap_err();
    /// assert!(matches!(err, ProcessPoolError::Options(ref bad) if bad.option() == "queue_bound"));
    /// ```
    pub fn option(&self) -> &'static str {
        self.option
    }
}

impl fmt::Display for InvalidOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid option `{}`: {}", self.option, self.problem)
    }
}

impl std::error::Error for InvalidOption {}
