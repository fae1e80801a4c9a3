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
//!
//! Nothing here writes to a descriptor directly: output goes into the two
//! [`Sink`]s, which never block. A finished job's output is moved from its
//! captures into the sinks piece by piece ([`Printer::pump`]), as far as the
//! sinks have room; the rest waits in the captures (in memory up to the
//! budget, then in temporary files). A job's stderr starts only once its
//! stdout has been written out, and the next job only once both have, so
//! `2>&1` shows each job's output whole; a job counts as printed (and is
//! then logged) only when its output has left ply.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};

use super::capture::{Budget, Capture};
use super::joblog::Entry;
use super::sink::Sink;

/// Which of the job's streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// Bytes moved from a capture into a sink at a time.
const PIECE: usize = 64 << 10;

/// A finished job's output, waiting for its turn (`-k`) or for room in
/// the sinks, and its joblog line, written once the output is out.
pub struct Finished {
    pub tag: Option<String>,
    pub out: Capture,
    pub err: Capture,
    pub entry: Option<Entry>,
}

/// How far a job's printing has got.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Out,
    Err,
    Done,
}

/// A job being printed.
struct Printing {
    job: Finished,
    stage: Stage,
    /// `--tag`: whether the next byte starts a line.
    at_line_start: bool,
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
    /// Jobs whose turn it is, in print order; the first is being printed.
    ready: VecDeque<Printing>,
    pub budget: Budget,
    pub out: Sink,
    pub err: Sink,
}

impl Printer {
    pub fn new(keep_order: bool, line_buffer: bool, out: Sink, err: Sink) -> Printer {
        Printer {
            keep_order,
            line_buffer,
            next: 0,
            waiting: BTreeMap::new(),
            ready: VecDeque::new(),
            budget: Budget::default(),
            out,
            err,
        }
    }

    /// Output that arrived from a running job: captured (grouped modes), or
    /// queued at once up to its last whole line (`--line-buffer`, keeping
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
                self.write_now(stream, tag, &std::mem::take(partial));
            }
            return Ok(());
        };
        let mut line = std::mem::take(partial);
        line.extend_from_slice(&bytes[..=last]);
        partial.extend_from_slice(&bytes[last + 1..]);
        self.write_now(stream, tag, &line);
        Ok(())
    }

    /// Queues whole lines on the stream now (line-buffer mode).
    fn write_now(&mut self, stream: Stream, tag: Option<&str>, bytes: &[u8]) {
        let sink = match stream {
            Stream::Out => &mut self.out,
            Stream::Err => &mut self.err,
        };
        // A sink only fails by recording its error, which the engine checks.
        let _ = write_tagged(sink, tag, &mut true, bytes);
    }

    /// A job ended (order index `order`): its output is printed next, or
    /// after the jobs before it (`-k`). With `--line-buffer`, `finished`
    /// holds only the unfinished last lines.
    pub fn finished(&mut self, order: u64, finished: Finished) {
        let printing = |job| Printing {
            job,
            stage: Stage::Out,
            at_line_start: true,
        };
        if !self.keep_order {
            self.ready.push_back(printing(finished));
            return;
        }
        self.waiting.insert(order, finished);
        while let Some(job) = self.waiting.remove(&self.next) {
            self.next += 1;
            self.ready.push_back(printing(job));
        }
    }

    /// Whether the sinks take more output now: while either is full, the
    /// engine reads no more line-buffered output and starts no new job.
    pub fn has_room(&self) -> bool {
        self.out.has_room() && self.err.has_room()
    }

    /// Whether every finished job's output has left ply.
    pub fn idle(&self) -> bool {
        self.ready.is_empty() && self.out.is_empty() && self.err.is_empty()
    }

    /// The first write error of either sink.
    pub fn error(&self) -> Option<io::Error> {
        self.out.error().or_else(|| self.err.error())
    }

    /// Writes what the sinks take now and moves ready output into them
    /// while they have room; the joblog lines of jobs whose output is now
    /// all out are appended to `printed`.
    ///
    /// # Errors
    ///
    /// Reading a spilled capture back failed.
    pub fn pump(&mut self, printed: &mut Vec<Entry>) -> io::Result<()> {
        self.out.flush();
        self.err.flush();
        while let Some(p) = self.ready.front_mut() {
            if self.out.error().is_some() || self.err.error().is_some() {
                return Ok(()); // the engine stops the run
            }
            let tag = p.job.tag.as_deref();
            match p.stage {
                Stage::Out | Stage::Err => {
                    let (capture, sink, before) = match p.stage {
                        Stage::Out => (&mut p.job.out, &mut self.out, None),
                        _ => (&mut p.job.err, &mut self.err, Some(&self.out)),
                    };
                    // stderr starts once stdout is out (`2>&1` keeps the order).
                    if before.is_some_and(|out| !out.is_empty()) {
                        return Ok(());
                    }
                    loop {
                        if !sink.has_room() {
                            return Ok(());
                        }
                        let at = &mut p.at_line_start;
                        let n = capture.drain_some(&mut self.budget, PIECE, &mut |chunk| {
                            let _ = write_tagged(sink, tag, at, chunk);
                        })?;
                        if n == 0 {
                            break;
                        }
                    }
                    p.at_line_start = true;
                    p.stage = if p.stage == Stage::Out {
                        Stage::Err
                    } else {
                        Stage::Done
                    };
                }
                Stage::Done => {
                    if !self.out.is_empty() || !self.err.is_empty() {
                        return Ok(());
                    }
                    let done = self.ready.pop_front().expect("the front job");
                    printed.extend(done.job.entry);
                }
            }
        }
        Ok(())
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
