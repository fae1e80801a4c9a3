//! Ctrl-C, SIGTERM and SIGHUP for `ply demo` and `ply bench`.
//!
//! A watcher thread receives the signals (signal-hook turns them into values,
//! so none of them kills the process on the spot). On the first one it raises
//! [`interrupted`]; the command stops at its next safe point and exits with
//! 128 + the signal number (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP),
//! removing its temporary files on the way.
//!
//! A command busy in a long computation may not reach a safe point soon. After
//! [`GRACE`] (or at a second signal) the watcher ends the process itself: it
//! stops ply's forks (the command's threads keep running, and a process map
//! replaces a killed worker), kills every child process with `SIGKILL`
//! (forked workers, a process pool's fork server and then that server's
//! workers, which come to this process as it is made a subreaper) and reaps
//! each one, waiting up to `FORKS_SETTLE` for them to end
//! ([`ply_os::fork::end_children`]), removes the registered temporary
//! paths, prints one line and calls `_exit`. So every command stops soon
//! after its grace period and leaves nothing behind: no child, not even a
//! zombie for a subreaper to inherit. A child the kernel does not let end
//! in time (uninterruptible sleep in a dead mount) is named in that line
//! rather than holding the exit forever.
//!
//! `ply run` handles the same signals itself, in its event loop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// How long a command may take to stop by itself after a signal.
pub const GRACE: Duration = Duration::from_millis(500);

/// The signal received, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Paths to remove if the process has to be ended by force.
static TEMP_PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The signals a command stops on.
pub const STOP_SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// Whether a stop signal has arrived.
pub fn interrupted() -> bool {
    SIGNAL.load(Ordering::Relaxed) != 0
}

/// The exit code for the signal received (128 + its number), if any.
pub fn exit_code() -> Option<u8> {
    match SIGNAL.load(Ordering::Relaxed) {
        0 => None,
        sig => Some(code_for(sig)),
    }
}

/// 128 + the signal number, as shells report a process ended by it.
pub fn code_for(sig: i32) -> u8 {
    u8::try_from(128 + sig).unwrap_or(255)
}

/// Starts the watcher thread. Failing to install the handlers is not fatal:
/// the signals then keep their default action, which also stops the command.
pub fn install() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new(STOP_SIGNALS) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("ply-signals".into())
        .spawn(move || {
            let mut first: Option<(i32, Instant)> = None;
            loop {
                // Wait in short steps so the grace period is honoured even
                // when no second signal comes.
                for sig in signals.pending() {
                    match first {
                        None => {
                            SIGNAL.store(sig, Ordering::Relaxed);
                            first = Some((sig, Instant::now()));
                        }
                        Some((sig, _)) => force_exit(sig),
                    }
                }
                if let Some((sig, at)) = first
                    && at.elapsed() >= GRACE
                {
                    force_exit(sig);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
}

/// Removes `path` (a file or a directory) if the process is ended by force,
/// until the returned guard is dropped.
#[must_use = "the path is forgotten when the guard is dropped"]
pub struct TempPath(PathBuf);

impl TempPath {
    /// Registers `path`.
    pub fn register(path: PathBuf) -> TempPath {
        TEMP_PATHS.lock().push(path.clone());
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let mut paths = TEMP_PATHS.lock();
        if let Some(i) = paths.iter().position(|p| *p == self.0) {
            paths.swap_remove(i);
        }
    }
}

/// How long forks in progress may take to finish once forking has stopped
/// (each is a system call or two; this is for a thread stopped mid-fork),
/// and then how long the killed children may take to be reaped (a child in
/// uninterruptible sleep is named in the last line instead).
const FORKS_SETTLE: Duration = Duration::from_secs(5);

/// Kills and reaps every child, removes the registered paths, says so and
/// exits with 128 + `sig`.
fn force_exit(sig: i32) -> ! {
    end_with(
        |ended| match ended {
            Ok(()) => "interrupted; temporary files removed and child processes reaped".into(),
            Err(e) => format!("interrupted; temporary files removed; {e}"),
        },
        code_for(sig),
    )
}

/// Kills and reaps every child, removes the registered paths, prints the
/// line `message` makes of how ending the children went, and exits with
/// `code`.
fn end_with(
    message: impl FnOnce(Result<(), ply_os::fork::EndChildrenError>) -> String,
    code: u8,
) -> ! {
    let ended = ply_os::fork::end_children(FORKS_SETTLE);
    // Children are gone (or killed, if not reaped): none can write into the
    // paths while they go.
    for path in TEMP_PATHS.lock().iter() {
        let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
    }
    crate::out::error_line(&message(ended));
    // SAFETY: _exit ends the process at once; skipping destructors is the
    // point (other threads may be mid-computation holding locks).
    unsafe { libc::_exit(i32::from(code)) }
}

/// Ends the process on a panic in any of its threads, the way a stop
/// signal does ([`end_with`]): one line naming the panic and where it
/// happened, exit 1. A demo or bench panics where it cannot go on (a thread
/// or a worker that cannot be started: `RLIMIT_NPROC`, memory); unwinding
/// would print a backtrace, and could hang for good — a scope waiting for a
/// queue's producer whose consumer never started. In a forked child the
/// previous hook runs, so a worker's panic stays the backend's to report.
pub fn end_on_panic() {
    let pid = std::process::id();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::process::id() != pid {
            return previous(info);
        }
        static ENDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if ENDING.swap(true, Ordering::SeqCst) {
            // Another thread is already ending the process.
            loop {
                std::thread::park();
            }
        }
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        let place = info
            .location()
            .map_or_else(String::new, |l| format!(" (at {}:{})", l.file(), l.line()));
        let message = message.replace('\n', " ");
        let message = format!("{message}{place}");
        end_with(
            |ended| match ended {
                Ok(()) => message,
                Err(e) => format!("{message}; {e}"),
            },
            1,
        )
    }));
}
