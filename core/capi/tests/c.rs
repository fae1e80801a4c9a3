//! The C tests: each program in `tests/c/` is compiled with the system C
//! compiler against `include/ply.h` and the real C library (`libply_capi.a`,
//! built here with `cargo build -p ply-capi --profile capi`), then run; it must
//! exit 0. The README's C example is compiled and run the same way.
//!
//! Environment:
//! - `CC`: the C compiler (default `cc`).
//! - `PLY_CTEST_CFLAGS`: extra compiler flags, e.g. sanitizers.
//! - `PLY_CTEST_LIB`: link this library instead of building one (CI links an
//!   AddressSanitizer build of ply-capi for the sanitizer run).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The static library to link: `PLY_CTEST_LIB`, or one built now (once per
/// test run) in its own target directory, so it is the no_std artifact C users
/// get, whatever features this test build unified into ply-core.
fn library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        if let Some(lib) = std::env::var_os("PLY_CTEST_LIB") {
            return PathBuf::from(lib);
        }
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi-lib");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "ply-capi", "--profile", "capi"])
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(crate_dir())
            // The outer build's flags (coverage, sanitizers) are not for this one.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("run cargo to build libply_capi.a");
        assert!(status.success(), "building libply_capi.a failed");
        target_dir.join("capi/libply_capi.a")
    })
}

/// Compiles `source` into an executable and returns its path.
fn compile(source: &Path, name: &str) -> PathBuf {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi-ctest");
    std::fs::create_dir_all(&out_dir).expect("create the C test output directory");
    let exe = out_dir.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let extra = std::env::var("PLY_CTEST_CFLAGS").unwrap_or_default();
    let output = Command::new(&cc)
        .args([
            "-std=c11",
            "-D_GNU_SOURCE",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ])
        .args(["-O2", "-g"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg("-I")
        .arg(crate_dir().join("tests/c"))
        .args(extra.split_whitespace())
        .arg(source)
        .arg(library())
        .args(["-lpthread", "-o"])
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("run the C compiler `{cc}`: {e}"));
    assert!(
        output.status.success(),
        "compiling {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// Runs `exe` with a deadline; it must exit 0.
fn run(exe: &Path) {
    let mut child = Command::new(exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()));
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if child.try_wait().expect("poll the C test").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not finish within 300 s", exe.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child
        .wait_with_output()
        .expect("collect the C test's output");
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}{}",
        exe.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn c_test(name: &str) {
    let source = crate_dir().join("tests/c").join(format!("{name}.c"));
    run(&compile(&source, name));
}

#[test]
fn layout() {
    c_test("layout");
}

#[test]
fn spsc() {
    c_test("spsc");
}

#[test]
fn array_queue() {
    c_test("array_queue");
}

#[test]
fn scq() {
    c_test("scq");
}

#[test]
fn shared_memory() {
    c_test("shared_memory");
}

#[test]
fn spin_inline() {
    c_test("spin_inline");
}

#[test]
fn sync() {
    c_test("sync");
}

#[test]
fn redteam_semaphore() {
    c_test("redteam_semaphore");
}

#[test]
fn redteam_unlock() {
    c_test("redteam_unlock");
}

#[test]
fn partition() {
    c_test("partition");
}

/// The README's "Using ply-core from C" example compiles as written and runs.
#[test]
fn readme_example() {
    let readme = std::fs::read_to_string(crate_dir().join("../../README.md")).expect("README.md");
    let section = readme
        .split("## Using ply-core from C")
        .nth(1)
        .expect("README has a \"Using ply-core from C\" section");
    let code = section
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a ```c block");
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi-ctest");
    std::fs::create_dir_all(&out_dir).expect("create the C test output directory");
    let source = out_dir.join("readme.c");
    std::fs::write(&source, code).expect("write readme.c");
    run(&compile(&source, "readme"));
}
