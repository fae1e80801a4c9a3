//! Starting the fork server as a fresh copy of the program.
//!
//! The supervisor runs `/proc/self/exe` — the very file this process runs
//! from, even if its path has been replaced since — with one end of a socket
//! pair inherited and its number in the environment variable
//! `PLY_FORK_SERVER`. Before `main`, a constructor in `.init_array` (the
//! `ctor` crate) looks for that variable; in the server it takes over and
//! never returns, so neither the program's `main` nor a test harness runs
//! there, and no user or test has to call an init function. In every other
//! process the constructor finds no variable and returns at once.
//!
//! The constructor lives here, beside [`anchor`], which every function
//! naming ([`entry`](super::entry)) refers to: a program that names its
//! handler links this object, and with it the constructor.
//!
//! The server then reads its [`Setup`]: the handler and initializer named
//! as [`Entry`]s, found again in this copy of the program.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{WorkerLoop, serve_ready, serve_requests};
use crate::fork::{ForkPermit, ForkedChild};
use crate::ipc::frame;
use crate::process::panic;
use crate::process::wire::{EXIT_BAD_BOOTSTRAP, FromServer, Setup, ToServer};

/// The environment variable that makes a re-executed program a fork server.
const ENV: &str = "PLY_FORK_SERVER";

/// How long a new server may take to read its setup.
const SETUP_PATIENCE: Duration = Duration::from_secs(30);

/// The point every function's offset is measured from. Never inlined, so it
/// has one address; its body is distinct from every other function's, so the
/// linker cannot fold it into another.
#[inline(never)]
pub(crate) fn anchor() -> u64 {
    std::hint::black_box(0x706c_795f_616e_6368)
}

/// Starts a fork server by re-executing this program, and gives it `setup`.
/// Must be called from the thread the server's life is tied to
/// (`PR_SET_PDEATHSIG` follows the thread that starts a process).
///
/// Returns the server (a child of this process) and the control socket.
pub(crate) fn start(setup: Setup) -> io::Result<(ForkedChild, UnixStream)> {
    let (control, theirs) = UnixStream::pair()?;
    let theirs_fd: RawFd = theirs.as_raw_fd();
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0("ply-fork-server")
        .env(ENV, theirs_fd.to_string())
        .stdin(Stdio::null());
    // SAFETY: the hook runs in the child between fork and exec and calls only
    // async-signal-safe functions (fcntl, prctl, getppid) on plain integers.
    unsafe {
        command.pre_exec(move || {
            // Keep the server's end across the exec.
            if libc::fcntl(theirs_fd, libc::F_SETFD, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                return Err(io::Error::other("the pool's process is gone"));
            }
            Ok(())
        })
    };
    // A fork, counted as ply's forks are (see `fork::stop_forking`).
    let permit = ForkPermit::enter()?;
    let child = command.spawn()?;
    drop(theirs);
    // From here the server is reaped as a `ForkedChild` (killed if dropped).
    let server = ForkedChild::adopt(child.id() as i32)?;
    std::mem::forget(child); // std's handle would not reap it; ours does
    drop(permit);
    let mut control = control;
    let setup = frame::encode(&ToServer::Setup(setup)).map_err(io::Error::other)?;
    frame::write_frame(&mut control, &setup).map_err(io::Error::other)?;
    Ok((server, control))
}

/// Runs before `main` in every process of a program that links ply: in a
/// re-executed fork server it becomes the server and never returns.
#[ctor::ctor(unsafe)]
fn intercept() {
    let Some(value) = std::env::var_os(ENV) else {
        return;
    };
    // SAFETY: `_exit` ends the process at once, skipping destructors and
    // `atexit` handlers (there is nothing of the program's to clean up: its
    // `main` never ran).
    unsafe { libc::_exit(run_server(value)) }
}

/// The re-executed server's life; returns its exit code.
fn run_server(value: OsString) -> i32 {
    // SAFETY: before `main`, this process has one thread, so nothing reads
    // the environment concurrently. Removed so that workers, and what they
    // start, are not servers too.
    unsafe { std::env::remove_var(ENV) };
    let Some(fd) = value.to_str().and_then(|v| v.parse::<RawFd>().ok()) else {
        eprintln!("ply: {ENV} is set but is not a descriptor number; not a fork server");
        return EXIT_BAD_BOOTSTRAP;
    };
    if !is_socket(fd) {
        eprintln!("ply: {ENV} names descriptor {fd}, which is not a socket; not a fork server");
        return EXIT_BAD_BOOTSTRAP;
    }
    // SAFETY: `fd` is an open socket (checked) that nothing else in this
    // process owns: it was inherited across the exec for this purpose.
    let control = UnixStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // Workers close it explicitly; anything they exec must not inherit it.
    // SAFETY: fcntl on an owned, open descriptor.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // Rust's runtime would have ignored SIGPIPE before `main`; do the same,
    // so a write to a closed socket is an error, not a death.
    // SAFETY: setting a signal's disposition to SIG_IGN is always sound.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    panic::install();
    let _ = control.set_read_timeout(Some(SETUP_PATIENCE));
    let setup = frame::read_frame(&mut &control, frame::DEFAULT_MAX_FRAME)
        .and_then(|bytes| frame::decode::<ToServer>(&bytes));
    let _ = control.set_read_timeout(None);
    let Ok(ToServer::Setup(setup)) = setup else {
        return EXIT_BAD_BOOTSTRAP;
    };
    let resolved = setup.handler.resolve().and_then(|handler| {
        let init = setup.initializer.map(|e| e.resolve()).transpose()?;
        Ok((handler, init))
    });
    let (handler, init) = match resolved {
        Ok(found) => found,
        Err(why) => {
            let _ = super::send(&control, &FromServer::SetupFailed(why), &[]);
            return EXIT_BAD_BOOTSTRAP;
        }
    };
    let config = WorkerLoop {
        max_tasks: setup.max_tasks,
    };
    let run_init = init.map(|init| move || init.run());
    serve_ready(control, &|stream, channel| {
        let init = run_init.as_ref().map(|f| f as &dyn Fn());
        serve_requests(stream, channel, config, init, &|request| {
            handler.call(request)
        })
    })
}

/// Whether `fd` is an open socket.
fn is_socket(fd: RawFd) -> bool {
    // SAFETY: an all-zero stat is a valid out-value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes `st`, a valid out-pointer; a bad fd is an error.
    let ok = unsafe { libc::fstat(fd, &mut st) } == 0;
    ok && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
}
