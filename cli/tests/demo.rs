//! End-to-end tests of `ply demo`: every workload on every backend at small
//! sizes with results checked, JSON fields, misuse exit codes, and Ctrl-C
//! during `copy` leaving neither temporary files nor child processes.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, ply, stderr};

/// Runs a demo with `--json -j 2` on all backends; checks exit 0, three runs in
/// order, agreeing results; returns the runs.
fn demo_json(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["demo"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "-j", "2"]);
    let out = ply(&all);
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["workload"], args[0]);
    let runs = v["runs"].as_array().expect("runs").clone();
    let backends: Vec<&str> = runs
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    assert_eq!(backends, ["seq", "threads", "processes"]);
    for r in &runs {
        assert_eq!(r["matches_first"], true, "{r}");
        assert!(r["wall_s"].as_f64().unwrap() > 0.0);
        // Sampled for worker processes, which a tiny run may finish between
        // samples; always known for this process.
        let rss = r["peak_rss_kib"].as_u64().expect("peak_rss_kib");
        assert!(rss > 0 || r["backend"] == "processes");
        let workers = if r["backend"] == "seq" { 1 } else { 2 };
        assert_eq!(r["workers"], workers);
        let speedup = r["speedup"].as_f64().unwrap();
        let efficiency = r["efficiency"].as_f64().unwrap();
        assert!((efficiency * workers as f64 - speedup).abs() < 1e-9);
    }
    runs
}

#[test]
fn primes_sums_are_right_on_every_backend() {
    let runs = demo_json(&["primes", "--n", "1000,2000"]);
    // The sums of the primes up to 1000 and 2000, well known.
    assert_eq!(runs[0]["result"], "1000: 76127, 2000: 277050");
}

#[test]
fn squares_match_the_closed_form() {
    let runs = demo_json(&["squares", "--n", "100000"]);
    let n: u128 = 100_000;
    assert_eq!(
        runs[2]["result"],
        ((n - 1) * n * (2 * n - 1) / 6).to_string()
    );
}

#[test]
fn sleep_overlaps_waits_on_threads_and_processes() {
    let runs = demo_json(&["sleep", "--tasks", "4", "--ms", "100"]);
    let wall = |i: usize| runs[i]["wall_s"].as_f64().unwrap();
    assert!(runs[0]["result"].as_str().unwrap().starts_with("4/4"));
    // Sequential: 4 x 100 ms. Two workers overlap them two at a time.
    assert!(wall(0) >= 0.4);
    assert!(wall(1) < wall(0) && wall(2) < wall(0), "{runs:?}");
}

#[test]
fn copy_verifies_every_byte_and_cleans_up() {
    let tmp = TempDir::new("copy-ok");
    let out = Command::new(env!("CARGO_BIN_EXE_ply"))
        .args([
            "demo",
            "copy",
            "--files",
            "3",
            "--size-mib",
            "1",
            "--json",
            "-j",
            "2",
        ])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in v["runs"].as_array().unwrap() {
        assert_eq!(r["result"], "3 files, 3 MiB copied and verified");
    }
    assert_eq!(tmp.entries(), Vec::<String>::new(), "temp files left");
}

/// A TMPDIR that does not exist is an error naming it, and stays absent:
/// the copy demo created it (`create_dir_all`) and left it behind after
/// removing its own directory inside.
#[test]
fn copy_with_a_missing_tmpdir_is_an_error_and_creates_nothing() {
    let tmp = TempDir::new("copy-missing-tmpdir");
    let missing = tmp.path().join("missing");
    let out = Command::new(env!("CARGO_BIN_EXE_ply"))
        .args(["demo", "copy", "--files", "1", "--size-mib", "1"])
        .env("TMPDIR", &missing)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    assert_eq!(
        tmp.entries(),
        Vec::<String>::new(),
        "created: {:?}",
        tmp.entries()
    );
}

#[test]
fn tests_leave_no_temporary_directory() {
    let dir = TempDir::new("cleanup");
    let path = dir.path().to_path_buf();
    assert!(path.exists());
    drop(dir);
    assert!(!path.exists());
}

#[test]
fn counter_shows_safe_counts_exact() {
    let runs = demo_json(&["counter", "--n", "20000"]);
    for r in &runs {
        let shown = r["result"].as_str().unwrap();
        assert!(shown.contains("locked 20000, atomic 20000"), "{shown}");
    }
    assert!(
        runs[0]["result"]
            .as_str()
            .unwrap()
            .contains("racy 20000 (lost 0)")
    );
}

#[test]
fn pipeline_delivers_each_item_once() {
    let runs = demo_json(&["pipeline", "--items", "50000"]);
    for r in &runs {
        assert!(
            r["result"]
                .as_str()
                .unwrap()
                .starts_with("50000 items each once"),
            "{r}"
        );
    }
}

