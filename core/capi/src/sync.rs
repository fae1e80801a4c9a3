//! Locks and signals for C: ply-core's raw locks and its semaphore, event,
//! barrier and once, each a few atomic words with no pointers, so they work in
//! `MAP_SHARED` memory between processes exactly as between threads.
//!
//! Every blocking call has a bounded form taking a `ply_give_up_fn`. None can
//! tell that a holder died: a process killed while holding a lock leaves it held,
//! and only the bounded forms let the others notice.

use core::ffi::c_void;

use ply_core::sync::{Barrier, Event, Once, RawRwLock, RawSpinMutex, RawTicketMutex, Semaphore};

use crate::{
    GiveUp, PLY_BUSY, PLY_ERR_NOT_HELD, PLY_ERR_NULL, PLY_ERR_OVERFLOW, PLY_OK, PLY_TIMEOUT,
    check_ptrs, ply_give_up_fn, ply_status,
};

/// A test-and-test-and-set spin lock with backoff (ply-core's `RawSpinMutex`).
///
/// Its one byte is the lock word, part of the ABI: `PLY_SPIN_UNLOCKED` when
/// free, `PLY_SPIN_LOCKED` when held. It is taken by a compare-and-swap from
/// unlocked to locked with acquire ordering, and released by a store of
/// unlocked with release ordering; `ply.h` does both inline (see the end of the
/// header), the library's functions do the same, and the two mix freely.
pub struct ply_spin_t(RawSpinMutex);

/// The value of a free `ply_spin_t`'s lock word.
pub const PLY_SPIN_UNLOCKED: u8 = 0;
/// The value of a held `ply_spin_t`'s lock word.
pub const PLY_SPIN_LOCKED: u8 = 1;
/// A FIFO-fair ticket spin lock (ply-core's `RawTicketMutex`).
pub struct ply_ticket_t(RawTicketMutex);
/// A writer-preferring reader-writer spin lock (ply-core's `RawRwLock`).
pub struct ply_rwlock_t(RawRwLock);
/// A counting semaphore (ply-core's `Semaphore`, spinning while it waits).
pub struct ply_semaphore_t(Semaphore);
/// A settable flag that threads can wait for (ply-core's `Event`).
pub struct ply_event_t(Event);
/// A reusable barrier for a fixed number of parties (ply-core's `Barrier`).
pub struct ply_barrier_t(Barrier);
/// One-time initialization (ply-core's `Once`, from the `spin` crate).
pub struct ply_once_t(Once<()>);

/// Writes `value` to `*target` after checking the pointer.
macro_rules! init_with {
    ($target:expr, $value:expr) => {{
        check_ptrs!($target);
        // SAFETY: non-null and aligned (checked); writable (the caller's promise).
        unsafe { $target.write($value) };
        PLY_OK
    }};
}

/// `&*ptr`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` from the calling function.
macro_rules! deref {
    ($ptr:expr) => {{
        check_ptrs!($ptr);
        // SAFETY: non-null and aligned (checked); initialized (the caller's
        // promise).
        unsafe { &(*$ptr).0 }
    }};
}

/// `Some(&*ptr)`, or `None` for a NULL or misaligned `ptr`.
///
/// # Safety
///
/// `ptr` must be NULL, misaligned, or point to an initialized `T`.
unsafe fn get<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: non-null and aligned (checked); initialized (the caller's promise).
    (!ptr.is_null() && ptr.is_aligned()).then(|| unsafe { &*ptr })
}

/// `PLY_OK` if `done`, else `PLY_TIMEOUT`.
fn ok_or_timeout(done: bool) -> ply_status {
    if done { PLY_OK } else { PLY_TIMEOUT }
}

/// `PLY_OK` if `done`, else `PLY_BUSY`.
fn ok_or_busy(done: bool) -> ply_status {
    if done { PLY_OK } else { PLY_BUSY }
}

/// `PLY_OK` if `held` (the unlock happened), else `PLY_ERR_NOT_HELD`.
fn ok_or_not_held(held: bool) -> ply_status {
    if held { PLY_OK } else { PLY_ERR_NOT_HELD }
}

// ---- spin lock ----

/// Initializes `lock` unlocked.
///
/// Thread and process safety: call it once, before any other use, and not
/// while anything else uses it.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must point to writable memory for a `ply_spin_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spin_init(lock: *mut ply_spin_t) -> ply_status {
    init_with!(lock, ply_spin_t(RawSpinMutex::new()))
}

