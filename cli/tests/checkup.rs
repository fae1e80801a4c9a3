//! `ply bench checkup`: the rows and their definitions, `--save`,
//! `--compare` (and `--load`, which compares two saved runs without
//! measuring), and bad saved files. The tests check the format and the
//! regression logic, never a timing.

mod common;

use common::*;

/// The rows a check-up measures after its floor, as named in the table.
const ROWS: [&str; 4] = [
    "pipe round trip, two processes",
    "fork + exit + wait",
    "futex wake-up of all waiters",
    "context switch, one CPU",
];

/// A saved check-up: the floor, then `rows` (name, samples in ns).
fn saved(floor: &[f64], rows: &[(&str, &[f64])]) -> String {
    let figure = |name: &str, samples: &[f64]| serde_json::json!({ "name": name, "matches": "a tool", "samples_ns": samples });
    serde_json::json!({
        "format": "ply-checkup-1",
        "machine": "test machine",
        "cpus": 2,
        "date": "2026-11-30T00:00Z",
        "floor": figure("cache-line round trip (the floor)", floor),
        "rows": rows.iter().map(|(n, s)| figure(n, s)).collect::<Vec<_>>(),
    })
    .to_string()
}

#[test]
fn a_checkup_saves_every_row_and_compares_with_itself() {
    let dir = TempDir::new("checkup");
    let file = dir.path().join("base.json");
    let file = file.to_str().unwrap();
    let out = ply(&["bench", "checkup", "--save", file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ply bench checkup: "), "{table}");
    assert!(lines[1].contains("x floor") && lines[1].contains("defined as"));
    assert!(lines[2].starts_with("cache-line round trip (the floor)"));
    assert!(lines[2].contains("1.0x"), "{table}");
    for (line, row) in lines[3..].iter().zip(ROWS) {
        assert!(line.starts_with(row), "{row} missing from:\n{table}");
        assert!(line.contains('x'), "{line}");
    }
    assert_eq!(lines.len(), 3 + ROWS.len(), "{table}");
    assert!(lines[3].contains("perf bench sched pipe"));
    assert!(lines[4].contains("lat_proc fork"));
    assert!(lines[5].contains("perf bench futex wake"));
    assert!(lines[6].contains("lat_ctx"));
    // The file holds every run's figure of every row.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(v["format"], "ply-checkup-1");
    let rows = v["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ROWS);
    for figure in rows.iter().chain([&v["floor"]]) {
        let samples = figure["samples_ns"].as_array().unwrap();
        assert_eq!(samples.len(), 5, "{figure}");
        assert!(samples.iter().all(|s| s.as_f64().unwrap() > 0.0));
    }
    // Compared with itself (loaded, not measured): nothing moves.
    let out = ply(&["bench", "--load", file, "--compare", file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("compared with {file} (")), "{text}");
    assert_eq!(text.matches("within the spread").count(), 1 + ROWS.len());
    assert!(text.ends_with("no row regressed beyond its run-to-run spread\n"));
}

#[test]
fn compare_names_the_rows_that_moved_beyond_their_spread() {
    let dir = TempDir::new("checkup-compare");
    let old = dir.path().join("old.json");
    let new = dir.path().join("new.json");
    std::fs::write(
        &old,
        saved(
            &[50.0, 52.0, 48.0],
            &[
                ("pipe", &[10_000.0, 10_200.0, 9_800.0]), // spread 400
                ("fork", &[100_000.0, 101_000.0, 99_000.0]),
                ("futex", &[5_000.0, 5_000.0, 5_000.0]),
                ("gone", &[1.0]),
            ],
        ),
    )
    .unwrap();
    std::fs::write(
        &new,
        saved(
            &[50.0, 51.0, 49.0],
            &[
                ("pipe", &[10_500.0, 10_600.0, 10_400.0]), // +500 > 400: regressed
                ("fork", &[100_900.0, 101_000.0, 100_800.0]), // +900 < 2000: same
                ("futex", &[4_000.0, 4_100.0, 3_900.0]),   // -1000 > 200: improved
            ],
        ),
    )
    .unwrap();
    let out = ply(&[
        "bench",
        "--load",
        new.to_str().unwrap(),
        "--compare",
        old.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let row = |name: &str| {
        text.lines()
            .skip_while(|l| !l.starts_with("compared with"))
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in:\n{text}"))
            .to_owned()
    };
    assert!(row("pipe").contains("regressed (beyond the spread 400.0 ns)"));
    assert!(row("pipe").contains("+5.0%"));
    assert!(row("fork").contains("within the spread 2.00 µs"));
    assert!(row("futex").contains("improved (beyond the spread 200.0 ns)"));
    assert!(row("cache-line").contains("within the spread"));
    assert!(!text.contains("gone"), "a row in one run only: {text}");
    assert_eq!(text.lines().last(), Some("regressed: pipe"));
}

#[test]
fn missing_and_corrupt_saved_files_are_one_line_and_exit_2() {
    let dir = TempDir::new("checkup-bad");
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let good = path("good.json");
    std::fs::write(&good, saved(&[50.0], &[("pipe", &[9_000.0])])).unwrap();
    let cases: [(&str, &[u8], &str); 7] = [
        ("empty.json", b"", "not a saved check-up"),
        (
            "cut.json",
            b"{\"format\": \"ply-checkup-1\", \"rows\": [",
            "not a saved check-up",
        ),
        ("binary.json", b"\xff\xfe\x00garbage", "good.json"),
        (
            "other.json",
            b"{\"format\": \"other\"}",
            "not a saved check-up",
        ),
        ("array.json", b"[1, 2, 3]", "not a saved check-up"),
        ("negative.json", b"", "is not a time in nanoseconds"),
        ("nofloor.json", b"", "the floor has no samples"),
    ];
    for (name, content, expected) in cases {
        let file = path(name);
        match name {
            "negative.json" => {
                std::fs::write(&file, saved(&[50.0], &[("pipe", &[-3.0])])).unwrap();
            }
            "nofloor.json" => std::fs::write(&file, saved(&[], &[])).unwrap(),
            _ => std::fs::write(&file, content).unwrap(),
        }
        let expected = if name == "binary.json" {
            name
        } else {
            expected
        };
        assert_misuse_code(&["bench", "--load", &file], 2, expected);
        assert_misuse_code(&["bench", "--load", &good, "--compare", &file], 2, name);
        assert_misuse_code(&["bench", "--load", &good, "--compare", &file], 2, expected);
    }
    // A wrong format that is otherwise a whole run.
    let other = path("other-format.json");
    std::fs::write(
        &other,
        saved(&[50.0], &[]).replace("ply-checkup-1", "ply-checkup-9"),
    )
    .unwrap();
    assert_misuse_code(&["bench", "--load", &other], 2, "format 'ply-checkup-9'");
    // Missing files, and a --save nowhere: before anything is measured.
    let missing = path("missing.json");
    assert_misuse_code(
        &["bench", "checkup", "--compare", &missing],
        2,
        "missing.json",
    );
    assert_misuse_code(&["bench", "--load", &missing], 2, "missing.json");
    let nowhere = path("no-such-dir/run.json");
    assert_misuse_code(
        &["bench", "checkup", "--save", &nowhere],
        2,
        "not a directory",
    );
    // Options that do not go together.
    assert_misuse_code(&["bench", "queues", "--save", &good], 2, "checkup");
    assert_misuse_code(
        &["bench", "--load", &good, "--compare", &good, "--json"],
        2,
        "--json",
    );
    assert_misuse_code(&["bench", "checkup", "--plot", &path("x.png")], 2, ".svg");
    assert_misuse_code(&["bench", "--plot", &path("x.svg")], 2, "--also");
    // Nothing was written by the failures above.
    let mut left = dir.entries();
    left.sort();
    assert!(!left.iter().any(|e| e.ends_with(".svg")), "{left:?}");
}

#[test]
fn help_defines_each_row_and_the_tool_it_matches() {
    let out = ply(&["bench", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for needle in [
        "cache-line round trip",
        "the floor",
        "perf bench sched pipe",
        "lmbench lat_pipe",
        "lat_proc fork",
        "perf bench futex wake",
        "lat_ctx",
        "--save",
        "--compare",
        "run-to-run spread",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn saved_checkups_are_drawn_side_by_side_one_series_per_run() {
    let dir = TempDir::new("checkup-plot");
    let rows: [(&str, &[f64]); 3] = [
        ("pipe", &[10_000.0]),
        ("fork", &[100_000.0]),
        ("futex", &[5_000.0]),
    ];
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(&a, saved(&[50.0], &rows)).unwrap();
    std::fs::write(&b, saved(&[40.0], &rows)).unwrap();
    let svg = dir.path().join("runs.svg");
    let out = ply(&[
        "bench",
        "--plot",
        svg.to_str().unwrap(),
        "--also",
        a.to_str().unwrap(),
        "--also",
        b.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let svg = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG parses");
    // Each run is a series of filled bars in a colour of its own: one bar
    // per row, and its legend sample.
    let mut bars: std::collections::HashMap<&str, usize> = Default::default();
    for n in doc.descendants().filter(|n| n.has_tag_name("rect")) {
        let fill = n.attribute("fill").unwrap_or("");
        if fill != "none" && fill != "#FFFFFF" && n.attribute("opacity") == Some("1") {
            *bars.entry(fill).or_default() += 1;
        }
    }
    assert_eq!(bars.len(), 2, "one series per run: {bars:?}");
    assert!(bars.values().all(|&n| n == rows.len() + 1), "{bars:?}");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::trim))
        .collect();
    for name in [
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "pipe",
        "fork",
        "futex",
    ] {
        assert!(texts.contains(&name), "{name} not in {texts:?}");
    }
}

/// A "saved check-up" that never ends (`/dev/zero`, `/dev/urandom`) or is
/// far too big is refused after a bounded read, with one line and exit 2:
/// it was read whole into memory, until the allocator aborted (or, for
/// `/dev/urandom`, until killed). Run under a 1 GB address-space limit so
/// the old behaviour fails fast instead of eating the machine's memory.
#[test]
fn an_endless_saved_file_is_refused_after_a_bounded_read() {
    let ply = env!("CARGO_BIN_EXE_ply");
    let dir = TempDir::new("checkup-endless");
    let good = dir.path().join("good.json");
    std::fs::write(&good, saved(&[50.0], &[("pipe", &[9_000.0])])).unwrap();
    let good = good.to_str().unwrap();
    for (args, file) in [
        (String::from("--load /dev/zero"), "/dev/zero"),
        (
            format!("--load {good} --compare /dev/urandom"),
            "/dev/urandom",
        ),
        (format!("--plot {good}.svg --also /dev/zero"), "/dev/zero"),
    ] {
        let mut child = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                &format!("ulimit -v 1000000 && exec {ply} bench {args}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_or_kill(&mut child, std::time::Duration::from_secs(30));
        let err = drain_stderr(&mut child);
        assert_eq!(status.code(), Some(2), "{args}: {err}");
        assert_eq!(err.lines().count(), 1, "{args}: {err}");
        assert!(
            err.starts_with(&format!("error: {file}: larger than")),
            "{args}: {err}"
        );
    }
    assert_eq!(dir.entries(), ["good.json"], "no picture drawn");
}

/// A picture that cannot be written (a full disk: `/dev/full`) is one line
/// and exit 1. plotters writes the SVG through a `BufWriter` whose flush on
/// drop ignores errors, so a small picture was lost while ply said nothing
/// and exited 0.
#[test]
fn a_picture_on_a_full_disk_is_an_error() {
    let dir = TempDir::new("checkup-full");
    let good = dir.path().join("good.json");
    std::fs::write(&good, saved(&[50.0], &[("pipe", &[9_000.0])])).unwrap();
    let full = dir.path().join("full.svg");
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    for args in [
        &[
            "bench",
            "--plot",
            full.to_str().unwrap(),
            "--also",
            good.to_str().unwrap(),
        ][..],
        &[
            "bench",
            "--load",
            good.to_str().unwrap(),
            "--plot",
            full.to_str().unwrap(),
        ],
    ] {
        let out = ply(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{args:?}: {err}");
    }
}
