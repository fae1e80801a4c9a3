//! Printing the jobs' output on ply's stdout and stderr.
//!
//! - **Grouped** (the default): a job's output is printed whole when the
//!   job ends, stdout then stderr, so no two jobs' output ever mix.
//! - **`-k`**: grouped, and in input order: a finished job waits for the
//!   ones before it.
//! - **`--line-buffer`**: whole lines as soon as they arrive; lines of
//!   different jobs interleave, never within a line (a single line longer
//!   than the spill budget is printed in pieces).
//! - **`--tag`**: every line prefixed by the job's values and a tab.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::capture::{Budget, Capture};

/// Which of the job's streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// A finished job's output, waiting for its turn (`-k`).
pub struct Finished {
    pub tag: Option<String>,
    pub out: Capture,
    pub err: Capture,
}

/// Writes `chunk` to `sink`, each line starting with `tag` (when given);
/// `at_line_start` carries over between chunks.
fn write_tagged(
    sink: &mut dyn Write,
    tag: Option<&str>,
    at_line_start: &mut bool,
    chunk: &[u8],
) -> io::Result<()> {
    let Some(tag) = tag else {
        return sink.write_all(chunk);
    };
    for piece in chunk.split_inclusive(|&b| b == b'\n') {
        if *at_line_start {
            sink.write_all(tag.as_bytes())?;
            sink.write_all(b"\t")?;
        }
        sink.write_all(piece)?;
        *at_line_start = piece.last() == Some(&b'\n');
    }
    Ok(())
}

/// Where output goes, in what order.
pub struct Printer {
    keep_order: bool,
    pub line_buffer: bool,
    /// The next order index to print (`-k`).
    next: u64,
    waiting: BTreeMap<u64, Finished>,
    pub budget: Budget,
    stdout: io::Stdout,
    stderr: io::Stderr,
}

impl Printer {
    pub fn new(keep_order: bool, line_buffer: bool) -> Printer {
        Printer {
            keep_order,
            line_buffer,
            next: 0,
            waiting: BTreeMap::new(),
            budget: Budget::default(),
            stdout: io::stdout(),
            stderr: io::stderr(),
        }
    }

    /// Output that arrived from a running job: captured (grouped modes), or
    /// printed at once up to its last whole line (`--line-buffer`, keeping
    /// the unfinished line in `partial`).
    pub fn arrived(
        &mut self,
        stream: Stream,
        bytes: &[u8],
        tag: Option<&str>,
        capture: &mut Capture,
        partial: &mut Vec<u8>,
    ) -> io::Result<()> {
        if !self.line_buffer {
            return capture.push(bytes, &mut self.budget);
        }
        let Some(last) = bytes.iter().rposition(|&b| b == b'\n') else {
            partial.extend_from_slice(bytes);
            if partial.len() > super::capture::MEMORY_BUDGET {
                self.write_now(stream, tag, &std::mem::take(partial))?;
            }
            return Ok(());
        };
        let mut line = std::mem::take(partial);
        line.extend_from_slice(&bytes[..=last]);
        partial.extend_from_slice(&bytes[last + 1..]);
        self.write_now(stream, tag, &line)
    }

    /// Writes whole lines to the stream now (line-buffer mode).
    fn write_now(&mut self, stream: Stream, tag: Option<&str>, bytes: &[u8]) -> io::Result<()> {
        let mut start = true;
        match stream {
            Stream::Out => {
                let mut out = self.stdout.lock();
                write_tagged(&mut out, tag, &mut start, bytes)?;
                out.flush()
            }
            Stream::Err => {
                let mut err = self.stderr.lock();
                write_tagged(&mut err, tag, &mut start, bytes)?;
                err.flush()
            }
        }
    }

    /// A job ended (order index `order`): prints its output now, or keeps it
    /// until the jobs before it have printed (`-k`). With `--line-buffer`,
    /// `finished` holds only the unfinished last lines.
    pub fn finished(&mut self, order: u64, finished: Finished) -> io::Result<()> {
        if !self.keep_order {
            return self.print(finished);
        }
        self.waiting.insert(order, finished);
        while let Some(ready) = self.waiting.remove(&self.next) {
            self.next += 1;
            self.print(ready)?;
        }
        Ok(())
    }

    fn print(&mut self, mut job: Finished) -> io::Result<()> {
        let tag = job.tag.as_deref();
        let budget = &mut self.budget;
        let mut start = true;
        {
            let mut out = self.stdout.lock();
            job.out.drain(budget, &mut |chunk| {
                write_tagged(&mut out, tag, &mut start, chunk)
            })?;
            out.flush()?;
        }
        let mut start = true;
        let mut err = self.stderr.lock();
        job.err.drain(budget, &mut |chunk| {
            write_tagged(&mut err, tag, &mut start, chunk)
        })?;
        err.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_every_line_across_chunks() {
        let mut out = Vec::new();
        let mut start = true;
        for chunk in [&b"a\nb"[..], b"c\n", b"\nd"] {
            write_tagged(&mut out, Some("x y"), &mut start, chunk).unwrap();
        }
        assert_eq!(out, b"x y\ta\nx y\tbc\nx y\t\nx y\td");
    }
}
