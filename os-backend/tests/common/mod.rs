//! Helpers shared by the process tests: a watchdog, a `/proc` scan for
//! descendants, a named pipe a task blocks on ([`Fifo`]), and a lock that
//! keeps one test's children from being taken for another's.

#![allow(dead_code)] // each test binary uses its own subset

mod watchdog;
pub use watchdog::watchdog;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the binary's serial lock: tests that count descendants run alone.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// pid → parent pid, for every process in `/proc`.
fn parents() -> HashMap<i32, i32> {
    let mut map = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if let Some(ppid) = fields.get(1).and_then(|p| p.parse().ok()) {
            map.insert(pid, ppid);
        }
    }
    map
}

/// Every descendant of `root` (children, grandchildren, zombies included).
pub fn descendants(root: i32) -> HashSet<i32> {
    let map = parents();
    let mut found = HashSet::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&child, &parent) in &map {
            if parent == p && found.insert(child) {
                frontier.push(child);
            }
        }
    }
    found
}

/// Waits (up to 10 s) until this process has no descendants left.
pub fn assert_no_descendants() {
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = descendants(me);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "child processes left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Background threads that keep a process-wide resource busy until dropped.
pub struct Noise {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What the noise threads hammer.
#[derive(Clone, Copy, Debug)]
pub enum NoiseKind {
    /// `println!` in a loop: stdout's lock.
    Stdout,
    /// `eprint!` in a loop: stderr's lock.
    Stderr,
    /// Allocate and free in a loop: the allocator's locks.
    Alloc,
    /// Lock and unlock `USER_LOCK` in a loop: a lock ply does not know.
    UserMutex,
}

/// The program's own lock that `NoiseKind::UserMutex` hammers.
pub static USER_LOCK: Mutex<u64> = Mutex::new(0);

impl Noise {
    pub fn start(kind: NoiseKind, threads: usize) -> Noise {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        n += 1;
                        match kind {
                            NoiseKind::Stdout => {
                                use std::io::Write;
                                let _ = writeln!(std::io::stdout(), "noise {n}");
                            }
                            NoiseKind::Stderr => {
                                use std::io::Write;
                                let _ = write!(std::io::stderr(), "");
                            }
                            NoiseKind::Alloc => {
                                let v: Vec<u64> = Vec::with_capacity((n % 4096) as usize + 1);
                                std::hint::black_box(&v);
                                let s = format!("{n}");
                                std::hint::black_box(s);
                            }
                            NoiseKind::UserMutex => {
                                let mut g = USER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
                                *g += 1;
                                std::hint::black_box(&*g);
                            }
                        }
                    }
                })
            })
            .collect();
        Noise { stop, threads }
    }
}

impl Drop for Noise {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A named pipe a task's handler blocks on (opening it for reading) until
/// the test releases it; removed on drop.
pub struct Fifo(std::path::PathBuf);

impl Fifo {
    pub fn new(name: &str) -> Fifo {
        let path = std::env::temp_dir().join(format!("ply-{name}-{}", std::process::id()));
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: `c_path` is a valid NUL-terminated string for the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
        Fifo(path)
    }

    pub fn path(&self) -> String {
        self.0.to_str().unwrap().to_owned()
    }

    /// Lets the blocked reader finish: it sees end-of-file.
    pub fn release(&self) {
        drop(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&self.0)
                .unwrap(),
        );
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