/// Takes `lock`, spinning (with backoff) until it is free.
///
/// Thread and process safety: any thread or process; not reentrant (a holder
/// that locks again spins forever). A holder that dies leaves it held: use
/// `ply_spin_lock_until` where that can happen.
///
/// With GCC or Clang, `ply.h` turns `ply_spin_lock(lock)` into an inline
/// atomic swap that calls this function only when the lock is held (see the
/// end of the header); `(ply_spin_lock)(lock)` always calls it.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`.
///
/// # Safety
///
/// `lock` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spin_lock(lock: *const ply_spin_t) -> ply_status {
    deref!(lock).lock();
    PLY_OK
}

/// Takes `lock` if it is free, at once.
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK` (taken), `PLY_BUSY` (held by someone), or `PLY_ERR_NULL`.
///
/// # Safety
///
/// `lock` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spin_trylock(lock: *const ply_spin_t) -> ply_status {
    ok_or_busy(deref!(lock).try_lock())
}

/// Takes `lock`, calling `give_up(ctx)` after each failed attempt; stops when
/// it returns non-zero. NULL `give_up` waits forever.
///
/// Thread and process safety: any thread or process; `give_up` runs on the
/// calling thread.
///
/// Returns `PLY_OK` (taken), `PLY_TIMEOUT` (gave up, not taken), or
/// `PLY_ERR_NULL`.
///
/// # Safety
///
/// `lock` must be initialized; `give_up` callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spin_lock_until(
    lock: *const ply_spin_t,
    give_up: ply_give_up_fn,
    ctx: *mut c_void,
) -> ply_status {
    ok_or_timeout(deref!(lock).lock_with(GiveUp::new(give_up, ctx)))
}

/// Releases `lock`.
///
/// Thread and process safety: only its holder may call it, from any thread of
/// the holding process (a lock taken inline may be released here, and the
/// other way round).
///
/// With GCC or Clang, `ply.h` turns `ply_spin_unlock(lock)` into the same
/// release store, inline; `(ply_spin_unlock)(lock)` always calls this function.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`.
///
/// # Safety
///
/// `lock` must be initialized and held by the caller.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_spin_unlock(lock: *const ply_spin_t) -> ply_status {
    let lock = deref!(lock);
    // SAFETY: the caller holds the lock.
    unsafe { lock.unlock() };
    PLY_OK
}

// ---- ticket lock ----

/// Initializes `lock` unlocked.
///
/// Thread and process safety: call it once, before any other use, and not
/// while anything else uses it.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must point to writable memory for a `ply_ticket_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_ticket_init(lock: *mut ply_ticket_t) -> ply_status {
    init_with!(lock, ply_ticket_t(RawTicketMutex::new()))
}

/// Takes `lock` in FIFO order: waiters are served in the order they arrived.
///
/// Thread and process safety: any thread or process; not reentrant. A waiter
/// that dies while waiting has its turn revoked after a delay; a holder that
/// dies leaves the lock held (use `ply_ticket_lock_until` where that can
/// happen).
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_ticket_lock(lock: *const ply_ticket_t) -> ply_status {
    deref!(lock).lock();
    PLY_OK
}

/// Takes `lock` only if no one holds it or waits for it.
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK`, `PLY_BUSY`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_ticket_trylock(lock: *const ply_ticket_t) -> ply_status {
    ok_or_busy(deref!(lock).try_lock())
}

/// Takes `lock`, giving up when `give_up(ctx)` returns non-zero (NULL: never).
/// A waiter that gives up never leaves the lock stuck on its ticket.
///
/// Thread and process safety: any thread or process; `give_up` runs on the
/// calling thread.
///
/// Returns `PLY_OK`, `PLY_TIMEOUT`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized; `give_up` callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_ticket_lock_until(
    lock: *const ply_ticket_t,
    give_up: ply_give_up_fn,
    ctx: *mut c_void,
) -> ply_status {
    ok_or_timeout(deref!(lock).lock_with(GiveUp::new(give_up, ctx)))
}

/// Releases `lock` to the next ticket.
///
/// Thread and process safety: only its holder may call it.
///
/// Returns `PLY_OK`; `PLY_ERR_NOT_HELD` if nobody holds `lock` (nothing
/// changes); or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized, and held by the caller or by nobody.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_ticket_unlock(lock: *const ply_ticket_t) -> ply_status {
    let lock = deref!(lock);
    // SAFETY: held by the caller or by nobody (the caller's promise).
    ok_or_not_held(unsafe { lock.unlock_checked() })
}

// ---- reader-writer lock ----

/// Initializes `lock` unlocked.
///
/// Thread and process safety: call it once, before any other use, and not
/// while anything else uses it.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must point to writable memory for a `ply_rwlock_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_rwlock_init(lock: *mut ply_rwlock_t) -> ply_status {
    init_with!(lock, ply_rwlock_t(RawRwLock::new()))
}

