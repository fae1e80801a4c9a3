//! The existing commands held to the CLI's standard: every stop signal ends
//! every command with 128 + the signal, leaving no process and no temporary
//! file; closed output never panics; every bound is checked at parse time;
//! labels say what ran.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// Commands that run long enough to be interrupted, each on what it uses:
/// threads, forked workers, a process pool, temporary files.
const LONG_COMMANDS: &[&[&str]] = &[
    &[
        "demo",
        "primes",
        "--n",
        "1000000000",
        "--backend",
        "threads",
        "-j",
        "2",
    ],
    &[
        "demo",
        "squares",
        "--n",
        "100000000000",
        "--backend",
        "processes",
        "-j",
        "2",
    ],
    &[
        "demo", "sleep", "--tasks", "1000", "--ms", "60000", "-j", "2",
    ],
    &[
        "demo",
        "counter",
        "--n",
        "1000000000",
        "--backend",
        "threads",
        "-j",
        "2",
    ],
    &[
        "demo",
        "pipeline",
        "--items",
        "1000000000",
        "--backend",
        "processes",
        "-j",
        "2",
    ],
    &[
        "demo",
        "copy",
        "--files",
        "10000",
        "--size-mib",
        "6",
        "-j",
        "2",
    ],
    &["bench", "all", "--full"],
    &["bench", "pool", "--items", "1000000000"],
    &["bench", "checkup", "--full"],
    &[
        "demo",
        "sleep",
        "--tasks",
        "1000",
        "--ms",
        "100",
        "--scaling",
        "-j",
        "1,2",
    ],
];

/// Starts `args`, waits until ply handles `sig` (and a little into the run,
/// `delay`), sends it, and checks exit 128 + sig, no process and no temporary
/// file left.
fn interrupt(args: &[&str], sig: i32, delay: Duration) {
    let tmp = TempDir::new("sig");
    let (_, mark) = marker("sig");
    let mut child = spawn_marked(args, &mark, tmp.path());
    wait_until_handling(&mut child, sig);
    std::thread::sleep(delay);
    signal(child.id(), sig);
    let status = wait_or_kill(&mut child, Duration::from_secs(60));
    let err = drain_stderr(&mut child);
    assert_eq!(status.code(), Some(128 + sig), "{args:?}: {err}");
    assert!(err.contains("interrupted"), "{args:?}: {err}");
    assert_none_left(&format!("PLY_TEST_MARK={mark}"));
    assert_eq!(
        tmp.entries(),
        Vec::<String>::new(),
        "{args:?}: temp files left"
    );
}

#[test]
fn sigint_stops_every_command_with_130_leaving_nothing() {
    for args in LONG_COMMANDS {
        // At once, and once the work is under way.
        interrupt(args, libc::SIGINT, Duration::ZERO);
        interrupt(args, libc::SIGINT, Duration::from_millis(300));
    }
}

#[test]
fn sigterm_stops_every_command_with_143_leaving_nothing() {
    for args in LONG_COMMANDS {
        interrupt(args, libc::SIGTERM, Duration::from_millis(150));
    }
}

#[test]
fn sighup_stops_a_demo_with_129() {
    interrupt(LONG_COMMANDS[1], libc::SIGHUP, Duration::from_millis(100));
}

#[test]
fn copy_interrupted_while_writing_its_files_is_130_not_1() {
    // 10,000 files of 6 MiB: interrupted while the source files are written.
    interrupt(LONG_COMMANDS[5], libc::SIGINT, Duration::from_millis(50));
}

/// Runs `ply args` with stdout connected to a pipe whose reader is closed.
fn with_closed_pipe(args: &[&str]) -> std::process::Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds are fresh and owned by nothing else.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    ply_cmd()
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_broken_pipe_exits_quietly_with_141() {
    for args in [
        &["demo", "primes", "--n", "1000", "-j", "2"][..],
        &["bench", "locks", "--items", "1000", "--json"],
        &["demo", "--help"],
    ] {
        let out = with_closed_pipe(args);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
    }
}

