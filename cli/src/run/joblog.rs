//! `--joblog`: one line per finished job, written and flushed as the job
//! ends, in GNU parallel's tab-separated columns (`Seq Host Starttime
//! JobRuntime Send Receive Exitval Signal Command`, with its header) or as
//! JSON lines with the same fields; and reading a joblog back for
//! `--resume`, where jobs are matched by their command text.
//!
//! Joblogs may be concatenated (the shards of an array job): header lines
//! are accepted anywhere, and both formats may be mixed. In the TSV form a
//! command's backslashes, tabs and newlines are written `\\`, `\t`, `\n`, so
//! every job is one line.
//!
//! For `--resume`, what matters of a logged job is whether its command
//! succeeded: [`Outcomes`] keeps 96 bits of a hash of each command
//! (XXH3-128), its place in the log and that one bit, 16 bytes per job in
//! an array sorted in place, not the commands' text — a joblog of a million
//! jobs costs 16 MB, whatever its commands' length. (Two different commands
//! sharing a 96-bit hash, among a billion, has odds of about 10^-11.)

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::args::JoblogFormat;

/// GNU parallel's header line.
pub const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

/// One finished job.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub starttime: f64,
    /// Seconds.
    pub runtime: f64,
    pub send: u64,
    pub receive: u64,
    pub exitval: i32,
    pub signal: i32,
    pub command: String,
}

impl Entry {
    /// Whether the job succeeded (exit 0, no signal).
    pub fn succeeded(&self) -> bool {
        self.exitval == 0 && self.signal == 0
    }

    fn to_tsv(&self) -> String {
        format!(
            "{}\t{}\t{:.3}\t{:.3}\t{}\t{}\t{}\t{}\t{}",
            self.seq,
            self.host,
            self.starttime,
            self.runtime,
            self.send,
            self.receive,
            self.exitval,
            self.signal,
            escape(&self.command)
        )
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            other => {
                return Err(format!(
                    "bad escape '\\{}' in the command",
                    other.map_or(String::new(), String::from)
                ));
            }
        }
    }
    Ok(out)
}

/// A joblog open for appending.
///
/// Every line ends with its newline, or is not in the file: a last line
/// without one (a writer killed mid-line, a full disk) is cut off when the
/// joblog is opened, and a write that fails is undone, so the next entry
/// never lands glued onto a cut one (one line the next `--resume` could not
/// read, hiding a job that ran).
pub struct Joblog {
    file: File,
    format: JoblogFormat,
    path: PathBuf,
    /// The length of the file up to its last whole line.
    len: u64,
    /// Set once a write failed: nothing more is written.
    failed: bool,
}

impl Joblog {
    /// Opens (creating) `path` for appending, and cuts off an unfinished
    /// last line; a new or empty TSV joblog gets the header line. Returns
    /// the joblog and how many bytes were cut off.
    pub fn open(path: &Path, format: JoblogFormat) -> io::Result<(Joblog, u64)> {
        let file = OpenOptions::new()
            .read(true)
            .create(true)
            .append(true)
            .open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(not_a_regular_file());
        }
        let size = meta.len();
        let len = whole_lines_len(&file, size)?;
        if len < size {
            file.set_len(len)?;
        }
        let mut joblog = Joblog {
            file,
            format,
            path: path.to_path_buf(),
            len,
            failed: false,
        };
        if format == JoblogFormat::Tsv && len == 0 {
            joblog.append(format!("{HEADER}\n").as_bytes())?;
        }
        Ok((joblog, size - len))
    }

    /// Appends `entry` as one line, in one write, and flushes it to the file.
    pub fn write(&mut self, entry: &Entry) -> Result<(), String> {
        let mut line = match self.format {
            JoblogFormat::Tsv => entry.to_tsv(),
            JoblogFormat::Json => serde_json::to_string(entry).map_err(|e| e.to_string())?,
        };
        line.push('\n');
        self.append(line.as_bytes())
            .map_err(|e| format!("writing the joblog {}: {e}", self.path.display()))
    }

    /// Appends whole lines; on a failure, cuts off what part of them got
    /// written, and refuses every later append.
    fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier write to it failed"));
        }
        match self.file.write_all(lines).and_then(|()| self.file.flush()) {
            Ok(()) => {
                self.len += lines.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }
}

