//! The jobs' inputs: arguments after `:::`, lines of files after `::::` (`-`
//! is stdin), or lines of stdin; several sources give their cartesian
//! product (the last source varying fastest, as GNU parallel), or with
//! `--link` their values paired, shorter sources wrapping around.
//!
//! Input is streamed: the first source of a product (or the only one) is
//! read line by line as jobs start, so a million lines cost no memory.
//! Sources that must be read again — the inner sources of a product, every
//! source under `--link`, every source when the jobs must be counted first
//! (`--shard`, `--bar`, a percentage `--halt`) — are re-opened (files) or
//! spooled once to an unnamed temporary file (stdin).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::PathBuf;

/// Where one input source's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Values given after `:::`.
    Args(Vec<String>),
    /// Lines of a file given after `::::`.
    File(PathBuf),
    /// Lines of stdin.
    Stdin,
}

/// An input error: what could not be read, where.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits the words after `ply run`'s options into the command and its
/// sources. `None` sources means stdin.
pub fn split_command(words: &[String]) -> Result<(Vec<String>, Vec<Source>), String> {
    let first = words.iter().position(|w| w == ":::" || w == "::::");
    let Some(first) = first else {
        return Ok((words.to_vec(), Vec::new()));
    };
    let mut sources = Vec::new();
    let mut i = first;
    while i < words.len() {
        let marker = &words[i];
        let end = words[i + 1..]
            .iter()
            .position(|w| w == ":::" || w == "::::")
            .map_or(words.len(), |p| i + 1 + p);
        let values = &words[i + 1..end];
        if marker == ":::" {
            if values.is_empty() {
                return Err("':::' must be followed by at least one value".into());
            }
            sources.push(Source::Args(values.to_vec()));
        } else {
            if values.is_empty() {
                return Err("'::::' must be followed by at least one file".into());
            }
            for file in values {
                sources.push(if file == "-" {
                    Source::Stdin
                } else {
                    Source::File(PathBuf::from(file))
                });
            }
        }
        i = end;
    }
    if sources.iter().filter(|s| **s == Source::Stdin).count() > 1 {
        return Err("stdin ('-') can be read as one input source only".into());
    }
    Ok((words[..first].to_vec(), sources))
}

/// The longest input line read, in bytes. A line becomes (part of) one
/// argument, and Linux refuses an argument over 128 KiB (`MAX_ARG_STRLEN`),
/// so no job could run with a longer one; the bound keeps a source without
/// newlines (`/dev/zero`) from being read into memory without end.
const MAX_LINE: usize = 16 << 20;

/// A source being read: its values in order, and able to start again.
struct Reader {
    source: Source,
    /// Position in `Args`.
    next_arg: usize,
    lines: Option<BufReader<Box<dyn Read + Send>>>,
    /// Stdin copied here when it must be read more than once.
    spool: Option<File>,
    /// Line number of the last line read (for messages).
    line: u64,
    name: String,
}

impl Reader {
    fn open(source: Source, rewindable: bool) -> Result<Reader, InputError> {
        let name = match &source {
            Source::Args(_) => ":::".into(),
            Source::File(path) => path.display().to_string(),
            Source::Stdin => "stdin".into(),
        };
        let mut reader = Reader {
            source,
            next_arg: 0,
            lines: None,
            spool: None,
            line: 0,
            name,
        };
        if rewindable && reader.source == Source::Stdin {
            let mut spool = tempfile::tempfile()
                .map_err(|e| InputError(format!("a temporary file for stdin: {e}")))?;
            io::copy(&mut io::stdin().lock(), &mut spool)
                .and_then(|_| spool.flush())
                .map_err(|e| InputError(format!("reading stdin: {e}")))?;
            reader.spool = Some(spool);
        }
        reader.rewind()?;
        Ok(reader)
    }

    /// Starts again from the first value.
    fn rewind(&mut self) -> Result<(), InputError> {
        self.next_arg = 0;
        self.line = 0;
        self.lines = match (&self.source, &mut self.spool) {
            (Source::Args(_), _) => None,
            (Source::File(path), _) => Some(BufReader::with_capacity(
                64 << 10,
                Box::new(
                    File::open(path).map_err(|e| InputError(format!("{}: {e}", path.display())))?,
                ),
            )),
            (Source::Stdin, Some(spool)) => {
                spool
                    .rewind()
                    .map_err(|e| InputError(format!("rewinding stdin's copy: {e}")))?;
                let copy = spool
                    .try_clone()
                    .map_err(|e| InputError(format!("stdin's copy: {e}")))?;
                Some(BufReader::with_capacity(64 << 10, Box::new(copy)))
            }
            (Source::Stdin, None) => {
                if self.lines.is_some() {
                    return Err(InputError("stdin cannot be read twice".into()));
                }
                Some(BufReader::with_capacity(64 << 10, Box::new(io::stdin())))
            }
        };
        Ok(())
    }

