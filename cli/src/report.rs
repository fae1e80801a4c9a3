//! What `ply demo` and `ply bench` print: a [`Table`] (columns sized to their
//! contents, optional section lines), and a bench family's [`Report`] of rates
//! with their spread, printed as a table (each row against the last row of its
//! group, the std baseline) or as one JSON object.

use std::fmt::Write as _;
use std::time::Duration;

/// How a column's cells line up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One line of a table: cells under the columns, or a section title.
enum Line {
    Cells(Vec<String>),
    Section(String),
}

/// A plain-text table: a header, rows and section titles; every column as
/// wide as its widest cell, cells in a row separated by two spaces.
pub struct Table {
    columns: Vec<(String, Align)>,
    lines: Vec<Line>,
}

impl Table {
    /// A table with these column titles and alignments.
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            columns: columns.iter().map(|&(t, a)| (t.to_owned(), a)).collect(),
            lines: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank.
    pub fn row(&mut self, cells: Vec<String>) {
        self.lines.push(Line::Cells(cells));
    }

    /// Adds a section title, printed on its own line.
    pub fn section(&mut self, title: impl Into<String>) {
        self.lines.push(Line::Section(title.into()));
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|(t, _)| t.chars().count())
            .collect();
        for line in &self.lines {
            if let Line::Cells(cells) = line {
                for (w, cell) in widths.iter_mut().zip(cells) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let format_row = |cells: &mut dyn Iterator<Item = &str>| -> String {
            let mut text = String::new();
            for (i, ((_, align), width)) in self.columns.iter().zip(&widths).enumerate() {
                let cell = cells.next().unwrap_or("");
                if i > 0 {
                    text.push_str("  ");
                }
                let last = i + 1 == self.columns.len();
                match align {
                    Align::Right => {
                        let _ = write!(text, "{cell:>width$}");
                    }
                    Align::Left if last => text.push_str(cell),
                    Align::Left => {
                        let _ = write!(text, "{cell:<width$}");
                    }
                }
            }
            text.truncate(text.trim_end().len());
            text.push('\n');
            text
        };
        let mut out = format_row(&mut self.columns.iter().map(|(t, _)| t.as_str()));
        for line in &self.lines {
            match line {
                Line::Cells(cells) => {
                    out.push_str(&format_row(&mut cells.iter().map(String::as_str)))
                }
                Line::Section(title) => {
                    out.push_str(title);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// One measured case: operations per second over several runs.
pub struct Row {
    /// The comparison this row belongs to (rows are compared within a group).
    pub group: &'static str,
    pub name: &'static str,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Row {
    /// Runs `once` `runs` times; each run does `ops` operations and returns
    /// its duration. Records the median and range of the rates.
    pub fn measure(
        group: &'static str,
        name: &'static str,
        runs: usize,
        ops: u64,
        mut once: impl FnMut() -> Duration,
    ) -> Row {
        let mut rates: Vec<f64> = (0..runs.max(1))
            .map(|_| ops as f64 / once().max(Duration::from_nanos(1)).as_secs_f64())
            .collect();
        rates.sort_by(f64::total_cmp);
        Row {
            group,
            name,
            median: rates[rates.len() / 2],
            min: rates[0],
            max: rates[rates.len() - 1],
        }
    }
}

/// The first failure seen inside a measurement (which can only return its
/// time): the run reports it instead of a rate measured on failures.
#[derive(Default)]
pub struct FirstFailure(Option<String>);

impl FirstFailure {
    /// Records `result`'s error if it is the first.
    pub fn note<T, E: std::fmt::Display>(&mut self, what: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.0.get_or_insert_with(|| format!("{what}: {e}"));
                None
            }
        }
    }

    /// Whether a failure was noted.
    pub fn failed(&self) -> bool {
        self.0.is_some()
    }

    /// `Err` with the first failure, if any.
    pub fn check(self) -> Result<(), String> {
        self.0.map_or(Ok(()), Err)
    }
}

/// A whole family's results.
pub struct Report {
    pub family: &'static str,
    /// The table's first line: what was measured, how.
    pub headline: String,
    /// Parameters of the run, emitted as top-level JSON fields.
    pub params: Vec<(&'static str, serde_json::Value)>,
    pub rows: Vec<Row>,
    /// Lines printed under the table (measurements that are not rates, such
    /// as memory; their values are in `params` for JSON).
    pub notes: Vec<String>,
}

impl Report {
    /// A human-readable table: per group (a section line), operations per
    /// second (median and range, in a unit fitting the group) and the ratio to
    /// the group's last row.
    pub fn to_table(&self) -> String {
        let mut table = Table::new(&[
            ("", Align::Left),
            ("median", Align::Right),
            ("range", Align::Right),
            ("vs last", Align::Right),
        ]);
        let mut groups: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !groups.contains(&r.group) {
                groups.push(r.group);
            }
        }
        for group in groups {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.group == group).collect();
            let base = rows.last().map_or(1.0, |r| r.median);
            // A unit that keeps the group's numbers readable, chosen by the
            // slowest row so no row prints as 0.0.
            let low = rows.iter().map(|r| r.median).fold(f64::INFINITY, f64::min);
            let (scale, unit) = if low >= 1e6 {
                (1e6, "M/s")
            } else if low >= 1e3 {
                (1e3, "k/s")
            } else {
                (1.0, "/s")
            };
            table.section(group);
            for r in rows {
                table.row(vec![
                    format!("  {}", r.name),
                    format!("{:.1} {unit}", r.median / scale),
                    format!("{:.1}..{:.1}", r.min / scale, r.max / scale),
                    format!("{:.1}x", r.median / base),
                ]);
            }
        }
        let mut out = format!("{}\n{}", self.headline, table.render());
        for note in &self.notes {
            let _ = writeln!(out, "{note}");
        }
        out
    }

    /// One JSON object: `{"family": .., <params>, "results": [{"group", "name",
    /// "per_sec_median", "per_sec_min", "per_sec_max"}, ..]}`; rates are
    /// rounded to whole operations per second.
    pub fn to_json(&self) -> String {
        let mut object = serde_json::Map::new();
        object.insert("family".into(), self.family.into());
        for (key, value) in &self.params {
            object.insert((*key).into(), value.clone());
        }
        let results = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "group": r.group,
                    "name": r.name,
                    "per_sec_median": r.median.round(),
                    "per_sec_min": r.min.round(),
                    "per_sec_max": r.max.round(),
                })
            })
            .collect();
        object.insert("results".into(), serde_json::Value::Array(results));
        serde_json::Value::Object(object).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell_and_sections_stand_alone() {
        let mut t = Table::new(&[
            ("name", Align::Left),
            ("n", Align::Right),
            ("note", Align::Left),
        ]);
        t.section("group");
        t.row(vec!["a".into(), "1000".into(), "x".into()]);
        t.row(vec!["long name".into(), "2".into()]);
        assert_eq!(
            t.render(),
            "name          n  note\ngroup\na          1000  x\nlong name     2\n"
        );
    }
}
