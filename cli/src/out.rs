//! Writing to stdout and stderr without panicking.
//!
//! `print!` panics when stdout is closed, a pipe's reader has gone, or the
//! disk is full. Every command writes through [`stdout`] instead and turns a
//! failure into an exit: quietly with [`EXIT_BROKEN_PIPE`] when the reader went
//! away (as `yes | head` does), one line and exit 1 for any other error.

use std::io::{self, Write};
use std::process::ExitCode;

/// The exit status on a broken pipe: 128 + SIGPIPE, what a shell reports for a
/// process the signal ended.
pub const EXIT_BROKEN_PIPE: u8 = 128 + libc::SIGPIPE as u8;

/// Stdout could not be written.
#[derive(Debug)]
pub struct WriteFailed(pub io::Error);

impl WriteFailed {
    /// The exit for this failure: quiet 141 on EPIPE, else one line and 1.
    pub fn exit(&self) -> ExitCode {
        self.exit_with(1)
    }

    /// As [`exit`](Self::exit), with `code` for errors other than EPIPE.
    pub fn exit_with(&self, code: u8) -> ExitCode {
        if self.0.kind() == io::ErrorKind::BrokenPipe {
            ExitCode::from(EXIT_BROKEN_PIPE)
        } else {
            error_line(&format!("writing to stdout: {}", self.0));
            ExitCode::from(code)
        }
    }
}

/// Writes `text` to stdout and flushes it.
pub fn stdout(text: &str) -> Result<(), WriteFailed> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(WriteFailed)
}

/// Writes `error: <message>` to stderr; a failure there is ignored (there is
/// nowhere left to report it).
pub fn error_line(message: &str) {
    let _ = writeln!(io::stderr().lock(), "error: {message}");
}

/// Writes raw text to stderr, ignoring failures.
pub fn stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}