    /// The next value, `None` at the end.
    fn next(&mut self) -> Result<Option<String>, InputError> {
        if let Source::Args(values) = &self.source {
            let value = values.get(self.next_arg).cloned();
            self.next_arg += 1;
            return Ok(value);
        }
        let Some(lines) = self.lines.as_mut() else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        let n = lines
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| InputError(format!("{}: {e}", self.name)))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        if bytes.len() > MAX_LINE {
            return Err(InputError(format!(
                "{}:{}: a line longer than {} MiB (Linux passes at most 128 KiB in one argument)",
                self.name,
                self.line,
                MAX_LINE >> 20
            )));
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| InputError(format!("{}:{}: not UTF-8 text", self.name, self.line)))
    }

    /// Whether the next value may have to wait for more input (nothing is
    /// buffered).
    fn may_block(&self) -> bool {
        self.lines.as_ref().is_some_and(|l| l.buffer().is_empty())
    }

    /// Counts the values from the start (and rewinds).
    fn count(&mut self) -> Result<u64, InputError> {
        self.rewind()?;
        let mut n = 0u64;
        if let Source::Args(values) = &self.source {
            n = values.len() as u64;
        } else if let Some(lines) = self.lines.as_mut() {
            let mut buf = [0u8; 64 << 10];
            let mut last = b'\n';
            loop {
                let got = lines
                    .read(&mut buf)
                    .map_err(|e| InputError(format!("{}: {e}", self.name)))?;
                if got == 0 {
                    break;
                }
                n += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
                last = buf[got - 1];
            }
            if last != b'\n' {
                n += 1; // a last line without a newline
            }
        }
        self.rewind()?;
        Ok(n)
    }
}

/// Every job's values (one per source), in order.
pub struct JobInputs {
    readers: Vec<Reader>,
    link: bool,
    /// The current value of each source (product mode).
    current: Vec<String>,
    /// Which sources have ended at least once (link mode).
    ended: Vec<bool>,
    started: bool,
    done: bool,
}