#[test]
fn a_table_with_the_promised_columns() {
    let out = ply(&[
        "demo",
        "primes",
        "--n",
        "100",
        "--backend",
        "threads",
        "-j",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for column in [
        "backend",
        "workers",
        "wall",
        "speed-up",
        "efficiency",
        "peak RSS",
        "result",
    ] {
        assert!(text.contains(column), "no {column} column in:\n{text}");
    }
    assert!(
        text.contains("threads") && text.contains("100: 1060"),
        "{text}"
    );
}

#[test]
fn misuse_is_one_line_and_exit_2() {
    for args in [
        &["demo", "nope"][..],
        &["demo", "primes", "-j", "0"],
        &["demo", "squares", "--n", "-5"],
        &["demo", "primes", "--n", "1000,x"],
        &["demo", "sleep", "--backend", "gpu"],
        &["demo", "copy", "--files", "0"],
    ] {
        let out = ply(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn help_teaches_each_workload_and_backend() {
    let out = ply(&["demo", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for w in ["primes", "squares", "sleep", "copy", "counter", "pipeline"] {
        assert!(text.contains(w), "{w} missing from:\n{text}");
    }
    let out = ply(&["demo", "primes", "--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for b in ["seq", "threads", "processes", "all"] {
        assert!(text.contains(b), "{b} missing from:\n{text}");
    }
}

/// What the tests need of `/proc/<pid>/stat`: (parent pid, state, start time
/// in clock ticks since boot). With its start time a pid names one process,
/// even if the pid is given to another one later.
fn stat_of(pid: u32) -> Option<(u32, char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": fields after the last ')' start at field
    // 3; the start time is field 22.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    Some((
        fields.get(1)?.parse().ok()?,
        state,
        fields.get(19)?.parse().ok()?,
    ))
}

/// Processes whose parent is `pid`, each with its start time.
fn children_of(pid: u32) -> HashSet<(u32, u64)> {
    let mut found = HashSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((ppid, _, start)) = stat_of(child)
            && ppid == pid
        {
            found.insert((child, start));
        }
    }
    found
}

/// Starts `ply args`, interrupts it once it has worker processes, and checks
/// exit 130, no temporary file, and every child ply had reaped by ply.
fn interrupt_with_workers(args: &[&str]) {
    // Orphans would be re-parented to us (a subreaper), so none can hide.
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes a flag, no pointers.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    let tmp = TempDir::new("int");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ply"))
        .args(args)
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ply_pid = child.id();
    // Every child ply has from now until it exits (the workers, and those
    // it forks to replace killed ones), by pid and start time.
    let mut seen: HashSet<(u32, u64)> = HashSet::new();
    // Wait until it is copying with worker processes, then interrupt it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.is_empty() {
        assert!(Instant::now() < deadline, "ply never started workers");
        assert!(
            child.try_wait().unwrap().is_none(),
            "ply finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(2));
        seen.extend(children_of(ply_pid));
    }
    if args[1] == "copy" {
        assert!(!tmp.entries().is_empty(), "no temp dir while copying");
    }
    common::signal(ply_pid, libc::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        seen.extend(children_of(ply_pid));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ply did not exit after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let err = common::drain_stderr(&mut child);
    assert_eq!(status.code(), Some(130), "{args:?}: {err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(tmp.entries(), Vec::<String>::new(), "temp files left");
    // ply reaps every child it made before it exits, so none of them exists
    // now: not alive, not a zombie re-parented to us (which nothing would
    // reap). Nor is any process carrying this run's TMPDIR among our
    // children. Looked at once: there is nothing left to wait for.
    let me = std::process::id();
    let marker = format!("TMPDIR={}", tmp.path().display());
    let mut left: Vec<u32> = seen
        .iter()
        .filter(|&&(pid, start)| stat_of(pid).is_some_and(|(_, _, s)| s == start))
        .map(|&(pid, _)| pid)
        .collect();
    left.extend(
        children_of(me)
            .into_iter()
            .map(|(pid, _)| pid)
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|&b| b == 0).any(|v| v == marker.as_bytes()))
                    .unwrap_or(false)
            }),
    );
    left.sort_unstable();
    left.dedup();
    if !left.is_empty() {
        let described: Vec<String> = left
            .iter()
            .map(|&pid| match stat_of(pid) {
                Some((ppid, state, _)) => format!("{pid} (state {state}, parent {ppid})"),
                None => format!("{pid} (gone since)"),
            })
            .collect();
        // Ours now: end and reap them, so they outlive neither this test
        // nor the others in this binary.
        for &pid in &left {
            if stat_of(pid).is_some_and(|(ppid, _, _)| ppid == me) {
                common::signal(pid, libc::SIGKILL);
                // SAFETY: waitpid on our own child, with no status pointer.
                unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
            }
        }
        panic!("{args:?}: processes of ply left behind: {described:?}");
    }
}

#[test]
fn ctrl_c_during_copy_removes_temp_files_and_children() {
    // Ends by itself soon after the signal, or is ended after the grace
    // period, depending on how far the copying got.
    interrupt_with_workers(&[
        "demo",
        "copy",
        "--backend",
        "processes",
        "--files",
        "64",
        "--size-mib",
        "4",
        "-j",
        "2",
    ]);
}

#[test]
fn ctrl_c_during_a_long_process_map_reaps_every_worker() {
    // Workers that would compute for hours: always ended by force, after
    // the grace period, while the map forks replacements for those killed.
    interrupt_with_workers(&[
        "demo",
        "squares",
        "--n",
        "100000000000",
        "--backend",
        "processes",
        "-j",
        "2",
    ]);
}

#[test]
fn a_failure_while_running_is_exit_1_with_the_cause() {
    let out = Command::new(env!("CARGO_BIN_EXE_ply"))
        .args(["demo", "copy", "--files", "1", "--size-mib", "1"])
        .env("TMPDIR", "/dev/null/ply-test")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("error:") && err.contains("/dev/null/ply-test"),
        "{err}"
    );
}

/// The data series of a plotters SVG: each curve is a 2-px polyline through
/// one point per worker count (the legend's samples are 2-point lines), as
/// (stroke colour, points). Fails if the file does not parse as SVG.
fn svg_curves(svg: &str, points: usize) -> Vec<(String, usize)> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG parses");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
        .map(|n| {
            let count = n
                .attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .count();
            (n.attribute("stroke").unwrap_or("").to_owned(), count)
        })
        .filter(|&(_, count)| count == points)
        .collect()
}

/// The texts of an SVG (title, axis labels, legend).
fn svg_texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG parses");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
        .collect()
}

