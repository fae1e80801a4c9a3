//! Pictures, drawn with plotters into SVG files: the speed-up curves of
//! `ply demo <workload> --scaling`, and saved check-ups side by side
//! (`ply bench --plot`).
//!
//! Each series is one polyline (a curve) or one set of bars, with its name
//! in the legend; the ideal speed-up is a dashed line. Text is written as
//! SVG text, so no font files are needed.

use std::path::Path;

use plotters::prelude::*;

use crate::bench::saved::Run;

/// Colours of the series, in order.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// A plotters error as one line.
fn error(path: &Path, e: impl std::fmt::Display) -> String {
    format!("drawing {}: {e}", path.display())
}

/// Writes a drawn picture to `path`. plotters' own file output flushes
/// through a `BufWriter` dropped with its error ignored, so a small picture
/// on a full disk would be lost without a word: pictures are drawn into a
/// string and written here.
fn save(path: &Path, svg: &str) -> Result<(), String> {
    std::fs::write(path, svg).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Draws speed-up against workers: one curve per series (backend), with
/// the ideal speed-up (= workers) dashed.
pub fn scaling(
    path: &Path,
    title: &str,
    series: &[(String, Vec<(usize, f64)>)],
) -> Result<(), String> {
    let mut svg = String::new();
    draw_scaling(&mut svg, path, title, series)?;
    save(path, &svg)
}

fn draw_scaling(
    svg: &mut String,
    path: &Path,
    title: &str,
    series: &[(String, Vec<(usize, f64)>)],
) -> Result<(), String> {
    let max_workers = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(2);
    let max_speedup = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(max_workers as f64, f64::max);
    let root = SVGBackend::with_string(svg, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(1f64..max_workers as f64, 0f64..max_speedup * 1.1)
        .map_err(|e| error(path, e))?;
    chart
        .configure_mesh()
        .x_desc("workers")
        .y_desc("speed-up over one thread")
        .draw()
        .map_err(|e| error(path, e))?;
    let ideal = [(1.0, 1.0), (max_workers as f64, max_workers as f64)];
    chart
        .draw_series(DashedLineSeries::new(ideal, 8, 6, BLACK.stroke_width(1)))
        .map_err(|e| error(path, e))?
        .label("ideal")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
    for (i, (name, points)) in series.iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(w, s)| (w as f64, s)),
                c.stroke_width(2),
            ))
            .map_err(|e| error(path, e))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(w, s)| Circle::new((w as f64, s), 4, c.filled())),
            )
            .map_err(|e| error(path, e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(path, e))?;
    root.present().map_err(|e| error(path, e))
}

/// Draws saved check-ups side by side: for each row, one bar per run, its
/// height the row's median as a multiple of that run's floor (log scale).
pub fn checkups(path: &Path, runs: &[(String, Run)]) -> Result<(), String> {
    let mut svg = String::new();
    draw_checkups(&mut svg, path, runs)?;
    save(path, &svg)
}

fn draw_checkups(svg: &mut String, path: &Path, runs: &[(String, Run)]) -> Result<(), String> {
    let rows: Vec<&str> = runs
        .first()
        .map(|(_, r)| r.rows.iter().map(|f| f.name.as_str()).collect())
        .unwrap_or_default();
    let multiple = |run: &Run, name: &str| {
        run.rows
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.median() / run.floor.median())
            .filter(|m| m.is_finite() && *m > 0.0)
    };
    let top = runs
        .iter()
        .flat_map(|(_, r)| rows.iter().filter_map(|n| multiple(r, n)))
        .fold(10.0, f64::max);
    let slots = rows.len() * (runs.len() + 1);
    let root = SVGBackend::with_string(svg, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "ply bench checkup: each figure as a multiple of the machine's floor",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..slots.max(1) as f64, (1f64..top * 2.0).log_scale())
        .map_err(|e| error(path, e))?;
    let per_row = runs.len() + 1;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("x the cache-line round trip")
        .draw()
        .map_err(|e| error(path, e))?;
    // Each row's name under its group of bars.
    chart
        .draw_series(rows.iter().enumerate().map(|(k, name)| {
            let short = name.split(',').next().unwrap_or(name).to_owned();
            Text::new(
                short,
                ((k * per_row) as f64 + 0.3, top * 1.5),
                ("sans-serif", 13),
            )
        }))
        .map_err(|e| error(path, e))?;
    for (i, (label, run)) in runs.iter().enumerate() {
        let c = colour(i);
        let bars = rows.iter().enumerate().filter_map(|(k, name)| {
            let m = multiple(run, name)?;
            let x = (k * per_row + i) as f64 + 0.5;
            Some(Rectangle::new([(x, 1.0), (x + 0.9, m)], c.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(|e| error(path, e))?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(path, e))?;
    root.present().map_err(|e| error(path, e))
}
