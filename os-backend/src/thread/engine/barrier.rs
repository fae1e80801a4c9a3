//! An asymmetric fence pair for the engine's two Dekker handshakes, whose one
//! side runs once per task and the other rarely: a [`light`] fence for the
//! side that runs per task (publishing work, then looking for sleepers or for
//! the pool closing) and a [`heavy`] one for the rare side (a worker about to
//! sleep, the pool closing).
//!
//! A `SeqCst` fence per push costs the pushing thread more than the push:
//! it waits until every earlier store — the job's slot, the ring's tail, whose
//! lines the workers read — has reached the cache, a miss each. With Linux's
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` the rare side makes every
//! running thread of the process execute a full barrier (by an
//! inter-processor interrupt; a thread that is not running passes one when it
//! is switched out), so the frequent side needs only to keep the compiler
//! from reordering: whichever instruction boundary of the light side the
//! heavy barrier hits, the light side's store before it is visible to the
//! heavy side's load after it, or the light side's load after it sees the
//! heavy side's store before it. It is the scheme of Linux's `membarrier(2)`
//! man page and of liburcu and folly's `asymmetricHeavyBarrier`.
//!
//! The price is on the rare side: each heavy fence is a system call that
//! interrupts every CPU then running a thread of this process, a few
//! microseconds in all. A worker pays it once per sleep, after spinning,
//! and next to the futex calls of sleeping and being woken.
//!
//! Where the kernel lacks the command (before Linux 4.14, or a sandbox that
//! filters it), both sides are `SeqCst` fences. The choice is made once per
//! process, before the first pool's threads start. Under loom both sides are
//! `SeqCst` fences: the models check the protocol on the assumption that a
//! light–heavy pair orders as a pair of fences does.
//!
//! # When the kernel refuses a barrier later
//!
//! A seccomp filter installed while pools run (a sandbox entered after
//! start-up), or the kernel short of memory, can make a barrier fail after
//! light fences were chosen. The process then gives up on membarrier for
//! good: light fences become `SeqCst` fences from then on. Light fences
//! already under way, or on threads that have not yet seen the switch, were
//! only compiler fences, and nothing in the memory model orders them; the
//! refused heavy fence therefore also waits [`GRACE`] before its `SeqCst`
//! fence. A light side's store, made before its load, is then out of its
//! CPU's store buffer (which drains in far less time on any real machine;
//! a thread switched out passes a full barrier anyway), so the heavy side's
//! later load sees it, or the light side's load came after the heavy side's
//! fenced store and saw that. This is an argument from hardware, not from
//! the language's model, and is used only on this degraded path; the
//! alternative, waiting for a barrier the kernel will never perform, hung
//! the pool's shutdown.

use std::sync::atomic::Ordering::SeqCst;

use super::primitive::fence;

#[cfg(not(loom))]
mod membarrier {
    use std::sync::atomic::AtomicU8;
    use std::sync::atomic::Ordering::Relaxed;

    // `<linux/membarrier.h>`.
    const CMD_QUERY: libc::c_long = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    /// Not decided yet.
    const UNKNOWN: u8 = 0;
    /// Registered, and a first barrier succeeded: light fences may be
    /// compiler fences.
    const REGISTERED: u8 = 1;
    /// The kernel lacks or refuses the command: both sides are fences.
    const UNAVAILABLE: u8 = 2;

    /// The process's choice. An atomic word rather than a `Once`: a `Once`
    /// that a `fork` copied while another thread ran its initializer stays
    /// "running" in the child for ever, and the child's first pool would
    /// wait on a thread that does not exist there. Here concurrent first
    /// callers each ask the kernel (registering twice is harmless) and the
    /// first answer stored wins; nobody ever waits.
    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

    fn membarrier(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: `membarrier` takes two integers and touches no memory of
        // ours; an unknown command or a refusal is an error return.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }

    /// Registers the process, if the kernel has the command and performs
    /// it: a sandbox may allow the registration but refuse the barrier
    /// itself (a seccomp filter on the command argument), so one barrier
    /// is tried before light fences are relied on.
    pub(super) fn init() {
        if STATE.load(Relaxed) != UNKNOWN {
            return;
        }
        let commands = membarrier(CMD_QUERY);
        let needed = CMD_PRIVATE_EXPEDITED | CMD_REGISTER_PRIVATE_EXPEDITED;
        let state = if commands >= 0
            && commands & needed == needed
            && membarrier(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
            && membarrier(CMD_PRIVATE_EXPEDITED) == 0
        {
            REGISTERED
        } else {
            UNAVAILABLE
        };
        // Relaxed: the first answer wins; see `registered`.
        let _ = STATE.compare_exchange(UNKNOWN, state, Relaxed, Relaxed);
    }

    /// Whether light fences may be compiler fences. Relaxed: every pool's
    /// construction calls `init` first, which returns only once the word is
    /// decided, and that happens before any use of the pool; the word
    /// changes afterwards only to `UNAVAILABLE` ([`give_up`]), which the
    /// heavy side that makes the change covers with its grace period.
    #[inline]
    pub(super) fn registered() -> bool {
        STATE.load(Relaxed) == REGISTERED
    }

    /// A full barrier on every running thread of the process. `false` if
    /// the kernel refused (a seccomp filter, or want of memory).
    pub(super) fn run() -> bool {
        membarrier(CMD_PRIVATE_EXPEDITED) == 0
    }

    /// Stops relying on membarrier: light fences are fences from now on.
    pub(super) fn give_up() {
        STATE.store(UNAVAILABLE, Relaxed);
    }
}

#[cfg(loom)]
mod membarrier {
    pub(super) fn init() {}
    pub(super) fn registered() -> bool {
        false
    }
    pub(super) fn run() -> bool {
        true
    }
    pub(super) fn give_up() {}
}

/// How long a heavy fence whose barrier the kernel refused waits before its
/// own fence (see the module docs): many times any store buffer's drain.
#[cfg(not(loom))]
const GRACE: std::time::Duration = std::time::Duration::from_millis(1);

/// Chooses the fences for the process (once); call before a pool's threads
/// start.
pub(crate) fn init() {
    membarrier::init();
}

/// The frequent side's fence: orders this thread's earlier stores before its
/// later loads against every [`heavy`] fence.
#[inline]
pub(crate) fn light() {
    if membarrier::registered() {
        std::sync::atomic::compiler_fence(SeqCst);
    } else {
        fence(SeqCst);
    }
}

/// The rare side's fence: a `SeqCst` fence, and the process-wide barrier that
/// [`light`] fences rely on. If the kernel refuses the barrier, the process
/// stops using it and this waits out light fences made without it (see the
/// module docs); it never fails and never waits for the kernel again.
pub(crate) fn heavy() {
    fence(SeqCst);
    if !membarrier::registered() || membarrier::run() {
        return;
    }
    membarrier::give_up();
    #[cfg(not(loom))]
    std::thread::sleep(GRACE);
    fence(SeqCst);
}
