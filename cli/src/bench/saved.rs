//! A check-up run as data: printed as a table, saved to a file
//! (`--save`), and compared with a saved run (`--compare`), row by row,
//! each change held against the rows' own run-to-run spread.
//!
//! A saved run is one JSON object: `{"format": "ply-checkup-1", "machine",
//! "cpus", "date", "floor": {figure}, "rows": [{figure}, ..]}`, each figure
//! `{"name", "matches", "samples_ns": [..]}` — every run's figure, so the
//! spread can be recomputed from the file.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::report::{Align, Table};

/// The `format` field of a saved run.
const FORMAT: &str = "ply-checkup-1";

/// The largest saved check-up read, in bytes (one is a few KiB).
const MAX_SAVED: u64 = 16 << 20;

/// One figure: what it is, which tool's figure it matches, nanoseconds per
/// operation in each run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub matches: String,
    pub samples_ns: Vec<f64>,
}

impl Figure {
    fn sorted(&self) -> Vec<f64> {
        let mut s = self.samples_ns.clone();
        s.sort_by(f64::total_cmp);
        s
    }

    /// The median run, in nanoseconds (`NaN` if it could not be measured).
    pub fn median(&self) -> f64 {
        let s = self.sorted();
        if s.is_empty() {
            return f64::NAN;
        }
        if s.len() % 2 == 1 {
            s[s.len() / 2]
        } else {
            (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
        }
    }

    /// The fastest and slowest runs.
    pub fn range(&self) -> (f64, f64) {
        let s = self.sorted();
        (
            s.first().copied().unwrap_or(f64::NAN),
            s.last().copied().unwrap_or(f64::NAN),
        )
    }

    /// The run-to-run spread: slowest minus fastest.
    pub fn spread(&self) -> f64 {
        let (lo, hi) = self.range();
        hi - lo
    }
}

/// A whole check-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub machine: String,
    pub cpus: usize,
    pub date: String,
    pub floor: Figure,
    pub rows: Vec<Figure>,
}

/// The file form of a [`Run`].
#[derive(Serialize, Deserialize)]
struct Saved {
    format: String,
    #[serde(flatten)]
    run: Run,
}

/// Nanoseconds as text in a fitting unit.
pub fn duration(ns: f64) -> String {
    if !ns.is_finite() {
        "-".into()
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

impl Run {
    /// The check-up as a table: each row's median, range, and multiple of
    /// the floor, and which tool's figure it matches.
    pub fn to_table(&self) -> String {
        let floor = self.floor.median();
        let mut table = Table::new(&[
            ("", Align::Left),
            ("median", Align::Right),
            ("range", Align::Right),
            ("x floor", Align::Right),
            ("defined as", Align::Left),
        ]);
        for f in std::iter::once(&self.floor).chain(&self.rows) {
            let (lo, hi) = f.range();
            table.row(vec![
                f.name.clone(),
                duration(f.median()),
                format!("{}..{}", duration(lo), duration(hi)),
                format!("{:.1}x", f.median() / floor),
                f.matches.clone(),
            ]);
        }
        format!(
            "ply bench checkup: {} ({} CPUs), {}; medians of {} runs\n{}",
            self.machine,
            self.cpus,
            self.date,
            self.floor.samples_ns.len(),
            table.render()
        )
    }

    /// The run as JSON (the saved form).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&Saved {
            format: FORMAT.into(),
            run: self.clone(),
        })
        .expect("a run serializes")
    }

    /// Writes the run to `path`.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, format!("{}\n", self.to_json()))
            .map_err(|e| format!("saving the check-up to {}: {e}", path.display()))
    }

    /// Reads a run saved by [`save`](Self::save): at most [`MAX_SAVED`]
    /// bytes, so a file without end (`/dev/zero`) is refused, not read
    /// until memory runs out.
    pub fn load(path: &Path) -> Result<Run, String> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_SAVED + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.len() as u64 > MAX_SAVED {
            return Err(format!(
                "{}: larger than {} MiB: not a saved check-up",
                path.display(),
                MAX_SAVED >> 20
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{}: not UTF-8: not a saved check-up", path.display()))?;
        let saved: Saved = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a saved check-up: {e}", path.display()))?;
        if saved.format != FORMAT {
            return Err(format!(
                "{}: format '{}', expected '{FORMAT}'",
                path.display(),
                saved.format
            ));
        }
        let run = saved.run;
        for figure in std::iter::once(&run.floor).chain(&run.rows) {
            if let Some(bad) = figure
                .samples_ns
                .iter()
                .find(|&&ns| !(ns.is_finite() && ns > 0.0))
            {
                return Err(format!(
                    "{}: row '{}': {bad} is not a time in nanoseconds",
                    path.display(),
                    figure.name
                ));
            }
        }
        if run.floor.samples_ns.is_empty() {
            return Err(format!(
                "{}: the floor has no samples (nothing can be a multiple of it)",
                path.display()
            ));
        }
        Ok(run)
    }
}

/// How a row moved between two runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Slower by more than the spread.
    Regressed,
    /// Faster by more than the spread.
    Improved,
    /// Within the spread.
    Same,
}

