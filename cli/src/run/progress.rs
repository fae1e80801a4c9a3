//! `--bar` / `--eta`: progress on stderr through indicatif, only when stderr
//! is a terminal (a log file gets no control characters).
//!
//! The terminal is written through a [`Sink`], so a terminal that stops
//! taking output (Ctrl-S) never holds ply up: a frame is written only once
//! the previous one is out whole, and dropped otherwise (the next frame
//! shows the same counts, newer).

use std::io::{self, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use parking_lot::Mutex;

use super::sink::Sink;

/// stderr's terminal, drawn on without blocking.
#[derive(Debug)]
struct Terminal {
    sink: Mutex<(Sink, Vec<u8>)>,
}

impl Terminal {
    fn add(&self, bytes: &[u8]) -> io::Result<()> {
        self.sink.lock().1.extend_from_slice(bytes);
        Ok(())
    }

    /// Moves the cursor `n` places (`ESC [ n A|B|C|D`); none for 0, which
    /// terminals read as 1.
    fn cursor(&self, n: usize, direction: char) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.add(format!("\x1b[{n}{direction}").as_bytes())
    }
}

impl TermLike for Terminal {
    fn width(&self) -> u16 {
        // SAFETY: an all-zero winsize is valid; TIOCGWINSZ fills it in.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes a winsize to the valid pointer given.
        let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_col > 0 {
            size.ws_col
        } else {
            80
        }
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.add(s.as_bytes())?;
        self.add(b"\n")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.add(s.as_bytes())
    }

    fn clear_line(&self) -> io::Result<()> {
        self.add(b"\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        let mut guard = self.sink.lock();
        let (sink, frame) = &mut *guard;
        sink.flush();
        if sink.is_empty() {
            sink.push(frame);
        }
        frame.clear();
        Ok(())
    }
}

/// The progress display.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over `total` jobs, or `None` when stderr is not a terminal.
    pub fn start(total: u64, bar: bool) -> Option<Progress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let template = if bar {
            "{wide_bar} {pos}/{len} jobs, {elapsed} elapsed, ETA {eta}"
        } else {
            "{pos}/{len} jobs done, {elapsed} elapsed, ETA {eta}"
        };
        let style =
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        let terminal = Terminal {
            sink: Mutex::new((Sink::stderr(), Vec::new())),
        };
        let target = ProgressDrawTarget::term_like(Box::new(terminal));
        let progress = ProgressBar::with_draw_target(Some(total), target).with_style(style);
        progress.enable_steady_tick(Duration::from_millis(200));
        Some(Progress { bar: progress })
    }

    /// A job finished.
    pub fn done(&self) {
        self.bar.inc(1);
    }

    /// A job was skipped (`--resume`): no longer expected.
    pub fn skipped(&self) {
        if let Some(len) = self.bar.length() {
            self.bar.set_length(len.saturating_sub(1));
        }
    }

    /// Redraws if due (indicatif rate-limits).
    pub fn tick(&self) {
        self.bar.tick();
    }

    /// Clears the display.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