#[test]
fn scaling_runs_each_backend_at_each_worker_count_and_draws_a_curve_each() {
    let dir = TempDir::new("scaling");
    for (backend, curves) in [
        ("all", &["threads", "processes"][..]),
        ("threads", &["threads"]),
    ] {
        let svg = dir.path().join(format!("{backend}.svg"));
        let args = [
            "demo",
            "sleep",
            "--tasks",
            "4",
            "--ms",
            "5",
            "--backend",
            backend,
            "--scaling",
            "-j",
            "4,1,2",
            "--plot",
            svg.to_str().unwrap(),
        ];
        let out = ply(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let table = String::from_utf8(out.stdout).unwrap();
        // One seq baseline, then each backend at 1, 2, 4 workers in order.
        let rows: Vec<(String, String)> = table
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with("results"))
            .map(|l| {
                let mut words = l.split_whitespace();
                (
                    words.next().unwrap().to_owned(),
                    words.next().unwrap().to_owned(),
                )
            })
            .collect();
        let mut expected = vec![("seq".to_owned(), "1".to_owned())];
        for b in curves {
            for w in ["1", "2", "4"] {
                expected.push((b.to_string(), w.to_owned()));
            }
        }
        assert_eq!(rows, expected, "{table}");
        assert!(table.contains(&format!("results agree across {} runs", expected.len())));
        let svg = std::fs::read_to_string(&svg).unwrap();
        let found = svg_curves(&svg, 3);
        assert_eq!(
            found.len(),
            curves.len(),
            "one curve per backend: {found:?}"
        );
        let colours: HashSet<&String> = found.iter().map(|(c, _)| c).collect();
        assert_eq!(colours.len(), curves.len(), "{found:?}");
        let texts = svg_texts(&svg);
        for name in curves.iter().chain(&["ideal", "workers"]) {
            assert!(texts.iter().any(|t| t == name), "{name} not in {texts:?}");
        }
    }
    // Misuse, before anything runs: exit 2, one line, no file.
    let svg = dir.path().join("x.svg");
    let svg = svg.to_str().unwrap();
    for (args, expected) in [
        (&["demo", "sleep", "-j", "1,2"][..], "--scaling"),
        (
            &["demo", "sleep", "--scaling", "--backend", "seq"],
            "parallel backend",
        ),
        (&["demo", "sleep", "--plot", svg], "--scaling"),
        (&["demo", "sleep", "--scaling", "--plot", "x.png"], ".svg"),
        (
            &[
                "demo",
                "sleep",
                "--scaling",
                "--plot",
                "/nonexistent-dir/x.svg",
            ],
            "not a directory",
        ),
        (&["demo", "sleep", "--scaling", "-j", "1,0"], "-j"),
    ] {
        let out = ply(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(!Path::new(svg).exists());
}