/// A joblog is a regular file: a FIFO would block the event loop once its
/// buffer is full (ply being its only reader), a device such as `/dev/zero`
/// would be read without end by `--resume`.
fn not_a_regular_file() -> io::Error {
    io::Error::other("not a regular file (a joblog is appended to and read back by --resume)")
}

/// The length of `file` (`size` bytes) up to the end of its last whole
/// line: `size` if it is empty or ends with a newline.
fn whole_lines_len(file: &File, size: u64) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut end = size;
    let mut buf = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if end == size && chunk.last() == Some(&b'\n') {
            return Ok(size);
        }
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// What a joblog says about each command: whether it succeeded (the last
/// line for it wins).
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Per logged job, 128 bits: the command's key (96 bits), then
    /// [`LATEST`] less the job's position in the log (31 bits), then its
    /// outcome (1 bit). Sorted, so a command's latest line comes first; one
    /// entry per key.
    entries: Vec<u128>,
}

/// The largest position in the log an entry records: positions beyond it
/// (a joblog of more than two billion lines) share it, and among several
/// lines for one command there, which one wins is not defined.
const LATEST: u32 = (1 << 31) - 1;

impl Outcomes {
    /// The key of `command`: the top 96 bits of its 128-bit hash.
    fn key(command: &str) -> u128 {
        xxhash_rust::xxh3::xxh3_128(command.as_bytes()) >> 32
    }

    /// The entry of the job at `position` in the log (0 first).
    fn entry(command: &str, position: usize, succeeded: bool) -> u128 {
        let age = LATEST - u32::try_from(position).unwrap_or(LATEST).min(LATEST);
        Outcomes::key(command) << 32 | u128::from(age) << 1 | u128::from(succeeded)
    }

    /// Builds from the [entries](Self::entry) of a log. Sorting in place
    /// (no second buffer: a million jobs cost their 16 MB and no more) puts
    /// each command's latest line first, and only that one is kept.
    fn from_entries(mut entries: Vec<u128>) -> Outcomes {
        entries.sort_unstable();
        entries.dedup_by_key(|e| *e >> 32);
        entries.shrink_to_fit();
        Outcomes { entries }
    }

    /// Whether `command` succeeded when last logged; `None` if never logged.
    pub fn get(&self, command: &str) -> Option<bool> {
        let key = Outcomes::key(command);
        self.entries
            .binary_search_by_key(&key, |e| e >> 32)
            .ok()
            .map(|i| self.entries[i] & 1 == 1)
    }