/// Takes `lock` shared. Readers wait while a writer holds it or waits for it
/// (writers are preferred).
///
/// Thread and process safety: any thread or process; not reentrant while a
/// writer waits.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_rwlock_read(lock: *const ply_rwlock_t) -> ply_status {
    deref!(lock).read();
    PLY_OK
}

/// Takes `lock` shared if that needs no waiting.
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK`, `PLY_BUSY`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_rwlock_tryread(lock: *const ply_rwlock_t) -> ply_status {
    ok_or_busy(deref!(lock).try_read())
}

/// Takes `lock` shared, giving up when `give_up(ctx)` returns non-zero (NULL:
/// never).
///
/// Thread and process safety: any thread or process; `give_up` runs on the
/// calling thread.
///
/// Returns `PLY_OK`, `PLY_TIMEOUT`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized; `give_up` callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_rwlock_read_until(
    lock: *const ply_rwlock_t,
    give_up: ply_give_up_fn,
    ctx: *mut c_void,
) -> ply_status {
    ok_or_timeout(deref!(lock).read_with(GiveUp::new(give_up, ctx)))
}

/// Releases a shared hold of `lock`.
///
/// Thread and process safety: only a holder of a shared hold may call it.
///
/// Returns `PLY_OK`; `PLY_ERR_NOT_HELD` if no reader holds `lock` (nothing
/// changes); or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized, and held shared by the caller or by no reader.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_rwlock_unlock_read(lock: *const ply_rwlock_t) -> ply_status {
    let lock = deref!(lock);
    // SAFETY: held shared by the caller or by no reader (the caller's promise).
    ok_or_not_held(unsafe { lock.unlock_read_checked() })
}

/// Takes `lock` exclusive.
///
/// Thread and process safety: any thread or process; not reentrant.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_rwlock_write(lock: *const ply_rwlock_t) -> ply_status {
    deref!(lock).write();
    PLY_OK
}

/// Takes `lock` exclusive if it is free.
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK`, `PLY_BUSY`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_rwlock_trywrite(lock: *const ply_rwlock_t) -> ply_status {
    ok_or_busy(deref!(lock).try_write())
}

/// Takes `lock` exclusive, giving up when `give_up(ctx)` returns non-zero
/// (NULL: never).
///
/// Thread and process safety: any thread or process; `give_up` runs on the
/// calling thread.
///
/// Returns `PLY_OK`, `PLY_TIMEOUT`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized; `give_up` callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_rwlock_write_until(
    lock: *const ply_rwlock_t,
    give_up: ply_give_up_fn,
    ctx: *mut c_void,
) -> ply_status {
    ok_or_timeout(deref!(lock).write_with(GiveUp::new(give_up, ctx)))
}

/// Releases the exclusive hold of `lock`.
///
/// Thread and process safety: only its holder may call it.
///
/// Returns `PLY_OK`; `PLY_ERR_NOT_HELD` if no writer holds `lock` (nothing
/// changes); or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `lock` must be initialized, and held exclusive by the caller or by no
/// writer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_rwlock_unlock_write(lock: *const ply_rwlock_t) -> ply_status {
    let lock = deref!(lock);
    // SAFETY: held exclusive by the caller or by no writer (the caller's
    // promise).
    ok_or_not_held(unsafe { lock.unlock_write_checked() })
}

// ---- semaphore ----

/// Initializes `sem` with `permits` permits.
///
/// Thread and process safety: call it once, before any other use, and not
/// while anything else uses it.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `sem` must point to writable memory for a `ply_semaphore_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_semaphore_init(sem: *mut ply_semaphore_t, permits: u32) -> ply_status {
    init_with!(sem, ply_semaphore_t(Semaphore::new(permits)))
}