/// Compares a row's two runs: a change counts only beyond the larger of
/// the two runs' own spreads (slowest minus fastest run).
pub fn verdict(then: &Figure, now: &Figure) -> Verdict {
    let spread = then.spread().max(now.spread());
    let change = now.median() - then.median();
    if change > spread {
        Verdict::Regressed
    } else if -change > spread {
        Verdict::Improved
    } else {
        Verdict::Same
    }
}

/// The comparison of `now` with the saved run `then` (from `source`):
/// every row in both, its medians, the change, its multiple of each run's
/// floor, and the verdict; then a summary line naming the regressions.
pub fn compare(then: &Run, now: &Run, source: &str) -> String {
    let mut table = Table::new(&[
        ("", Align::Left),
        ("then", Align::Right),
        ("now", Align::Right),
        ("change", Align::Right),
        ("x floor then/now", Align::Right),
        ("verdict", Align::Left),
    ]);
    let mut regressed = Vec::new();
    let rows = std::iter::once((&then.floor, &now.floor)).chain(
        now.rows
            .iter()
            .filter_map(|n| then.rows.iter().find(|t| t.name == n.name).map(|t| (t, n))),
    );
    for (t, n) in rows {
        let v = verdict(t, n);
        if v == Verdict::Regressed {
            regressed.push(n.name.clone());
        }
        let spread = t.spread().max(n.spread());
        table.row(vec![
            n.name.clone(),
            duration(t.median()),
            duration(n.median()),
            format!("{:+.1}%", (n.median() / t.median() - 1.0) * 100.0),
            format!(
                "{:.1}x / {:.1}x",
                t.median() / then.floor.median(),
                n.median() / now.floor.median()
            ),
            match v {
                Verdict::Regressed => format!("regressed (beyond the spread {})", duration(spread)),
                Verdict::Improved => format!("improved (beyond the spread {})", duration(spread)),
                Verdict::Same => format!("within the spread {}", duration(spread)),
            },
        ]);
    }
    let mut out = format!(
        "compared with {source} ({}, {} CPUs, {}):\n{}",
        then.machine,
        then.cpus,
        then.date,
        table.render()
    );
    if regressed.is_empty() {
        out.push_str("no row regressed beyond its run-to-run spread\n");
    } else {
        let _ = writeln!(out, "regressed: {}", regressed.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(name: &str, samples: &[f64]) -> Figure {
        Figure {
            name: name.into(),
            matches: "a tool".into(),
            samples_ns: samples.to_vec(),
        }
    }

    fn run(floor: &[f64], rows: &[(&str, &[f64])]) -> Run {
        Run {
            machine: "test machine".into(),
            cpus: 2,
            date: "2026-12-01T00:00Z".into(),
            floor: fig("floor", floor),
            rows: rows.iter().map(|(n, s)| fig(n, s)).collect(),
        }
    }

    #[test]
    fn a_change_counts_only_beyond_the_larger_spread() {
        let then = fig("pipe", &[100.0, 102.0, 98.0, 101.0, 99.0]); // spread 4
        assert_eq!(verdict(&then, &fig("pipe", &[104.0; 5])), Verdict::Same);
        assert_eq!(
            verdict(&then, &fig("pipe", &[104.5; 5])),
            Verdict::Regressed
        );
        assert_eq!(verdict(&then, &fig("pipe", &[95.5; 5])), Verdict::Improved);
        // A noisy new run widens the band: +10 within a spread of 20.
        let noisy = fig("pipe", &[90.0, 110.0, 110.0, 110.0, 110.0]);
        assert_eq!(verdict(&then, &noisy), Verdict::Same);
        assert_eq!(fig("x", &[3.0, 1.0, 2.0, 10.0]).median(), 2.5);
    }

    #[test]
    fn the_comparison_names_each_row_and_the_regressions() {
        let then = run(
            &[50.0; 5],
            &[("pipe", &[1000.0; 5]), ("fork", &[9000.0; 5])],
        );
        let now = run(
            &[50.0; 5],
            &[
                ("pipe", &[1500.0; 5]),
                ("fork", &[9000.0; 5]),
                ("new", &[1.0]),
            ],
        );
        let text = compare(&then, &now, "old.json");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "compared with old.json (test machine, 2 CPUs, 2026-12-01T00:00Z):"
        );
        assert!(lines[1].contains("then") && lines[1].contains("verdict"));
        assert!(lines[2].starts_with("floor") && lines[2].contains("within the spread"));
        assert!(lines[3].starts_with("pipe"), "{text}");
        assert!(lines[3].contains("1.00 µs") && lines[3].contains("1.50 µs"));
        assert!(lines[3].contains("+50.0%") && lines[3].contains("20.0x / 30.0x"));
        assert!(lines[3].contains("regressed (beyond the spread 0.0 ns)"));
        assert!(lines[4].starts_with("fork") && lines[4].contains("within the spread"));
        // A row in only one run is not compared.
        assert!(!text.contains("new"));
        assert_eq!(lines[5], "regressed: pipe");
        assert_eq!(lines.len(), 6);
        let same = compare(&then, &then, "old.json");
        assert!(same.ends_with("no row regressed beyond its run-to-run spread\n"));
    }

    #[test]
    fn a_saved_run_reads_back_the_same_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("ply-saved-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.json");
        let r = run(&[40.0, 41.0], &[("pipe", &[900.0, 950.0, 1000.0])]);
        r.save(&path).unwrap();
        assert_eq!(Run::load(&path).unwrap(), r);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"format\": \"ply-checkup-1\""));
        std::fs::write(&path, text.replace("ply-checkup-1", "other")).unwrap();
        let err = Run::load(&path).unwrap_err();
        assert!(err.contains("format 'other'"), "{err}");
        std::fs::write(&path, "{").unwrap();
        assert!(
            Run::load(&path)
                .unwrap_err()
                .contains("not a saved check-up")
        );
        assert!(
            Run::load(&dir.join("missing"))
                .unwrap_err()
                .contains("missing")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_table_shows_each_row_as_a_multiple_of_the_floor() {
        let r = run(&[50.0; 3], &[("pipe", &[5000.0, 5100.0, 4900.0])]);
        let text = r.to_table();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ply bench checkup: test machine (2 CPUs)"));
        assert!(lines[2].starts_with("floor") && lines[2].contains("1.0x"));
        assert!(lines[3].contains("5.00 µs") && lines[3].contains("4.90 µs..5.10 µs"));
        assert!(lines[3].contains("100.0x") && lines[3].ends_with("a tool"));
    }
}