    /// How many distinct commands are logged.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Reads a joblog (TSV, JSON lines, or a concatenation of both). A missing
/// file is an empty joblog; a malformed line is an error naming the file and
/// line. A last line without its newline (a writer killed mid-line) is
/// ignored with a warning on stderr: that job runs again (and [`Joblog::open`]
/// cuts that line off before anything is appended).
pub fn read(path: &Path, warn: &dyn Fn(&str)) -> Result<Outcomes, String> {
    // Non-blocking, so a FIFO is refused rather than waited on; regular
    // files ignore the flag.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .and_then(|f| match f.metadata()?.is_file() {
            true => Ok(f),
            false => Err(not_a_regular_file()),
        });
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Outcomes::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    // One entry per line at most: count them first, so the array is
    // allocated once (no doubling, no copy).
    let mut lines = 0usize;
    let mut counter = BufReader::with_capacity(64 << 10, &file);
    loop {
        let buf = counter
            .fill_buf()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if buf.is_empty() {
            break;
        }
        lines += buf.iter().filter(|&&b| b == b'\n').count();
        let n = buf.len();
        counter.consume(n);
    }
    std::io::Seek::rewind(&mut &file).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut entries: Vec<u128> = Vec::with_capacity(lines);
    let mut reader = BufReader::new(&file);
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("{}:{}: {e}", path.display(), number + 1))?;
        if n == 0 {
            return Ok(Outcomes::from_entries(entries));
        }
        number += 1;
        let Some(text) = line.strip_suffix('\n') else {
            warn(&format!(
                "ply: warning: {}:{number}: an unfinished last line is ignored (that job runs again)\n",
                path.display()
            ));
            return Ok(Outcomes::from_entries(entries));
        };
        if text.is_empty() || text == HEADER {
            continue;
        }
        let entry = parse_line(text).map_err(|e| format!("{}:{number}: {e}", path.display()))?;
        let position = entries.len();
        entries.push(Outcomes::entry(&entry.command, position, entry.succeeded()));
    }
}

