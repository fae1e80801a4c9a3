//! The result of a `ply bench` family: rates with their spread, printed as a
//! table (each row against the last row of its group, the std baseline) or as
//! one JSON object.

use std::fmt::Write as _;
use std::time::Duration;

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
    /// A human-readable table: per group, operations per second (median and
    /// range, in a unit fitting the group) and the ratio to the group's last row.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.headline);
        let mut groups: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !groups.contains(&r.group) {
                groups.push(r.group);
            }
        }
        for group in groups {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.group == group).collect();
            let base = rows.last().map_or(1.0, |r| r.median);
            // A unit that keeps the group's numbers readable.
            // Chosen by the slowest row, so no row prints as 0.0.
            let low = rows.iter().map(|r| r.median).fold(f64::INFINITY, f64::min);
            let (scale, unit) = if low >= 1e6 {
                (1e6, "M/s")
            } else if low >= 1e3 {
                (1e3, "k/s")
            } else {
                (1.0, "/s")
            };
            let _ = writeln!(
                out,
                "{:<36} {:>12} {:>20} {:>8}",
                group, unit, "range", "vs last"
            );
            for r in rows {
                let _ = writeln!(
                    out,
                    "  {:<34} {:>12.1} {:>20} {:>7.1}x",
                    r.name,
                    r.median / scale,
                    format!("{:.1}..{:.1}", r.min / scale, r.max / scale),
                    r.median / base
                );
            }
        }
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
