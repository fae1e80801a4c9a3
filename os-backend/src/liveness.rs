//! [`ThreadLiveness`]: ply-core's [`Liveness`] seam for Linux threads.
//!
//! A robust lock (ply-core's `RobustMutex`) records its holder's *owner token*
//! and, when a waiter has waited long enough, asks whether that owner can
//! still run. Here an owner is a thread, and its token packs
//!
//! | bits | what |
//! |---|---|
//! | 0–21 | the thread id (Linux caps ids at 2^22, `PID_MAX_LIMIT`) |
//! | 22–30 | the low 9 bits of the thread's start time, in clock ticks since boot |
//!
//! A thread is alive while `/proc/<tid>/stat` exists, does not say it has
//! exited (`Z`ombie or `X`), and shows the same start time. The start time is
//! what guards against a reused thread id: once the holder is gone, a new
//! thread that gets its id started later, and matches its 9 bits with
//! probability 1/512 — and then it is taken for alive, which only delays a
//! takeover; it can never cause one while the holder lives. When `/proc`
//! cannot be read for another reason, the answer is "alive".
//!
//! Every process using one lock must see the same thread ids: they must share
//! a PID namespace, as processes related by `fork` do.
//!
//! Reading `/proc` costs a few microseconds, so a thread computes its own
//! token once and caches it; a `pthread_atfork` handler invalidates the cache
//! in a forked child (whose thread has a new id).
//!
//! The handler is registered by the first call, through a `ForkSafeOnce`: a
//! `std::sync::Once` here made a child forked while another thread ran the
//! registration wait forever for a thread that does not exist in it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::once::ForkSafeOnce;

use ply_core::sync::Liveness;

// SAFETY: zero-sized; its tokens are thread ids of the PID namespace, which
// name the same threads in every process of it.
unsafe impl ply_core::ShmSafe for ThreadLiveness {}

/// Bits of a token holding the thread id.
const TID_BITS: u32 = 22;
const TID_MASK: u32 = (1 << TID_BITS) - 1;
/// Bits of a token holding the start-time tag (above the thread id).
const TAG_MASK: u64 = (1 << 9) - 1;

/// Forks seen by this process's children (bumped in the child by `atfork`);
/// a cached token from another generation belongs to the parent's thread.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
/// Registers the handler that keeps cached tokens honest across `fork`.
static ATFORK: ForkSafeOnce = ForkSafeOnce::new();

/// Whether the `atfork` handler is registered (registering it if not), so a
/// token may be cached.
fn atfork_registered() -> bool {
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    ATFORK.run(|| {
        // SAFETY: registers a handler that only bumps an atomic, which is
        // async-signal-safe as a forked child requires.
        let ok = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) } == 0;
        // Relaxed: published by the once's Release.
        REGISTERED.store(ok, Ordering::Relaxed);
    });
    REGISTERED.load(Ordering::Relaxed)
}