fn parse_line(text: &str) -> Result<Entry, String> {
    if text.starts_with('{') {
        return serde_json::from_str(text).map_err(|e| format!("not a joblog JSON line: {e}"));
    }
    let fields: Vec<&str> = text.splitn(9, '\t').collect();
    if fields.len() != 9 {
        return Err(format!(
            "{} tab-separated fields, expected 9 (Seq Host Starttime JobRuntime Send Receive Exitval Signal Command)",
            fields.len()
        ));
    }
    fn field<T: std::str::FromStr>(value: &str, name: &str) -> Result<T, String> {
        value
            .trim()
            .parse()
            .map_err(|_| format!("{name} '{value}' is not a number"))
    }
    Ok(Entry {
        seq: field(fields[0], "Seq")?,
        host: fields[1].to_owned(),
        starttime: field(fields[2], "Starttime")?,
        runtime: field(fields[3], "JobRuntime")?,
        send: field(fields[4], "Send")?,
        receive: field(fields[5], "Receive")?,
        exitval: field(fields[6], "Exitval")?,
        signal: field(fields[7], "Signal")?,
        command: unescape(fields[8])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_for_a_command_wins() {
        let log = [
            ("a", false),
            ("b", true),
            ("a", true),
            ("c", false),
            ("b", false),
            ("a", false),
            ("c", true),
        ];
        let entries = log
            .iter()
            .enumerate()
            .map(|(i, &(c, ok))| Outcomes::entry(c, i, ok))
            .collect();
        let outcomes = Outcomes::from_entries(entries);
        assert_eq!(outcomes.len(), 3);
        assert_eq!(outcomes.get("a"), Some(false));
        assert_eq!(outcomes.get("b"), Some(false));
        assert_eq!(outcomes.get("c"), Some(true));
        assert_eq!(outcomes.get("d"), None);
    }

    fn entry(seq: u64, exitval: i32, command: &str) -> Entry {
        Entry {
            seq,
            host: ":".into(),
            starttime: 1_700_000_000.125,
            runtime: 0.5,
            send: 0,
            receive: 3,
            exitval,
            signal: 0,
            command: command.into(),
        }
    }

    #[test]
    fn both_formats_round_trip_and_concatenate() {
        let dir = std::env::temp_dir().join(format!("ply-joblog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let (mut tsv, _) = Joblog::open(&path, JoblogFormat::Tsv).unwrap();
        tsv.write(&entry(1, 0, "echo 'a\tb'\nx\\y")).unwrap();
        tsv.write(&entry(2, 1, "false")).unwrap();
        let (mut json, _) = Joblog::open(&path, JoblogFormat::Json).unwrap();
        json.write(&entry(3, 0, "true")).unwrap();
        // A second shard's TSV log appended, header and all.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!(
            "{HEADER}\n4\t:\t1.000\t   0.100\t0\t0\t0\t0\tsleep 1\n"
        ));
        std::fs::write(&path, &text).unwrap();
        assert!(text.starts_with(HEADER));
        let outcomes = read(&path, &|_| {}).unwrap();
        assert_eq!(outcomes.len(), 4);
        assert_eq!(outcomes.get("echo 'a\tb'\nx\\y"), Some(true));
        assert_eq!(outcomes.get("false"), Some(false));
        assert_eq!(outcomes.get("true"), Some(true));
        assert_eq!(outcomes.get("sleep 1"), Some(true));
        assert_eq!(outcomes.get("sleep 2"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_malformed_line_names_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("ply-joblog-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        for (text, expected) in [
            (
                format!("{HEADER}\n1\t:\t1\t1\t0\t0\t0\t0\tok\n2\t:\tnope\n"),
                ":3: 3 tab-separated fields",
            ),
            (
                "1\t:\tx\t1\t0\t0\t0\t0\tc\n".to_string(),
                ":1: Starttime 'x' is not a number",
            ),
            ("{\"seq\": 1}\n".to_string(), ":1: not a joblog JSON line"),
            (
                "1\t:\t1\t1\t0\t0\t0\t0\tbad\\q\n".to_string(),
                ":1: bad escape",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = read(&path, &|_| {}).unwrap_err();
            assert!(err.starts_with(&path.display().to_string()), "{err}");
            assert!(err.contains(expected), "{err} / {expected}");
        }
        // A torn last line is not an error: that job runs again.
        std::fs::write(&path, "1\t:\t1\t1\t0\t0\t0\t0\tok\n2\t:\t1\t1\t0").unwrap();
        assert_eq!(read(&path, &|_| {}).unwrap().len(), 1);
        assert_eq!(read(&dir.join("missing"), &|_| {}).unwrap().len(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unfinished_last_line_is_cut_off_before_appending() {
        let dir = std::env::temp_dir().join(format!("ply-joblog-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let whole = format!("{HEADER}\n1\t:\t1\t1\t0\t0\t0\t0\tok\n");
        for (text, kept) in [
            // A cut entry; a cut header (no whole line at all); a whole log;
            // a cut line longer than one read-back chunk.
            (format!("{whole}2\t:\t1\t1\t0\t0\t0"), whole.clone()),
            (HEADER[..7].to_string(), String::new()),
            (whole.clone(), whole.clone()),
            (format!("{whole}{}", "x".repeat(10_000)), whole.clone()),
        ] {
            std::fs::write(&path, &text).unwrap();
            let (mut log, cut) = Joblog::open(&path, JoblogFormat::Tsv).unwrap();
            assert_eq!(cut as usize, text.len() - kept.len());
            log.write(&entry(3, 0, "new")).unwrap();
            drop(log);
            let after = std::fs::read_to_string(&path).unwrap();
            let expected_start = if kept.is_empty() {
                format!("{HEADER}\n")
            } else {
                kept.clone()
            };
            assert!(after.starts_with(&expected_start), "{after:?}");
            assert_eq!(after.lines().count(), expected_start.lines().count() + 1);
            for line in after.lines() {
                assert_eq!(line.split('\t').count(), 9, "{line:?}");
            }
            let outcomes = read(&path, &|_| {}).unwrap();
            assert_eq!(outcomes.get("new"), Some(true));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn after_a_failed_write_nothing_more_is_appended() {
        // /dev/full takes no byte: the header write fails, so does every
        // later one, with the reason.
        let Ok((mut log, _)) = Joblog::open(Path::new("/dev/full"), JoblogFormat::Json) else {
            return;
        };
        let err = log.write(&entry(1, 0, "a")).unwrap_err();
        assert!(err.contains("No space left on device"), "{err}");
        let err = log.write(&entry(2, 0, "b")).unwrap_err();
        assert!(err.contains("an earlier write to it failed"), "{err}");
    }
}
