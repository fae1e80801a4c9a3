//! Why a job could not be set up: a failure of the host's own machinery
//! (a pipe, the job's cgroup, the clone itself), as opposed to the job's
//! command failing to execute. A caller tells the two apart because a job
//! whose command cannot run has failed, while a job the host could not set
//! up never ran — it may run later, or the caller stops, but it must not be
//! recorded as the job's failure.

use std::fmt;
use std::io;

/// What setting a job up failed at, with the system's error. It travels
/// inside the [`io::Error`] that [`JobHost::spawn`](super::JobHost::spawn)
/// returns (whose kind is the cause's); [`SetupError::of`] finds it there.
///
/// # Example
///
/// ```
/// use ply_os::job::SetupError;
/// let e: std::io::Error = SetupError::Pipe(std::io::Error::from_raw_os_error(libc::EMFILE)).into();
/// let setup = SetupError::of(&e).expect("a setup failure");
/// assert_eq!(setup.cause().raw_os_error(), Some(libc::EMFILE));
/// assert_eq!(e.to_string(), "a pipe for the job: Too many open files (os error 24)");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// A pipe for one of the job's standard streams.
    Pipe(io::Error),
    /// The job's cgroup: creating or opening it, or moving the leader in.
    Cgroup(io::Error),
    /// Starting the process: `clone3` itself, or a descriptor for it.
    Process(io::Error),
}

impl SetupError {
    /// The system's error.
    pub fn cause(&self) -> &io::Error {
        match self {
            SetupError::Pipe(e) | SetupError::Cgroup(e) | SetupError::Process(e) => e,
        }
    }

    /// The setup failure `e` carries, if it is one.
    pub fn of(e: &io::Error) -> Option<&SetupError> {
        e.get_ref()?.downcast_ref()
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            SetupError::Pipe(_) => "a pipe for the job",
            SetupError::Cgroup(_) => "the job's cgroup",
            SetupError::Process(_) => "starting the job's process",
        };
        write!(f, "{what}: {}", self.cause())
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.cause())
    }
}

impl From<SetupError> for io::Error {
    fn from(e: SetupError) -> io::Error {
        io::Error::new(e.cause().kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobCommand, JobHost};

    /// A host whose cgroup directory is gone cannot set a job up: the
    /// error says so (a `SetupError`), though its kind is `NotFound` like
    /// a missing program's.
    #[test]
    fn a_job_the_host_cannot_set_up_is_a_setup_error_not_the_commands() {
        let mut host = JobHost::new(true).unwrap();
        let Some(dir) = host.cgroup_dir().map(std::path::Path::to_path_buf) else {
            eprintln!("no cgroup v2 to create jobs in here: nothing to test");
            return;
        };
        std::fs::remove_dir(&dir).unwrap();
        let e = host.spawn(&JobCommand::new("true")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let setup = SetupError::of(&e).expect("a setup failure");
        assert!(matches!(setup, SetupError::Cgroup(_)), "{setup:?}");
        assert!(e.to_string().starts_with("the job's cgroup: "), "{e}");
        // A missing program is the command's failure, not the host's.
        let mut host = JobHost::new(false).unwrap();
        let e = host
            .spawn(&JobCommand::new("/nonexistent/ply-no-such-program"))
            .unwrap_err();
        assert!(SetupError::of(&e).is_none(), "{e}");
    }
}
