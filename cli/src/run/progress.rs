//! `--bar` / `--eta`: progress on stderr through indicatif, only when stderr
//! is a terminal (a log file gets no control characters).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
        let progress = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(style);
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