impl JobInputs {
    /// Opens the sources (stdin alone when there are none). With `count`,
    /// every source is made readable twice, so [`total`](Self::total) works.
    pub fn open(sources: Vec<Source>, link: bool, count: bool) -> Result<JobInputs, InputError> {
        let sources = if sources.is_empty() {
            vec![Source::Stdin]
        } else {
            sources
        };
        let readers = sources
            .into_iter()
            .enumerate()
            .map(|(i, s)| Reader::open(s, count || link || i > 0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(JobInputs {
            current: Vec::with_capacity(readers.len()),
            ended: Vec::new(),
            readers,
            link,
            started: false,
            done: false,
        })
    }

    /// How many jobs there are (only after `open(.., count = true)`, before
    /// the first [`next_job`](Self::next_job)).
    pub fn total(&mut self) -> Result<u64, InputError> {
        let counts = self
            .readers
            .iter_mut()
            .map(Reader::count)
            .collect::<Result<Vec<u64>, _>>()?;
        Ok(if self.link {
            counts.into_iter().max().unwrap_or(0)
        } else {
            counts
                .into_iter()
                .try_fold(1u64, u64::checked_mul)
                .unwrap_or(u64::MAX)
        })
    }

    /// Whether the next job may have to wait for input (so work read so far
    /// should be handed on first).
    pub fn may_block(&self) -> bool {
        self.readers.first().is_some_and(Reader::may_block)
    }

    /// The next job's values, `None` when there are no more.
    pub fn next_job(&mut self) -> Result<Option<Vec<String>>, InputError> {
        if self.done {
            return Ok(None);
        }
        let job = if self.link {
            self.next_linked()?
        } else {
            self.next_product()?
        };
        if job.is_none() {
            self.done = true;
        }
        Ok(job)
    }

    /// Pairs the n-th values; a source that ends starts again, and the run
    /// ends once every source has ended (as many jobs as the longest has
    /// values).
    fn next_linked(&mut self) -> Result<Option<Vec<String>>, InputError> {
        let mut values = Vec::with_capacity(self.readers.len());
        let mut fresh = false;
        self.ended.resize(self.readers.len(), false);
        for (reader, ended) in self.readers.iter_mut().zip(&mut self.ended) {
            match reader.next()? {
                Some(v) => {
                    // Only a source on its first pass makes a new job.
                    fresh |= !*ended;
                    values.push(v);
                }
                None => {
                    *ended = true;
                    reader.rewind()?;
                    match reader.next()? {
                        Some(v) => values.push(v),
                        None => return Ok(None), // an empty source: no jobs
                    }
                }
            }
        }
        Ok(fresh.then_some(values))
    }

    /// The cartesian product, like nested loops with the last source inside.
    fn next_product(&mut self) -> Result<Option<Vec<String>>, InputError> {
        if !self.started {
            self.started = true;
            for reader in &mut self.readers {
                match reader.next()? {
                    Some(v) => self.current.push(v),
                    None => return Ok(None),
                }
            }
            return Ok(Some(self.current.clone()));
        }
        // Advance the innermost source; on its end, restart it and advance
        // the next one out.
        for i in (0..self.readers.len()).rev() {
            if let Some(v) = self.readers[i].next()? {
                self.current[i] = v;
                return Ok(Some(self.current.clone()));
            }
            if i == 0 {
                return Ok(None);
            }
            self.readers[i].rewind()?;
            match self.readers[i].next()? {
                Some(v) => self.current[i] = v,
                None => return Ok(None),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    fn all(sources: Vec<Source>, link: bool) -> Vec<Vec<String>> {
        let mut inputs = JobInputs::open(sources, link, false).unwrap();
        let mut jobs = Vec::new();
        while let Some(job) = inputs.next_job().unwrap() {
            jobs.push(job);
        }
        jobs
    }

    fn args(values: &str) -> Source {
        Source::Args(words(values))
    }

    #[test]
    fn splits_command_and_sources() {
        let (cmd, sources) = split_command(&words("echo {} ::: a b :::: f1 - ::: c")).unwrap();
        assert_eq!(cmd, ["echo", "{}"]);
        assert_eq!(
            sources,
            [
                args("a b"),
                Source::File("f1".into()),
                Source::Stdin,
                args("c")
            ]
        );
        assert!(split_command(&words("echo :::")).is_err());
        assert!(split_command(&words("echo :::: - ::::")).is_err());
        assert!(split_command(&words("echo :::: - -")).is_err());
    }

    #[test]
    fn product_varies_the_last_source_fastest() {
        let jobs = all(vec![args("a b"), args("1 2 3")], false);
        let flat: Vec<String> = jobs.iter().map(|j| j.join("")).collect();
        assert_eq!(flat, ["a1", "a2", "a3", "b1", "b2", "b3"]);
    }

    #[test]
    fn link_pairs_and_wraps_shorter_sources() {
        let jobs = all(vec![args("a b c"), args("1 2")], true);
        let flat: Vec<String> = jobs.iter().map(|j| j.join("")).collect();
        assert_eq!(flat, ["a1", "b2", "c1"]);
        let jobs = all(vec![args("a"), args("1 2 3")], true);
        let flat: Vec<String> = jobs.iter().map(|j| j.join("")).collect();
        assert_eq!(flat, ["a1", "a2", "a3"]);
    }

    #[test]
    fn files_are_read_line_by_line_and_counted() {
        let dir = std::env::temp_dir().join(format!("ply-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lines");
        std::fs::write(&file, "x\n\ny\nz").unwrap(); // an empty line, no final newline
        let mut inputs =
            JobInputs::open(vec![Source::File(file.clone()), args("1 2")], false, true).unwrap();
        assert_eq!(inputs.total().unwrap(), 8);
        let mut jobs = Vec::new();
        while let Some(job) = inputs.next_job().unwrap() {
            jobs.push(job.join(","));
        }
        assert_eq!(jobs, ["x,1", "x,2", ",1", ",2", "y,1", "y,2", "z,1", "z,2"]);
        std::fs::write(&file, b"ok\n\xff\n").unwrap();
        let mut inputs = JobInputs::open(vec![Source::File(file.clone())], false, false).unwrap();
        assert!(inputs.next_job().unwrap().is_some());
        let err = inputs.next_job().unwrap_err().to_string();
        assert!(err.ends_with("lines:2: not UTF-8 text"), "{err}");
        let missing = JobInputs::open(vec![Source::File(dir.join("nope"))], false, false);
        assert!(missing.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
