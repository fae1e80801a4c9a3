//! End-to-end tests of the `ply` binary: real runs, real exit codes.

mod common;

use std::process::Output;

use common::{drain_stderr, ply, ply_cmd, signal, wait_or_kill};

/// CPUs available to this process.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `ply` with `args` (which include `--json`), checks it succeeded, and
/// parses its output.
fn json_of(args: &[&str]) -> serde_json::Value {
    let out = ply(args);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bench_queues_json_reports_every_queue_with_positive_rates() {
    let v = json_of(&["bench", "queues", "--items", "20000", "--json"]);
    assert_eq!(v["family"], "queues");
    assert_eq!(
        v["pinned"].as_bool(),
        Some(true).filter(|_| cpus() >= 2).or(Some(false))
    );
    assert_eq!(v["items"], 20000);
    assert_eq!(v["capacity"], 1024);
    let results = v["results"].as_array().expect("results array");
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ply spsc::Ring",
            "ply spsc::Ring (batches of 64)",
            "ply mpmc::ArrayQueue",
            "ply mpmc::ScqQueue",
            "std sync_channel"
        ]
    );
    assert_rates_ordered(results);
}

/// The benchmark names of a family's JSON report, in order.
fn names_of(v: &serde_json::Value) -> Vec<&str> {
    v["results"]
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect()
}

/// Every result has positive rates with min <= median <= max.
fn assert_rates_ordered(results: &[serde_json::Value]) {
    for r in results {
        let (min, med, max) = (
            r["per_sec_min"].as_f64().unwrap(),
            r["per_sec_median"].as_f64().unwrap(),
            r["per_sec_max"].as_f64().unwrap(),
        );
        assert!(min > 0.0 && min <= med && med <= max, "{r}");
    }
}