#[test]
fn a_full_disk_is_one_error_line_and_exit_1() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    for args in [
        &["demo", "sleep", "--tasks", "2", "--ms", "1", "-j", "2"][..],
        &["bench", "locks", "--items", "1000"],
    ] {
        let out = ply_cmd()
            .args(args)
            .stdout(Stdio::from(full.try_clone().unwrap()))
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: writing to stdout"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn every_numeric_bound_is_checked_at_parse_time() {
    let max = ply_os::process::MAX_MAP_WORKERS.to_string();
    let over = (ply_os::process::MAX_MAP_WORKERS + 1).to_string();
    for (args, expected) in [
        (
            &[
                "demo",
                "primes",
                "--n",
                "18446744073709551615",
                "--backend",
                "threads",
            ][..],
            "18446744073709551615",
        ),
        (
            &[
                "demo",
                "primes",
                "--n",
                "10000000000000",
                "--backend",
                "processes",
            ],
            "10000000000000",
        ),
        (&["demo", "primes", "--n", "1000000001"], "1000000001"),
        (&["demo", "squares", "--n", "100000000001"], "100000000001"),
        (&["demo", "counter", "--n", "1000000001"], "1000000001"),
        (&["demo", "pipeline", "--items", "1000000001"], "1000000001"),
        (&["demo", "primes", "-j", "300"], "300"),
        (&["demo", "sleep", "-j", over.as_str()], over.as_str()),
        (
            &["demo", "copy", "--files", "10000", "--size-mib", "4096"],
            "64 GiB",
        ),
        (
            &["bench", "queues", "--items", "1000000000001"],
            "1000000000001",
        ),
    ] {
        assert_misuse_code(args, 2, expected);
    }
    let limits = vec!["1"; 65].join(",");
    assert_misuse_code(&["demo", "primes", "--n", &limits], 2, "at most 64 limits");
    // The largest -j allowed is accepted.
    let out = ply(&[
        "demo",
        "sleep",
        "--tasks",
        "1",
        "--ms",
        "0",
        "--backend",
        "processes",
        "-j",
        &max,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Runs a demo with `--json` and returns its runs.
fn runs_of(args: &[&str]) -> Vec<serde_json::Value> {
    let out = ply(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["runs"].as_array().unwrap().clone()
}

#[test]
fn counter_compares_equal_work_on_every_backend() {
    let runs = runs_of(&["demo", "counter", "--n", "30001", "-j", "2", "--json"]);
    for r in &runs {
        let shown = r["result"].as_str().unwrap();
        // Every backend does the same 30001 increments (one thread or split).
        assert!(
            shown.starts_with("expected 30001:") && shown.ends_with("locked 30001, atomic 30001"),
            "{shown}"
        );
        assert_eq!(r["check"], "locked 30001, atomic 30001");
    }
}

#[test]
fn results_agree_is_printed_only_when_they_do() {
    let out = ply(&["demo", "counter", "--n", "1000", "-j", "2"]);
    assert!(stdout(&out).contains("results agree across 3 backends"));
}

#[test]
fn pipeline_with_one_job_reports_the_two_workers_it_runs() {
    let runs = runs_of(&["demo", "pipeline", "--items", "1000", "-j", "1", "--json"]);
    let workers: Vec<u64> = runs
        .iter()
        .map(|r| r["workers"].as_u64().unwrap())
        .collect();
    assert_eq!(workers, [1, 2, 2]);
    let runs = runs_of(&["demo", "pipeline", "--items", "1000", "-j", "3", "--json"]);
    let workers: Vec<u64> = runs
        .iter()
        .map(|r| r["workers"].as_u64().unwrap())
        .collect();
    assert_eq!(workers, [1, 3, 3]);
}

/// The repository root (this crate's parent).
fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn readme_links_only_files_in_the_repository_and_says_how_to_install() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        !readme.contains("DESIGN.md"),
        "README points at a design file outside the repo"
    );
    // Every relative markdown link names a file that exists inside the
    // repository (a fresh clone has nothing beside it).
    for (i, _) in readme.match_indices("](") {
        let rest = &readme[i + 2..];
        let target = &rest[..rest.find(')').unwrap()];
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let path = target.split('#').next().unwrap();
        assert!(
            !path.starts_with(".."),
            "README links {target}, outside the repository"
        );
        assert!(
            repo().join(path).exists(),
            "README links {target}, which does not exist"
        );
    }
    assert!(
        readme.contains("cargo install --path cli"),
        "no install command"
    );
    assert!(readme.contains("[dependencies]"), "no dependency example");
}

#[test]
fn facade_docs_do_not_promise_what_exists() {
    let docs = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    assert!(
        !docs.contains("to come"),
        "src/lib.rs still promises a process pool"
    );
    assert!(
        docs.contains("ProcessPool"),
        "src/lib.rs does not name the process pool"
    );
}

/// Runs `ply args` as a user allowed one process (RLIMIT_NPROC 1: no
/// thread can be started); as root, whom the limit does not bind, as
/// `nobody`.
fn ply_without_threads(args: &[&str], dir: &TempDir) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // `nobody` may not reach the build's directory (a checkout under
    // /root): it runs a copy in a directory of its own.
    let mut command = if root {
        let copy = dir.path().join("ply");
        if !copy.exists() {
            std::fs::copy(env!("CARGO_BIN_EXE_ply"), &copy).unwrap();
        }
        Command::new(copy)
    } else {
        ply_cmd()
    };
    command
        .args(args)
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and makes
    // only async-signal-safe system calls (setrlimit, setgroups, setgid,
    // setuid), touching no memory but its own stack.
    unsafe {
        command.pre_exec(move || {
            let one = libc::rlimit {
                rlim_cur: 1,
                rlim_max: 1,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &one) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if root
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // A child another test thread forked while the copy was being written
    // holds it open for writing until it execs: ETXTBSY for that moment.
    for _ in 0..1000 {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            spawned => return spawned.unwrap(),
        }
    }
    panic!("the copy of ply stayed busy");
}

/// A thread or process that cannot be started (RLIMIT_NPROC, or memory)
/// ends a bench with one line and exit 1. It panicked with a backtrace
/// (exit 101), and where the thread refused was the partner of one already
/// running (the consumer of a queue's producer), it hung for good after the
/// panic; `bench ipc` left out the rows it could not fork for and timed the
/// failing fork-join maps as rates (24,000 M items/s), exit 0, and `bench
/// spawn` timed refused forks as process starts.
#[test]
fn a_bench_that_cannot_start_a_thread_is_one_line_and_exit_1() {
    let dir = TempDir::new("no-threads");
    // (family, what it names: the first thing that fails to start)
    for (family, names) in [
        ("queues", "spawn thread"),
        ("locks", "spawn thread"),
        ("pool", "a pool of"),
        ("spawn", "forking a child"),
        ("checkup", "spawn thread"),
        ("ipc", "forking"),
    ] {
        let mut child = ply_without_threads(&["bench", family, "--items", "1000"], &dir);
        let status = wait_or_kill(&mut child, Duration::from_secs(30));
        let err = drain_stderr(&mut child);
        assert_eq!(status.code(), Some(1), "{family}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{family}: {err}");
        assert!(
            err.starts_with("error:")
                && err.contains(names)
                && err.contains("Resource temporarily unavailable"),
            "{family}: {err}"
        );
    }
}
