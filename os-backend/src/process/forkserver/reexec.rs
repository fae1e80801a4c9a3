//! Starting the fork server as a fresh copy of the program, and finding the
//! pool's handler in it.
//!
//! # Start
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
//! # Finding the handler
//!
//! A handler is a `fn(Req) -> Resp` (a closure that captures nothing
//! coerces to one). The same binary is mapped at another address in the new
//! process, but everything in it keeps its distance: the handler is sent as
//! its offset from [`anchor`], a function of ply's, together with the offset
//! of a [`trampoline`] monomorphized for `(Req, Resp)`, which turns the
//! handler's address back into a `fn(Req) -> Resp` and runs the worker loop.
//! The types therefore match by construction; the trampoline also checks a
//! hash of their names before the first call. [`Entry::of`] refuses a
//! handler that lives in another object (a shared library), whose distance
//! to the anchor would not survive the `exec`.
//!
//! procspawn (which re-executes the program and identifies functions by
//! their offset to a symbol) and Python's `forkserver` are the prior art.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{WorkerLoop, serve_ready, serve_requests};
use crate::fork::ForkedChild;
use crate::ipc::frame;
use crate::process::panic;
use crate::process::wire::{EXIT_BAD_BOOTSTRAP, Entry, FromServer, Setup, ToServer};

/// The environment variable that makes a re-executed program a fork server.
const ENV: &str = "PLY_FORK_SERVER";

/// How long a new server may take to read its setup.
const SETUP_PATIENCE: Duration = Duration::from_secs(30);

/// Called, in the server, with the handler's address: runs the worker loop
/// over the stream; with no stream, returns the hash of its types instead.
type Trampoline = fn(usize, Option<(UnixStream, WorkerLoop)>) -> i64;

/// The point every offset is measured from. Never inlined, so it has one
/// address; its body is distinct from every other function's, so the linker
/// cannot fold it into another.
#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x706c_795f_616e_6368)
}

fn anchor_address() -> usize {
    anchor as fn() -> u64 as usize
}

/// A hash (FNV-1a) of the names of `Req` and `Resp`.
fn types_hash<Req, Resp>() -> u64 {
    let names = [std::any::type_name::<Req>(), std::any::type_name::<Resp>()];
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in names.iter().flat_map(|n| n.bytes().chain([0])) {
        hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Runs the worker loop with the `fn(Req) -> Resp` at `function`.
fn trampoline<Req, Resp>(function: usize, io: Option<(UnixStream, WorkerLoop)>) -> i64
where
    Req: serde::de::DeserializeOwned,
    Resp: serde::Serialize,
{
    let Some((stream, config)) = io else {
        return types_hash::<Req, Resp>() as i64;
    };
    // SAFETY: `function` is the address of a `fn(Req) -> Resp` of this
    // binary: `Entry::of::<Req, Resp>` took it from such a value in a process
    // running the same file (`/proc/self/exe`), as an offset from `anchor` in
    // the same object (checked there with `dladdr`), and `resolve` rebuilt it
    // from the same offset here. `resolve` has also checked that this
    // trampoline was instantiated for the same `(Req, Resp)`.
    let handler: fn(Req) -> Resp =
        unsafe { std::mem::transmute::<*const (), fn(Req) -> Resp>(function as *const ()) };
    serve_requests(&handler, stream, config) as i64
}

impl Entry {
    /// Names `handler` for a re-executed copy of this program.
    ///
    /// # Errors
    ///
    /// A message if the handler is not in the same object as ply (it lives
    /// in a shared library).
    pub(crate) fn of<Req, Resp>(handler: fn(Req) -> Resp) -> Result<Entry, String>
    where
        Req: serde::de::DeserializeOwned,
        Resp: serde::Serialize,
    {
        let tramp: Trampoline = trampoline::<Req, Resp>;
        let (anchor, tramp, function) = (anchor_address(), tramp as usize, handler as usize);
        let home = object_base(anchor);
        if home.is_none() || object_base(function) != home || object_base(tramp) != home {
            return Err(
                "the handler must be a function of the program's own executable \
                        (not of a shared library); use build_forking for other handlers"
                    .into(),
            );
        }
        let offset = |addr: usize| (addr as i64).wrapping_sub(anchor as i64);
        Ok(Entry {
            trampoline: offset(tramp),
            function: offset(function),
            types: types_hash::<Req, Resp>(),
        })
    }

    /// The trampoline and handler address this entry names, in this process.
    fn resolve(self) -> Result<(Trampoline, usize), String> {
        let at = |offset: i64| (anchor_address() as i64).wrapping_add(offset) as usize;
        let (tramp, function) = (at(self.trampoline), at(self.function));
        // SAFETY: `tramp` is the address of a `Trampoline` of this binary: the
        // supervisor computed its offset with `Entry::of` in a process running
        // the same file, from the same anchor (see the module docs). The
        // supervisor is this process's parent, which started it with this
        // entry over a socket only the two of them hold.
        let tramp = unsafe { std::mem::transmute::<*const (), Trampoline>(tramp as *const ()) };
        if tramp(function, None) as u64 != self.types {
            return Err("the handler's types do not match (is this the same program?)".into());
        }
        Ok((tramp, function))
    }
}

/// The load address of the object (executable or shared library) that holds
/// `address`.
fn object_base(address: usize) -> Option<usize> {
    // SAFETY: an all-zero Dl_info is a valid out-value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads its address argument as a number and writes
    // `info`, a valid out-pointer.
    let found = unsafe { libc::dladdr(address as *const libc::c_void, &mut info) };
    (found != 0 && !info.dli_fbase.is_null()).then_some(info.dli_fbase as usize)
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
    let child = command.spawn()?;
    drop(theirs);
    // From here the server is reaped as a `ForkedChild` (killed if dropped).
    let server = ForkedChild::adopt(child.id() as i32)?;
    std::mem::forget(child); // std's handle would not reap it; ours does
    let mut control = control;
    frame::write_frame(
        &mut control,
        &frame::encode(&ToServer::Setup(setup)).map_err(io::Error::other)?,
    )
    .map_err(io::Error::other)?;
    Ok((server, control))
}

/// Runs before `main` in every process of a program that links ply: in a
/// re-executed fork server it becomes the server and never returns.
#[ctor::ctor(unsafe)]
fn intercept() {
    let Some(value) = std::env::var_os(ENV) else {
        return;
    };
    // SAFETY: `exit` ends the process at once, skipping destructors and
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
    let (tramp, function) = match setup.handler.resolve() {
        Ok(found) => found,
        Err(why) => {
            let _ = super::send(&control, &FromServer::SetupFailed(why), &[]);
            return EXIT_BAD_BOOTSTRAP;
        }
    };
    let config = WorkerLoop {
        max_tasks: setup.max_tasks,
    };
    serve_ready(control, &|stream| {
        tramp(function, Some((stream, config))) as i32
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