#[test]
fn bench_locks_json_reports_each_lock_alone_and_contended() {
    let v = json_of(&["bench", "locks", "--items", "20000", "--json"]);
    assert_eq!(v["family"], "locks");
    assert_eq!(v["operations"], 20000);
    let results = v["results"].as_array().expect("results array");
    let pairs: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r["group"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    for group in ["1 thread (uncontended)", "2 threads contending"] {
        for name in ["ply SpinMutex", "ply TicketMutex", "std Mutex"] {
            assert!(
                pairs.contains(&(group, name)),
                "{group}/{name} missing: {pairs:?}"
            );
        }
    }
    assert_rates_ordered(results);
}

#[test]
fn bench_queues_table_names_each_queue() {
    let out = ply(&["bench", "queues", "--items", "10000"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("queue throughput (items/s)"), "{table}");
    assert!(table.contains("1 producer -> 1 consumer"), "{table}");
    for name in [
        "ply spsc::Ring",
        "ply mpmc::ArrayQueue",
        "ply mpmc::ScqQueue",
        "std sync_channel",
    ] {
        assert!(table.contains(name), "{name} missing from:\n{table}");
    }
}

/// Misuse exits 2 with exactly one line on stderr and nothing on stdout.
fn assert_misuse(args: &[&str], expected: &str) {
    let out = ply(args);
    assert_eq!(out.status.code(), Some(2), "args {args:?}");
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line, got:\n{err}");
    assert!(
        err.contains(expected),
        "{err:?} should mention {expected:?}"
    );
}

#[test]
fn misuse_is_one_line_and_exit_code_2() {
    assert_misuse(&["bench", "nope"], "invalid value 'nope'");
    assert_misuse(&["bench", "queues", "--items", "5"], "--items");
    assert_misuse(&["bench", "queues", "--items", "-3"], "-3");
    assert_misuse(&["bench", "queues", "--items", "many"], "many");
    assert_misuse(&["frobnicate"], "frobnicate");
    assert_misuse(&["bench"], "needs a family");
}

#[test]
fn no_arguments_shows_help_and_exit_code_2() {
    let out = ply(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Usage: ply <COMMAND>"));
}

#[test]
fn help_teaches_and_exits_0() {
    let out = ply(&["bench", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("queues"), "{help}");
    assert!(help.contains("locks"), "{help}");
    assert!(help.contains("--json"), "{help}");
}

#[test]
fn bench_pool_json_reports_tasks_and_the_parallel_sum() {
    let v = json_of(&["bench", "pool", "--items", "5000", "--json"]);
    assert_eq!(v["family"], "pool");
    assert_eq!(v["tasks"], 5000);
    assert_eq!(v["workers"].as_u64(), Some(cpus() as u64));
    assert_eq!(v["busy_processes"].as_u64(), Some(cpus() as u64));
    let results = v["results"].as_array().expect("results array");
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ply pool scope.spawn",
            "ply pool submit + join",
            "std thread::spawn + join",
            // The same three with one busy process per core beside them.
            "ply pool scope.spawn",
            "ply pool submit + join",
            "std thread::spawn + join",
            "ply ProcessPool map (pipelined)",
            "ply ProcessPool submit + join",
            "ply pool reduce_slice",
            "sequential"
        ]
    );
    assert_rates_ordered(results);
}

#[test]
fn bench_spawn_and_ipc_report_rates_and_memory() {
    let v = json_of(&["bench", "spawn", "--items", "1000", "--json"]);
    assert_eq!(v["family"], "spawn");
    assert_eq!(v["starts"], 100);
    let names = names_of(&v);
    assert_eq!(
        names,
        [
            "fork + waitpid (ply fork_child)",
            "std thread::spawn + join"
        ]
    );
    assert_rates_ordered(v["results"].as_array().unwrap());
    // A forked worker maps at least some memory of its own; PSS <= RSS.
    let rss = v["process_rss_kib_each"].as_u64().unwrap();
    let pss = v["process_pss_kib_each"].as_u64().unwrap();
    assert!(rss > 0 && pss > 0 && pss <= rss, "rss {rss} pss {pss}");

    let v = json_of(&["bench", "ipc", "--items", "1000", "--json"]);
    assert_eq!(v["family"], "ipc");
    assert_eq!(v["trips"], 1000);
    assert_eq!(v["map_items"], 1_000_000);
    let names = names_of(&v);
    assert_eq!(
        names,
        [
            "ply ProcessQueue (shared memory)",
            "ply Duplex (socket pair, postcard)",
            "ply ProcessPool submit + join",
            "ply map_plain (shared memory)",
            "ply map (serialized results)",
            "one thread (no processes)"
        ]
    );
    assert_rates_ordered(v["results"].as_array().unwrap());
}

#[test]
fn bench_all_json_is_an_array_of_every_family() {
    let v = json_of(&["bench", "all", "--items", "1000", "--json"]);
    let families: Vec<&str> = v
        .as_array()
        .expect("an array")
        .iter()
        .map(|f| f["family"].as_str().unwrap())
        .collect();
    assert_eq!(families, ["queues", "locks", "spawn", "ipc", "pool"]);
}

/// The child processes of `pid` (every thread's children).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// `bench ipc`'s first route echoes through shared-memory queues with a
/// forked child. Killed, that child never answers: the bench waited for
/// it without a deadline, for good. Now it looks whether the child still
/// lives while it waits, and reports its death: one line, exit 1.
#[test]
fn bench_ipc_reports_an_echo_process_that_dies() {
    let mut child = ply_cmd()
        .args(["bench", "ipc", "--items", "1000000000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The first child is the queue route's echo process; its route runs
    // 100,000 round trips x 5 (seconds), so it is found while it runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let echo = loop {
        if let Some(&pid) = children_of(child.id()).first() {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "no echo process");
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    signal(echo, libc::SIGKILL);
    let status = wait_or_kill(&mut child, std::time::Duration::from_secs(30));
    let err = drain_stderr(&mut child);
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bench ipc: the queue's echo process"), "{err}");
}