std::thread_local! {
    /// This thread's token and the fork generation it was computed in.
    static TOKEN: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

extern "C" fn after_fork_in_child() {
    // Relaxed: the child is single-threaded here; its thread reads it next.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Owners are Linux threads, identified by thread id and start time (see the
/// module docs). Use it with ply-core's `RobustMutex`, with
/// [`FutexPark`](crate::park::FutexPark) for sleeping waiters.
///
/// # Example
///
/// ```
/// use ply_core::sync::Liveness;
/// use ply_os::liveness::ThreadLiveness;
///
/// let me = ThreadLiveness.current();
/// assert_ne!(me, 0);
/// assert!(ThreadLiveness.is_alive(me));
/// let other = std::thread::spawn(|| ThreadLiveness.current()).join().unwrap();
/// assert_ne!(other, me);
/// assert!(!ThreadLiveness.is_alive(other), "that thread has exited");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadLiveness;

// SAFETY: `current` packs the calling thread's id (unique among live threads
// of the PID namespace, below 2^22) with a tag, so tokens are non-zero (ids are
// positive), below 2^31, and distinct for live threads; the cache is per thread
// and reset in a forked child, so a thread always gets its own. `is_alive`
// answers `false` only when the id no longer exists, has exited (Z/X), or
// belongs to a thread started at another time: in each case the thread that
// had the token can never run again.
unsafe impl Liveness for ThreadLiveness {
    fn current(&self) -> u32 {
        if !atfork_registered() {
            // No handler, so a fork could not invalidate a cached token.
            return token_of(this_thread_id());
        }
        let generation = FORK_GENERATION.load(Ordering::Relaxed);
        TOKEN.with(|cached| {
            let (seen, token) = cached.get();
            if token != 0 && seen == generation {
                return token;
            }
            let token = token_of(this_thread_id());
            cached.set((generation, token));
            token
        })
    }

    fn is_alive(&self, token: u32) -> bool {
        let tid = token & TID_MASK;
        match read_stat(tid) {
            Stat::Gone => false,
            Stat::Unknown => true,
            Stat::Running { exited, start } => !exited && tag(start) == token >> TID_BITS,
        }
    }
}

/// The calling thread's id.
fn this_thread_id() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    u32::try_from(tid).expect("Linux thread ids are positive and below 2^22")
}

/// The token of thread `tid`: its id, and its start-time tag (0 if `/proc`
/// cannot tell; then liveness checks cannot tell either, and answer "alive").
fn token_of(tid: u32) -> u32 {
    debug_assert!(tid != 0 && tid <= TID_MASK);
    let start = match read_stat(tid) {
        Stat::Running { start, .. } => start,
        Stat::Gone | Stat::Unknown => 0,
    };
    tid | tag(start) << TID_BITS
}

fn tag(start: u64) -> u32 {
    (start & TAG_MASK) as u32
}

/// What `/proc/<tid>/stat` says about a thread.
enum Stat {
    /// No such thread.
    Gone,
    /// `/proc` could not be read or parsed.
    Unknown,
    /// The thread exists; `exited` if it is a zombie or dead.
    Running { exited: bool, start: u64 },
}

fn read_stat(tid: u32) -> Stat {
    match std::fs::read_to_string(format!("/proc/{tid}/stat")) {
        Ok(stat) => parse_stat(&stat).unwrap_or(Stat::Unknown),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stat::Gone,
        // ESRCH: the thread went away while we read.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Stat::Gone,
        Err(_) => Stat::Unknown,
    }
}

/// The state (field 3) and start time (field 22) from a `stat` line. The
/// command name (field 2) is in parentheses and may contain anything, so the
/// fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<Stat> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some(Stat::Running {
        exited: matches!(state, "Z" | "X" | "x"),
        start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::{Signal, fork_child};
    use crate::shm::SharedBox;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn parses_a_stat_line_with_a_hostile_command_name() {
        let line = "4242 (a) b) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99123 20 21\n";
        match parse_stat(line) {
            Some(Stat::Running { exited, start }) => {
                assert!(exited);
                assert_eq!(start, 99123);
            }
            _ => panic!("did not parse"),
        }
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S 2").is_none());
    }

    #[test]
    fn a_token_carries_the_thread_id_and_stays_the_same() {
        let me = ThreadLiveness.current();
        assert_eq!(me & TID_MASK, this_thread_id());
        assert_eq!(me >> 31, 0);
        assert_eq!(ThreadLiveness.current(), me);
    }

    #[test]
    fn a_reused_thread_id_is_not_taken_for_the_holder() {
        // Our own id with another start-time tag: a thread that had our id
        // before us (or will after us) is not us.
        let me = ThreadLiveness.current();
        let other_tag = (me >> TID_BITS ^ 1) << TID_BITS;
        assert!(!ThreadLiveness.is_alive(me & TID_MASK | other_tag));
        assert!(ThreadLiveness.is_alive(me));
    }

    #[test]
    fn a_forked_child_gets_its_own_token_and_is_dead_once_reaped() {
        let parent = ThreadLiveness.current();
        let token: &'static SharedBox<AtomicU32> =
            Box::leak(Box::new(SharedBox::new(AtomicU32::new(0)).unwrap()));
        let child = fork_child(move || {
            token.store(ThreadLiveness.current(), Ordering::SeqCst);
            0
        })
        .unwrap();
        let exit = child.wait().unwrap();
        assert!(exit.success());
        let child_token = token.load(Ordering::SeqCst);
        assert_ne!(child_token, 0);
        assert_ne!(
            child_token, parent,
            "the child must not reuse the parent's cache"
        );
        assert!(!ThreadLiveness.is_alive(child_token));
        assert!(ThreadLiveness.is_alive(parent));
    }

    #[test]
    fn a_stopped_process_is_alive_and_a_zombie_is_not() {
        let token: &'static SharedBox<AtomicU32> =
            Box::leak(Box::new(SharedBox::new(AtomicU32::new(0)).unwrap()));
        let child = fork_child(move || {
            token.store(ThreadLiveness.current(), Ordering::SeqCst);
            // SAFETY: raise has no memory-safety preconditions.
            unsafe { libc::raise(libc::SIGSTOP) };
            0
        })
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while token.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "watchdog");
            std::thread::yield_now();
        }
        let t = token.load(Ordering::SeqCst);
        assert!(
            ThreadLiveness.is_alive(t),
            "stopped (or about to be): alive"
        );
        child.kill(Signal::KILL).unwrap();
        // Killed but not yet reaped: a zombie, which can never run again.
        while matches!(read_stat(t & TID_MASK), Stat::Running { exited: false, .. }) {
            assert!(std::time::Instant::now() < deadline, "watchdog");
            std::thread::yield_now();
        }
        assert!(!ThreadLiveness.is_alive(t));
        drop(child); // reaps
        assert!(!ThreadLiveness.is_alive(t));
    }
}
