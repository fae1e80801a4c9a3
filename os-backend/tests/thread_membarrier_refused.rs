//! The thread pool where the kernel refuses `membarrier(2)`: a seccomp filter
//! (as a sandbox installs one) makes the system call fail, before the first
//! pool is built or while a pool runs. Each case runs in a forked child (a
//! filter cannot be removed, and the fence choice is made once per process),
//! which counts every task of a workload that lets the workers go idle (so
//! they sleep, the heavy side of the fence pair) and then drops the pool (the
//! closer's heavy side); the parent fails the test if the child hangs.
//!
//! This binary builds no pool in its own process: a forked child must start
//! with the fence choice not yet made.

use std::time::Duration;

use ply_os::fork::{ChildExit, fork_child};
use ply_os::thread::ThreadPool;

const SYS_MEMBARRIER: u32 = libc::SYS_membarrier as u32;
/// `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (`<linux/membarrier.h>`).
const CMD_PRIVATE_EXPEDITED: u32 = 1 << 3;
/// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`.
const CMD_REGISTER_PRIVATE_EXPEDITED: u32 = 1 << 4;

/// `struct sock_filter` (`<linux/filter.h>`).
#[repr(C)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

fn stmt(code: u32, k: u32) -> SockFilter {
    SockFilter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump_eq(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// What the filter refuses.
#[derive(Clone, Copy)]
enum Refuse {
    /// Every `membarrier` call (a kernel without it, or a sandbox).
    Everything,
    /// Only the barrier itself: the query and the registration succeed.
    TheBarrier,
}

/// Installs, on every thread of this process, a filter that makes the
/// refused `membarrier` calls fail with `EPERM`. Returns whether it worked.
fn refuse_membarrier(refuse: Refuse) -> bool {
    let load_nr = stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0);
    // `seccomp_data.args[0]`, its low half (little-endian).
    let load_cmd = stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 16);
    let allow = stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW);
    let deny = stmt(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
    );
    let program = match refuse {
        Refuse::Everything => vec![load_nr, jump_eq(SYS_MEMBARRIER, 0, 1), deny, allow],
        Refuse::TheBarrier => vec![
            load_nr,
            jump_eq(SYS_MEMBARRIER, 0, 3),
            load_cmd,
            jump_eq(CMD_PRIVATE_EXPEDITED, 0, 1),
            deny,
            allow,
        ],
    };
    let fprog = SockFprog {
        len: program.len() as u16,
        filter: program.as_ptr(),
    };
    // SAFETY: `prctl` and `seccomp` read only `fprog` and the program it
    // points to, both alive across the calls.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_TSYNC,
                &fprog as *const SockFprog,
            ) == 0
    }
}

fn membarrier(cmd: u32) -> libc::c_long {
    // SAFETY: `membarrier` takes integers and touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd as libc::c_long, 0, 0) }
}

/// Rounds of tasks, with idle gaps in which the workers go to sleep; every
/// result checked. Returns whether all were right.
fn workload(pool: &ThreadPool, rounds: u64) -> bool {
    for round in 0..rounds {
        let handles: Vec<_> = (0..64u64)
            .map(|i| pool.submit(move || round * 1000 + i).unwrap())
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            if h.join() != Ok(round * 1000 + i as u64) {
                return false;
            }
        }
        // Idle long enough for the workers to stop spinning and sleep.
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// Runs `body` in a forked child and returns its exit code; fails the test
/// if the child is not done within 30 s (it is killed).
fn in_child(body: fn() -> i32) -> i32 {
    let mut child = fork_child(body).expect("fork");
    let exit = child.wait_timeout(Duration::from_secs(30)).expect("wait");
    match exit.expect("the child hung (killed after 30 s)") {
        ChildExit::Exited(code) => code,
        other => panic!("the child died: {other:?}"),
    }
}

/// Exit codes of the children: 0 is success.
const NO_FILTER: i32 = 2;
const FILTER_INEFFECTIVE: i32 = 3;
const WRONG_RESULT: i32 = 4;

fn refused_from_the_start(refuse: Refuse) -> i32 {
    if !refuse_membarrier(refuse) {
        return NO_FILTER;
    }
    if membarrier(CMD_PRIVATE_EXPEDITED) == 0 {
        return FILTER_INEFFECTIVE;
    }
    let pool = ThreadPool::new(2).unwrap();
    let ok = workload(&pool, 20);
    drop(pool); // closes: the closer's heavy fence
    if ok { 0 } else { WRONG_RESULT }
}

#[test]
fn a_pool_works_and_shuts_down_where_membarrier_is_refused() {
    assert_eq!(in_child(|| refused_from_the_start(Refuse::Everything)), 0);
}

#[test]
fn a_pool_works_and_shuts_down_where_only_the_barrier_is_refused() {
    assert_eq!(in_child(|| refused_from_the_start(Refuse::TheBarrier)), 0);
}

#[test]
fn a_pool_survives_membarrier_being_refused_while_it_runs() {
    let code = in_child(|| {
        let pool = ThreadPool::new(2).unwrap();
        if !workload(&pool, 5) {
            return WRONG_RESULT;
        }
        // The pool chose membarrier (if the kernel has it); a sandbox now
        // takes it away.
        let registered = membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
        if !refuse_membarrier(Refuse::Everything) {
            return NO_FILTER;
        }
        if registered && membarrier(CMD_PRIVATE_EXPEDITED) == 0 {
            return FILTER_INEFFECTIVE;
        }
        let ok = workload(&pool, 20);
        drop(pool);
        if ok { 0 } else { WRONG_RESULT }
    });
    assert_eq!(code, 0);
}
