//! [`JobCommand`]: what a job runs — a program, its arguments, variables
//! added to the environment it inherits, and where its standard streams go.

use std::ffi::{OsStr, OsString};

/// Where one of a job's standard streams goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Io {
    /// The host process's own stream.
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe to the host (take its end from the [`Job`](super::Job)).
    Piped,
}

/// A command to start as a job with [`JobHost::spawn`](super::JobHost::spawn).
///
/// The program is executed directly (no shell). A name without a `/` is
/// looked up in `PATH` as `execvp` does. The job inherits the host
/// process's environment (as it was when the host was made), plus the
/// variables set here and `PLY_JOB_ID`, a token unique to the job.
///
/// # Example
///
/// ```
/// use ply_os::job::{Io, JobCommand};
/// let mut command = JobCommand::new("sh");
/// command.args(["-c", "echo $GREETING"]).env("GREETING", "hi").stdout(Io::Piped);
/// assert_eq!(command.get_program(), "sh");
/// ```
#[derive(Clone, Debug)]
pub struct JobCommand {
    pub(super) program: OsString,
    pub(super) arg0: Option<OsString>,
    pub(super) args: Vec<OsString>,
    pub(super) env: Vec<(OsString, OsString)>,
    pub(super) stdio: [Io; 3],
}

impl JobCommand {
    /// A command running `program`, with no arguments, every stream
    /// inherited.
    pub fn new(program: impl AsRef<OsStr>) -> JobCommand {
        JobCommand {
            program: program.as_ref().to_owned(),
            arg0: None,
            args: Vec::new(),
            env: Vec::new(),
            stdio: [Io::Inherit; 3],
        }
    }

    /// The program's name or path, as given.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// Sets the program's `argv[0]` (by default, the program as given).
    pub fn arg0(&mut self, arg0: impl AsRef<OsStr>) -> &mut JobCommand {
        self.arg0 = Some(arg0.as_ref().to_owned());
        self
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut JobCommand {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut JobCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the job (over the inherited one).
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut JobCommand {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Where the job's stdin comes from.
    pub fn stdin(&mut self, io: Io) -> &mut JobCommand {
        self.stdio[0] = io;
        self
    }

    /// Where the job's stdout goes.
    pub fn stdout(&mut self, io: Io) -> &mut JobCommand {
        self.stdio[1] = io;
        self
    }

    /// Where the job's stderr goes.
    pub fn stderr(&mut self, io: Io) -> &mut JobCommand {
        self.stdio[2] = io;
        self
    }
}
