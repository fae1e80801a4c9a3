//! Starting a job's leader: straight into its cgroup, as the leader of a new
//! process group, with a pidfd — in one system call.
//!
//! `posix_spawn` (what `std::process::Command` uses) starts the child in the
//! parent's cgroup; moving it afterwards (`cgroup.procs`) is a cgroup
//! migration, which costs as much as a third of spawning `/bin/true`, and
//! leaves a window in which the child may fork outside its cgroup.
//! `clone3(2)` with `CLONE_INTO_CGROUP` (Linux 5.7) starts it in the cgroup
//! instead: no migration, no window. The rest is what `posix_spawn` does,
//! done the same way:
//!
//! - `CLONE_VM | CLONE_VFORK`: the child shares the parent's memory, on a
//!   stack of its own, and the parent thread waits until it has called
//!   `execve` (or exited). No page tables are copied, so the start costs
//!   the same as `posix_spawn`'s (measured: 35 µs of parent CPU per start of
//!   `/bin/true` against std's 39, where a fork-like clone costs 73 and
//!   std's spawn plus a migration 60; `benches/runner.sh` has the run-wide
//!   figures).
//! - `CLONE_CLEAR_SIGHAND` (Linux 5.5): the child starts with every handled
//!   signal back at its default action, so no handler of the parent's can
//!   run on the child's stack over the parent's memory. (glibc's
//!   `posix_spawn` resets the handlers one `sigaction` at a time.)
//! - `CLONE_PIDFD`: the pidfd that event loops wait on, without a separate
//!   `pidfd_open`.
//! - In the child, only system calls: `setpgid`, `dup2`, `sigaction`
//!   (SIGPIPE back to default, as std does), `sigprocmask` (an empty mask),
//!   `execve`. Everything they need — paths, argument and environment
//!   vectors — is prepared by the parent beforehand. A failure is written
//!   to memory the parent reads once it resumes (the memory is shared), and
//!   the child exits.
//!
//! The stack switch needs a few instructions of assembly, written here for
//! x86-64. Elsewhere, and where the kernel or a seccomp filter refuses
//! `clone3` (Docker's default profile answers ENOSYS), [`spawn`] reports
//! [`Spawned::Unsupported`] and the host falls back to `posix_spawn` and a
//! migration. References: `clone(2)`, glibc's `sysdeps/unix/sysv/linux/spawni.c`
//! and `clone3.S`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5; not in the libc crate).
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
/// `CLONE_INTO_CGROUP` (Linux 5.7; not in the libc crate).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` (`linux/sched.h`), up to `cgroup` (`CLONE_ARGS_SIZE_VER2`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What the child needs, prepared by the parent; `error` is written by the
/// child.
#[repr(C)]
struct ChildPlan {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// Descriptors to become 0, 1, 2 (`-1`: leave as inherited).
    stdio: [RawFd; 3],
    empty_mask: libc::sigset_t,
    /// The child's errno when it failed before `execve` succeeded, else 0.
    error: i32,
}

/// The stack the child runs on until `execve`: one mapping per host,
/// reused, with a guard page below it.
#[derive(Debug)]
pub(super) struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is owned by the ChildStack alone and only used by the
// one spawn in progress, which holds `&mut` to it; it can move threads.
unsafe impl Send for ChildStack {}
// SAFETY: `&ChildStack` gives no access to the mapping.
unsafe impl Sync for ChildStack {}

/// The child's stack size: the child runs a few system calls, no more.
const STACK: usize = 64 << 10;

impl ChildStack {
    pub(super) fn new() -> io::Result<ChildStack> {
        let page = 4096;
        let len = STACK + page;
        // SAFETY: an anonymous private mapping; no pointer is passed in.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // The lowest page traps an overflow instead of writing below.
        // SAFETY: the first page of the mapping just made.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The stack's low end and size, past the guard page.
    fn area(&self) -> (u64, u64) {
        let page = 4096;
        (self.base as u64 + page as u64, (self.len - page) as u64)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no longer used by any child
        // (every spawn returns only after its child has exec'd or exited).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// A started leader.
#[derive(Debug)]
pub(super) struct Started {
    pub pid: u32,
    pub pidfd: OwnedFd,
}

/// The outcome of [`spawn`].
#[derive(Debug)]
pub(super) enum Spawned {
    Started(Started),
    /// This kernel, filter or architecture does not offer what is needed:
    /// use `posix_spawn`.
    Unsupported,
}

/// What to start.
pub(super) struct Plan<'a> {
    pub path: &'a CStr,
    pub argv: &'a [*const libc::c_char],
    pub envp: &'a [*const libc::c_char],
    pub stdio: [RawFd; 3],
    /// The cgroup directory to start the child in.
    pub cgroup: Option<RawFd>,
}

/// Duplicates `fd` to a descriptor above 2 (close-on-exec) if it is one of
/// 0, 1, 2, so that putting the child's stdio in place never overwrites a
/// descriptor still to be moved. Rust programs have 0, 1 and 2 open, so
/// this happens only in unusual callers.
pub(super) fn above_stdio(fd: RawFd) -> io::Result<Option<OwnedFd>> {
    if !(0..=2).contains(&fd) {
        return Ok(None);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new one or -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(new) }))
}