/// Takes one permit, waiting (spinning) until one is free. Give it back with
/// `ply_semaphore_release`.
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `sem` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_semaphore_acquire(sem: *const ply_semaphore_t) -> ply_status {
    deref!(sem).acquire().forget();
    PLY_OK
}

/// Takes one permit if one is free now.
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK`, `PLY_BUSY` (none free), or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `sem` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_semaphore_tryacquire(sem: *const ply_semaphore_t) -> ply_status {
    match deref!(sem).try_acquire() {
        Some(permit) => {
            permit.forget();
            PLY_OK
        }
        None => PLY_BUSY,
    }
}

/// Takes one permit, giving up when `give_up(ctx)` returns non-zero (NULL:
/// never).
///
/// Thread and process safety: any thread or process; `give_up` runs on the
/// calling thread.
///
/// Returns `PLY_OK`, `PLY_TIMEOUT`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `sem` must be initialized; `give_up` callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_semaphore_acquire_until(
    sem: *const ply_semaphore_t,
    give_up: ply_give_up_fn,
    ctx: *mut c_void,
) -> ply_status {
    match deref!(sem).acquire_with(GiveUp::new(give_up, ctx)) {
        Some(permit) => {
            permit.forget();
            PLY_OK
        }
        None => PLY_TIMEOUT,
    }
}

/// Gives back `n` permits (any party may release; the count is not checked
/// against the initial one, only against its maximum, `UINT32_MAX`).
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK`; `PLY_ERR_OVERFLOW` if the count would pass `UINT32_MAX`
/// (no permit is released: a wrapped count would leave every later acquire
/// waiting); or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `sem` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_semaphore_release(sem: *const ply_semaphore_t, n: u32) -> ply_status {
    match deref!(sem).try_release(n) {
        Ok(()) => PLY_OK,
        Err(_) => PLY_ERR_OVERFLOW,
    }
}

/// The number of free permits (a snapshot).
///
/// Thread and process safety: any thread or process.
///
/// Returns the count; 0 for a NULL or misaligned `sem`.
///
/// # Safety
///
/// `sem` must be NULL or initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_semaphore_available(sem: *const ply_semaphore_t) -> u32 {
    // SAFETY: NULL or initialized (caller).
    unsafe { get(sem) }.map_or(0, |s| s.0.available())
}

// ---- event ----

/// Initializes `event` unset.
///
/// Thread and process safety: call it once, before any other use, and not
/// while anything else uses it.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `event` must point to writable memory for a `ply_event_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_event_init(event: *mut ply_event_t) -> ply_status {
    init_with!(event, ply_event_t(Event::new()))
}

/// Sets `event` and wakes every waiter; writes made before it are visible to
/// whoever sees it set.
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `event` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_event_set(event: *const ply_event_t) -> ply_status {
    deref!(event).set();
    PLY_OK
}

/// Clears `event`.
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `event` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_event_clear(event: *const ply_event_t) -> ply_status {
    deref!(event).clear();
    PLY_OK
}

/// Whether `event` is set (a snapshot).
///
/// Thread and process safety: any thread or process.
///
/// Returns `true` if set; `false` if not, or for a NULL or misaligned `event`.
///
/// # Safety
///
/// `event` must be NULL or initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_event_is_set(event: *const ply_event_t) -> bool {
    // SAFETY: NULL or initialized (caller).
    unsafe { get(event) }.is_some_and(|e| e.0.is_set())
}

/// Waits until `event` is set.
///
/// Thread and process safety: any thread or process.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `event` must be initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_event_wait(event: *const ply_event_t) -> ply_status {
    deref!(event).wait();
    PLY_OK
}

/// Waits until `event` is set, giving up when `give_up(ctx)` returns non-zero
/// (NULL: never).
///
/// Thread and process safety: any thread or process; `give_up` runs on the
/// calling thread.
///
/// Returns `PLY_OK` (set), `PLY_TIMEOUT`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `event` must be initialized; `give_up` callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_event_wait_until(
    event: *const ply_event_t,
    give_up: ply_give_up_fn,
    ctx: *mut c_void,
) -> ply_status {
    ok_or_timeout(deref!(event).wait_with(GiveUp::new(give_up, ctx)))
}

// ---- barrier ----