/// Runs in the child, on the child stack, sharing the parent's memory
/// while the parent thread waits: system calls only, then `execve` or exit.
///
/// # Safety
///
/// `plan` points to a live [`ChildPlan`] whose pointers are valid (the
/// parent keeps them alive: it is suspended until this exec's or exits).
#[cfg(target_arch = "x86_64")]
unsafe extern "C" fn child(plan: *mut ChildPlan) -> ! {
    // SAFETY: see the function's contract; each call below is a system
    // call wrapper on memory the plan owns, safe to run in a vfork child
    // (no allocation, no locks; errno is the suspended parent thread's,
    // which it does not read across the spawn).
    unsafe {
        /// Records errno for the parent and exits.
        unsafe fn fail(plan: &mut ChildPlan) -> ! {
            // SAFETY: errno's location is valid in this thread context.
            plan.error = unsafe { *libc::__errno_location() };
            // SAFETY: _exit ends this child at once.
            unsafe { libc::_exit(127) }
        }
        let plan = &mut *plan;
        if libc::setpgid(0, 0) != 0 {
            fail(plan);
        }
        for (target, &fd) in plan.stdio.iter().enumerate() {
            if fd >= 0 && libc::dup2(fd, target as RawFd) < 0 {
                fail(plan);
            }
        }
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        if libc::sigaction(libc::SIGPIPE, &default, std::ptr::null_mut()) != 0
            || libc::sigprocmask(libc::SIG_SETMASK, &plan.empty_mask, std::ptr::null_mut()) != 0
        {
            fail(plan);
        }
        libc::execve(plan.path, plan.argv, plan.envp);
        fail(plan)
    }
}

/// `clone3` on a new stack: returns the child's pid (or `-errno`) in the
/// parent; the child calls `child(plan)`, which never returns.
///
/// # Safety
///
/// `args` describes a valid clone (its stack unused by anything else), and
/// `plan` is valid until the call returns (`CLONE_VFORK` keeps the parent
/// here until the child has exec'd or exited).
#[cfg(target_arch = "x86_64")]
unsafe fn clone3(args: &mut CloneArgs, plan: *mut ChildPlan) -> i64 {
    let ret: i64;
    // SAFETY: the caller's contract. In the parent, the syscall returns
    // with rcx and r11 clobbered (declared) and rax the result. In the
    // child (rax 0), rsp is the new stack's top (16-byte aligned), rbp is
    // cleared for backtraces, and `child` is called with `plan` in rdi; it
    // never returns (the `ud2` would trap if it did). The asm reads and
    // writes memory (the plan), so no `nomem`.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") plan,
            in("r13") child as *const () as usize,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

/// Starts `plan`'s program in a new process group (and in its cgroup),
/// with a pidfd.
///
/// # Errors
///
/// The child's error before `execve` succeeded (`ENOENT` for a missing
/// program, …), or `clone3`'s when it is not a lack of support.
#[cfg(target_arch = "x86_64")]
pub(super) fn spawn(plan: &Plan<'_>, stack: &mut ChildStack) -> io::Result<Spawned> {
    debug_assert!(plan.argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(plan.envp.last().is_some_and(|p| p.is_null()));
    let mut child_plan = ChildPlan {
        path: plan.path.as_ptr(),
        argv: plan.argv.as_ptr(),
        envp: plan.envp.as_ptr(),
        stdio: plan.stdio,
        // SAFETY: an all-zero sigset is valid; sigemptyset then defines it.
        empty_mask: unsafe { std::mem::zeroed() },
        error: 0,
    };
    // SAFETY: a valid sigset to initialize.
    unsafe { libc::sigemptyset(&mut child_plan.empty_mask) };
    let mut pidfd: RawFd = -1;
    let (stack_low, stack_size) = stack.area();
    let mut args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64
            | CLONE_CLEAR_SIGHAND
            | plan.cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack_low,
        stack_size,
        cgroup: plan.cgroup.map_or(0, |fd| fd as u64),
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a complete clone_args on a stack this spawn owns
    // (`&mut`); `child_plan` and everything it points to live until the
    // call returns, which is after the child exec'd or exited.
    let ret = unsafe { clone3(&mut args, &mut child_plan) };
    if ret < 0 {
        let errno = -ret as i32;
        return match errno {
            libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EPERM => Ok(Spawned::Unsupported),
            _ => Err(super::SetupError::Process(io::Error::from_raw_os_error(errno)).into()),
        };
    }
    // SAFETY: CLONE_PIDFD stored a fresh pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let pid = ret as libc::pid_t;
    // SAFETY: the child wrote `error` before exiting or exec'ing, and the
    // parent resumed only after that (CLONE_VFORK); a volatile read keeps
    // the compiler from assuming the value it stored.
    let error = unsafe { std::ptr::read_volatile(&child_plan.error) };
    if error != 0 {
        // SAFETY: the child is ours and unreaped; nothing else waits for it.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        return Err(io::Error::from_raw_os_error(error));
    }
    Ok(Spawned::Started(Started {
        pid: pid as u32,
        pidfd,
    }))
}

/// No fast path on this architecture.
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn spawn(_plan: &Plan<'_>, _stack: &mut ChildStack) -> io::Result<Spawned> {
    Ok(Spawned::Unsupported)
}

/// An executable file `program` names: itself if it holds a `/`, else the
/// first in `PATH` (as `execvp` searches); `None` if there is none.
pub(super) fn resolve(program: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    if program.as_bytes().contains(&b'/') {
        return Some(program.into());
    }
    if program.is_empty() {
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).find_map(|dir| {
        let candidate = dir.join(program);
        let meta = std::fs::metadata(&candidate).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
    })
}

/// `bytes` as a C string; an interior NUL is an `InvalidInput` error.
pub(super) fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a NUL byte in a program name, argument or environment variable",
        )
    })
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fds nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `/dev/null`, open for reading and writing, close-on-exec.
pub(super) fn dev_null() -> io::Result<OwnedFd> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    Ok(OwnedFd::from(file))
}

/// The raw descriptor of an optional owned one, or -1.
pub(super) fn raw(fd: Option<&OwnedFd>) -> RawFd {
    fd.map_or(-1, AsRawFd::as_raw_fd)
}