/// Initializes `barrier` for `parties` parties per round (at least 1).
///
/// Thread and process safety: call it once, before any other use, and not
/// while anything else uses it.
///
/// Returns `PLY_OK`, `PLY_ERR_RANGE` if `parties` is 0, or
/// `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `barrier` must point to writable memory for a `ply_barrier_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_barrier_init(barrier: *mut ply_barrier_t, parties: u32) -> ply_status {
    if parties == 0 {
        return crate::PLY_ERR_RANGE;
    }
    init_with!(barrier, ply_barrier_t(Barrier::new(parties)))
}

/// Arrives at `barrier` and waits for the round's other parties. Exactly one
/// party per round gets `*leader = true` (if `leader` is not NULL). Writes made
/// before arriving are visible to every party after it returns.
///
/// Thread and process safety: any thread or process; each party arrives once
/// per round. A party that dies before arriving leaves the others waiting: use
/// `ply_barrier_wait_until` where that can happen.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad `barrier`.
///
/// # Safety
///
/// `barrier` must be initialized; `leader` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_barrier_wait(
    barrier: *const ply_barrier_t,
    leader: *mut bool,
) -> ply_status {
    let result = deref!(barrier).wait();
    // SAFETY: NULL or writable (caller).
    if let Some(leader) = unsafe { leader.as_mut() } {
        *leader = result.is_leader();
    }
    PLY_OK
}

/// As `ply_barrier_wait`, giving up when `give_up(ctx)` returns non-zero (NULL:
/// never). Giving up does not take back the arrival: the round is broken for
/// the others, who must also give up.
///
/// Thread and process safety: as `ply_barrier_wait`; `give_up` runs on the
/// calling thread.
///
/// Returns `PLY_OK`, `PLY_TIMEOUT`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad
/// `barrier`.
///
/// # Safety
///
/// `barrier` must be initialized; `leader` NULL or writable; `give_up`
/// callable with `ctx`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_barrier_wait_until(
    barrier: *const ply_barrier_t,
    leader: *mut bool,
    give_up: ply_give_up_fn,
    ctx: *mut c_void,
) -> ply_status {
    match deref!(barrier).wait_with(GiveUp::new(give_up, ctx)) {
        Some(result) => {
            // SAFETY: NULL or writable (caller).
            if let Some(leader) = unsafe { leader.as_mut() } {
                *leader = result.is_leader();
            }
            PLY_OK
        }
        None => PLY_TIMEOUT,
    }
}

// ---- once ----

/// Initializes `once` as not yet run.
///
/// Thread and process safety: call it once, before any other use, and not
/// while anything else uses it.
///
/// Returns `PLY_OK`, or `PLY_ERR_NULL`/`PLY_ERR_ALIGN` for a bad pointer.
///
/// # Safety
///
/// `once` must point to writable memory for a `ply_once_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_once_init(once: *mut ply_once_t) -> ply_status {
    init_with!(once, ply_once_t(Once::new()))
}

/// Runs `f(arg)` if no call on `once` has run it yet; callers that arrive while
/// it runs wait until it has finished. After it returns, `f`'s writes are
/// visible to every caller.
///
/// Thread and process safety: any thread or process (a process that dies inside
/// `f` leaves the others waiting for good); `f` runs on one caller's thread.
///
/// Returns `PLY_OK`, `PLY_ERR_NULL` for a NULL `once` or `f`, or `PLY_ERR_ALIGN`.
///
/// # Safety
///
/// `once` must be initialized; `f` callable with `arg`, and must not call
/// `ply_once_call` on the same `once`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_once_call(
    once: *const ply_once_t,
    f: Option<unsafe extern "C" fn(arg: *mut c_void)>,
    arg: *mut c_void,
) -> ply_status {
    let Some(f) = f else {
        return PLY_ERR_NULL;
    };
    // SAFETY: `f` is callable with `arg` (caller).
    deref!(once).call_once(|| unsafe { f(arg) });
    PLY_OK
}

/// Whether `once` has run its function.
///
/// Thread and process safety: any thread or process.
///
/// Returns `true` if it has; `false` if not, or for a NULL or misaligned `once`.
///
/// # Safety
///
/// `once` must be NULL or initialized.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ply_once_is_done(once: *const ply_once_t) -> bool {
    // SAFETY: NULL or initialized (caller).
    unsafe { get(once) }.is_some_and(|o| o.0.is_completed())
}
