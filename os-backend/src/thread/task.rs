//! Task handles: a submitted task's result, its panic, or its cancellation.
//!
//! # One cell per task
//!
//! A task and its handle share one heap cell: a 32-bit state word, the slot
//! its result is written to, and the sender `as_completed` may register. There
//! is no reference count and no lock: the state word says who may touch what,
//! and each side sets its own "gone" bit when it lets go; the side that lets
//! go second frees the cell (the scheme of `async-task` and tokio's task
//! cells). A joiner that finds the job gone already frees the cell without
//! setting its own bit: nobody is left to read it. Freed cells' memory goes
//! to a small per-thread cache ([`recycle`]), from which the thread's next
//! submissions take it. A joiner that has to wait sets `WAITING` and sleeps on the state
//! word itself (a futex), so finishing a task costs a system call only when
//! someone sleeps on it.
//!
//! | bit | set by | meaning |
//! |---|---|---|
//! | `STARTED` | the job | a worker claimed the task; it can no longer be cancelled |
//! | `CANCELLED` | the handle, or the job dropped unrun | the task will never run |
//! | `COMPLETE` | whoever settles it | the outcome is ready (a result, or cancelled) |
//! | `WAITING` | the joiner | it sleeps (or is about to) on the state word |
//! | `NOTIFY` | `as_completed` | a sender waits in the cell for the completion |
//! | `JOB_GONE`, `HANDLE_GONE` | each side | it no longer touches the cell |
//! | `TAKEN` | the handle, with `HANDLE_GONE` | it moved the result out |
//!
//! `STARTED` and `CANCELLED` are decided by read-modify-writes of the one
//! word, so exactly one of them wins. The result is written before `COMPLETE`
//! is published (`Release`) and read after it is seen (`Acquire`). The job
//! side publishes `COMPLETE` and `JOB_GONE` in one step when nobody waits or
//! listens; otherwise it publishes `COMPLETE`, wakes or notifies, and only
//! then lets go, so it never touches a cell the handle has freed.
//!
//! loom checks the protocol (`task/loom_models.rs`): a joiner racing the
//! completion, cancel racing start, a handle dropped while the task runs, a
//! job dropped unrun, and `as_completed` registering while it completes —
//! each outcome reported once, each result dropped once.

#[cfg(not(loom))]
use std::alloc::Layout;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::engine::help_own_pool;
use super::engine::primitive::{AtomicU32, EnginePark, UnsafeCell, engine_park, spin_loop};
use super::error::TaskError;
use super::job::Job;
use super::unwind::{drop_payload, drop_quietly, panic_message};

const STARTED: u32 = 1 << 0;
const CANCELLED: u32 = 1 << 1;
const COMPLETE: u32 = 1 << 2;
const WAITING: u32 = 1 << 3;
const NOTIFY: u32 = 1 << 4;
const JOB_GONE: u32 = 1 << 5;
const HANDLE_GONE: u32 = 1 << 6;
const TAKEN: u32 = 1 << 7;
/// Loom builds only: set when a cell is "freed". loom cannot see a use after
/// free, so its builds keep freed cells, marked, and every read-modify-write
/// of the state word asserts the mark is absent ([`assert_live`]).
#[cfg(loom)]
const FREED: u32 = 1 << 8;

/// Under loom, aborts the model run if `state` (a value just read from a
/// cell's word) shows the cell was freed: a side touched it after letting go.
/// (Aborts, as a panic on the job's side would be contained by the job.)
/// Nothing otherwise.
#[inline]
fn assert_live(state: u32) {
    #[cfg(loom)]
    if state & FREED != 0 {
        eprintln!("a task cell was used after it was freed");
        std::process::abort();
    }
    #[cfg(not(loom))]
    let _ = state;
}

/// Polls of the state word a joiner makes before it sleeps (a few hundred
/// nanoseconds: a task about to finish is not worth two system calls). It
/// does not yield: on a busy machine a yield hands the core to another
/// process for a whole time slice, and sleeping gives the workers the core.
#[cfg(not(loom))]
const JOIN_SPINS: u32 = 64;
#[cfg(loom)]
const JOIN_SPINS: u32 = 1;

/// A worker that joins and finds nothing to help with sleeps this long before
/// it looks for work again (a task it waits for may spawn work to help with).
const WORKER_NAP: Duration = Duration::from_micros(200);

/// What runs when a task finishes, for those who asked.
type Notice = Box<dyn FnOnce() + Send>;

/// The cell a task and its handle share (see the module docs).
struct Cell<T> {
    state: AtomicU32,
    park: EnginePark,
    /// Written by the job before `COMPLETE`, unless the task was cancelled.
    result: UnsafeCell<MaybeUninit<Result<T, TaskError>>>,
    /// Written by `as_completed`, `wait` or `on_complete` before `NOTIFY`;
    /// taken and called by whoever sees both `NOTIFY` and `COMPLETE` first.
    notify: UnsafeCell<Option<Notice>>,
}

/// A pointer to a live cell, for the two sides.
struct CellRef<T>(NonNull<Cell<T>>);

impl<T> CellRef<T> {
    fn new(state: u32) -> Self {
        let cell = Cell {
            state: AtomicU32::new(state),
            park: engine_park(),
            result: UnsafeCell::new(MaybeUninit::uninit()),
            notify: UnsafeCell::new(None),
        };
        #[cfg(not(loom))]
        {
            // A cell holds an atomic word, so its layout is not zero-sized.
            let block = recycle::take(Layout::new::<Cell<T>>()).cast::<Cell<T>>();
            // SAFETY: the block is fresh memory of `Cell<T>`'s layout.
            unsafe { block.as_ptr().write(cell) };
            CellRef(block)
        }
        #[cfg(loom)]
        CellRef(NonNull::from(Box::leak(Box::new(cell))))
    }

    fn cell(&self) -> &Cell<T> {
        // SAFETY: a `CellRef` exists only while its side has not let go (set
        // its gone bit), and the cell is freed only after both have.
        unsafe { self.0.as_ref() }
    }

    /// Frees the cell. `drop_result`: a result is in the slot that nobody
    /// took. The caller is the side that let go second.
    ///
    /// # Safety
    ///
    /// The other side has let go (this side saw its gone bit, with
    /// `Acquire`, set before its own or without setting its own), and this
    /// side makes no other access to the cell afterwards.
    unsafe fn free(&self, drop_result: bool) {
        if drop_result {
            // SAFETY: the job wrote the result (the caller checked it ran),
            // and nobody moved it out (no `TAKEN`); no one else touches the
            // cell any more (the contract).
            let result = self
                .cell()
                .result
                .with_mut(|r| unsafe { (*r).assume_init_read() });
            drop_quietly(result);
        }
        #[cfg(not(loom))]
        // SAFETY: per the contract, no one else touches the cell any more;
        // its block came from `recycle::take` in `new`. Dropping the cell
        // drops the notice, if any (the `as_completed` sender or an unsent
        // callback), and no result (a `MaybeUninit`).
        unsafe {
            std::ptr::drop_in_place(self.0.as_ptr());
            recycle::give(self.0.cast(), Layout::new::<Cell<T>>());
        }
        #[cfg(loom)]
        {
            assert_live(self.cell().state.fetch_or(FREED, Relaxed));
            // SAFETY: the notice slot is ours (both sides are done).
            drop(self.cell().notify.with_mut(|n| unsafe { (*n).take() }));
            // The cell is kept, marked (see `FREED`).
        }
    }

    /// Sends the registered completion notice. The caller is the one side
    /// that saw the other's bit when setting its own: the completer that set
    /// `COMPLETE` over `NOTIFY`, or the registrant that set `NOTIFY` over
    /// `COMPLETE`; the read-modify-writes order the slot's write before this.
    fn send_notice(&self) {
        // SAFETY: one caller, once (see above), after the slot was written.
        let notice = self.cell().notify.with_mut(|n| unsafe { (*n).take() });
        if let Some(notice) = notice {
            // A user's callback may panic: contained here, so the task is
            // still let go of and a worker lives on (the hook reports it).
            if let Err(payload) = catch_unwind(AssertUnwindSafe(notice)) {
                drop_payload(payload);
            }
        }
    }

    /// Settles the task from the job side and lets go: publishes `COMPLETE`
    /// (with `extra`: `CANCELLED` for a job dropped unrun), wakes a joiner,
    /// sends a notice, and frees the cell if the handle is gone.
    /// `wrote_result`: the job wrote a result into the slot.
    fn complete_and_let_go(self, extra: u32, wrote_result: bool) {
        let state = &self.cell().state;
        let mut seen = state.load(Relaxed);
        while seen & (WAITING | NOTIFY) == 0 {
            // Nobody waits or listens: settle and let go in one step. AcqRel:
            // Release publishes the result; Acquire sees a handle's last
            // accesses if it is gone (we then free).
            match state.compare_exchange_weak(
                seen,
                seen | COMPLETE | extra | JOB_GONE,
                AcqRel,
                Relaxed,
            ) {
                Ok(_) => {
                    assert_live(seen);
                    if seen & HANDLE_GONE != 0 {
                        // SAFETY: the handle let go before us; we are last.
                        unsafe { self.free(wrote_result) };
                    }
                    return;
                }
                Err(now) => seen = now,
            }
        }
        let before = state.fetch_or(COMPLETE | extra, AcqRel);
        assert_live(before);
        // Only the side that settles the task wakes and notifies (a handle
        // that cancelled it did both already).
        if before & COMPLETE == 0 {
            if before & WAITING != 0 {
                self.cell().park.wake_all(state);
            }
            if before & NOTIFY != 0 {
                self.send_notice();
            }
        }
        let before = state.fetch_or(JOB_GONE, AcqRel);
        assert_live(before);
        if before & HANDLE_GONE != 0 {
            let taken = before & TAKEN != 0;
            // SAFETY: the handle let go before us; we are last.
            unsafe { self.free(wrote_result && !taken) };
        }
    }
}

use ply_core::sync::Park as _;

/// The job's side of a task. Dropped unrun (its job was cancelled, refused or
/// drained by `terminate`), it settles the task as cancelled.
struct JobSide<T>(ManuallyDrop<CellRef<T>>);

// SAFETY: the job moves to a worker; the cell's shared parts are atomics or
// guarded by the state word, and the result it writes is a `T: Send`.
unsafe impl<T: Send> Send for JobSide<T> {}

impl<T> JobSide<T> {
    fn into_cell(self) -> CellRef<T> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the reference is taken once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T> Drop for JobSide<T> {
    fn drop(&mut self) {
        // SAFETY: `into_cell` forgets `self`, so this is the only take.
        let cell = unsafe { ManuallyDrop::take(&mut self.0) };
        // Claim the task as cancelled, unless the handle cancelled it first.
        let before = cell.cell().state.fetch_or(STARTED, AcqRel);
        let extra = if before & CANCELLED != 0 {
            0
        } else {
            CANCELLED
        };
        cell.complete_and_let_go(extra, false);
    }
}

/// Wraps a task in a job, with a handle to its result. The job claims the
/// task (unless it was cancelled), runs it, catches a panic and stores the
/// outcome; dropped unrun, it cancels the task. Nothing the task does unwinds
/// out of the job: its panic and the payload's `Drop` are contained here, and
/// a result nobody wants is dropped quietly.
pub(crate) fn task_job<F, T>(f: F) -> (Job, TaskHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let side = JobSide(ManuallyDrop::new(CellRef::new(0)));
    let handle = TaskHandle {
        cell: CellRef(side.0.0),
        _owns: PhantomData,
    };
    let job = Job::new(move || {
        let cell = side.into_cell();
        // Acquire: a cancellation's effects (none the job reads) are ordered;
        // the read-modify-write decides start against cancel.
        let before = cell.cell().state.fetch_or(STARTED, Acquire);
        if before & CANCELLED != 0 {
            drop_quietly(f); // cancelled while queued: never runs
            cell.complete_and_let_go(0, false);
            return;
        }
        let (result, payload) = match catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => (Ok(value), None),
            Err(payload) => (
                Err(TaskError::Panicked(panic_message(&*payload))),
                Some(payload),
            ),
        };
        // SAFETY: the slot is ours until `COMPLETE` is published below.
        cell.cell()
            .result
            .with_mut(|r| unsafe { (*r).write(result) });
        cell.complete_and_let_go(0, true);
        // After reporting: the payload's `Drop` may panic.
        if let Some(payload) = payload {
            drop_payload(payload);
        }
    });
    (job, handle)
}

/// A submitted task: wait for its result with [`join`](TaskHandle::join).
///
/// Dropping the handle does not cancel the task ([`cancel`](Self::cancel)
/// does): it runs and its result is dropped (a panic in the result's `Drop` is
/// contained; the panic hook reports it).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use ply_os::thread::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// let h = pool.submit(|| 6 * 7).unwrap();
/// assert_eq!(h.join(), Ok(42));
///
/// let slow = pool.submit(|| std::thread::sleep(Duration::from_millis(200))).unwrap();
/// let slow = slow.join_timeout(Duration::from_millis(1)).unwrap_err(); // not yet
/// assert!(slow.join().is_ok());
/// ```
#[must_use = "a task's result or panic is only seen through its handle"]
pub struct TaskHandle<T> {
    cell: CellRef<T>,
    /// The handle owns a `T` (once the task is done) for drop checking.
    _owns: PhantomData<T>,
}

// SAFETY: the handle reads the result (a `T: Send`) on whichever thread joins;
// its shared state is the cell's atomic word.
unsafe impl<T: Send> Send for TaskHandle<T> {}
// SAFETY: `&self` methods only read and update the atomic state word.
unsafe impl<T: Send> Sync for TaskHandle<T> {}

impl<T> TaskHandle<T> {
    /// A handle to a task that was cancelled before it was queued.
    pub(crate) fn cancelled() -> Self {
        TaskHandle {
            cell: CellRef::new(STARTED | CANCELLED | COMPLETE | JOB_GONE),
            _owns: PhantomData,
        }
    }

    fn state(&self) -> &AtomicU32 {
        &self.cell.cell().state
    }

    /// Cancels the task if it has not started: it will never run, and
    /// [`join`](Self::join) returns [`TaskError::Cancelled`]. Returns whether
    /// the task is cancelled (now or before); `false` if it has started, in
    /// which case it runs to the end. Its captured values are dropped when a
    /// worker next reaches it in the queue.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::mpsc::channel;
    /// use ply_os::thread::{TaskError, ThreadPool};
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let (started_tx, started) = channel();
    /// let (release, release_rx) = channel::<()>();
    /// let busy = pool
    ///     .submit(move || {
    ///         started_tx.send(()).unwrap();
    ///         release_rx.recv().unwrap(); // occupies the only worker
    ///     })
    ///     .unwrap();
    /// started.recv().unwrap();
    /// let queued = pool.submit(|| unreachable!("cancelled tasks never run")).unwrap();
    /// assert!(queued.cancel());
    /// assert!(!busy.cancel()); // already running
    /// release.send(()).unwrap();
    /// assert_eq!(queued.join(), Err(TaskError::Cancelled));
    /// assert_eq!(busy.join(), Ok(()));
    /// ```
    pub fn cancel(&self) -> bool {
        let state = self.state();
        let mut seen = state.load(Acquire);
        loop {
            if seen & CANCELLED != 0 {
                return true;
            }
            if seen & STARTED != 0 {
                return false;
            }
            // Claims the task (`STARTED` keeps a late job from claiming it)
            // and settles it: the job, when a worker reaches it, only drops
            // its closure and lets go.
            match state.compare_exchange_weak(
                seen,
                seen | STARTED | CANCELLED | COMPLETE,
                AcqRel,
                Acquire,
            ) {
                Ok(_) => {
                    if seen & NOTIFY != 0 {
                        self.cell.send_notice();
                    }
                    return true;
                }
                Err(now) => seen = now,
            }
        }
    }

    /// Waits for the task and returns its value, or why there is none.
    ///
    /// # Errors
    ///
    /// [`TaskError::Panicked`] if the task panicked (the pool lives on);
    /// [`TaskError::Cancelled`] if it never ran.
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(1).unwrap();
    /// assert_eq!(pool.submit(|| "done").unwrap().join(), Ok("done"));
    /// ```
    pub fn join(self) -> Result<T, TaskError> {
        match self.wait_until(None) {
            Ok(result) => result,
            Err(_) => unreachable!("no deadline, no timeout"),
        }
    }

    /// Waits up to `timeout`; on timeout, gives the handle back to try again.
    ///
    /// # Errors
    ///
    /// `Err(self)` if the task has not finished within `timeout`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = ply_os::thread::ThreadPool::new(1).unwrap();
    /// let h = pool.submit(|| 1).unwrap();
    /// assert_eq!(h.join_timeout(Duration::from_secs(10)).ok(), Some(Ok(1)));
    /// ```
    #[allow(clippy::result_large_err)] // the handle is one pointer
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, TaskError>, Self> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    /// Whether the task has finished (its result is ready).
    ///
    /// # Example
    ///
    /// ```
    /// let pool = ply_os::thread::ThreadPool::new(1).unwrap();
    /// let h = pool.submit(|| ()).unwrap();
    /// while !h.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.state().load(Acquire) & COMPLETE != 0
    }

    /// Waits for the outcome until `deadline` (if any). On a pool worker, runs
    /// queued jobs of its pool while waiting: the task waited for may be one
    /// of them, and a worker that only blocked could deadlock its own pool.
    #[allow(clippy::result_large_err)] // the handle is one pointer
    fn wait_until(self, deadline: Option<Instant>) -> Result<Result<T, TaskError>, Self> {
        let mut spins = 0;
        loop {
            let seen = self.state().load(Acquire);
            if seen & COMPLETE != 0 {
                return Ok(self.take(seen));
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(self),
                },
                None => None,
            };
            let nap = match help_own_pool() {
                Some(true) => continue, // ran someone's job; look again
                Some(false) => Some(left.map_or(WORKER_NAP, |l| l.min(WORKER_NAP))),
                None if spins < JOIN_SPINS => {
                    spins += 1;
                    spin_loop();
                    continue;
                }
                None => left,
            };
            // Announce the wait, then sleep while the word shows it.
            let seen = self.state().fetch_or(WAITING, Acquire) | WAITING;
            if seen & COMPLETE == 0 {
                self.cell.cell().park.sleep(self.state(), seen, nap);
            }
        }
    }

    /// Moves the outcome out (the caller saw `COMPLETE`) and lets go.
    fn take(self, seen: u32) -> Result<T, TaskError> {
        let this = ManuallyDrop::new(self);
        let result = if seen & CANCELLED != 0 {
            Err(TaskError::Cancelled)
        } else {
            // SAFETY: `COMPLETE` without `CANCELLED`: the job wrote the result
            // before publishing (we acquired it), and only the handle reads it,
            // once (`this` is not dropped, and it lets go right after).
            this.cell
                .cell()
                .result
                .with(|r| unsafe { (*r).assume_init_read() })
        };
        if seen & JOB_GONE != 0 {
            // The job let go before the state we acquired: nobody else
            // touches the cell, so it is freed without announcing our going
            // (a read-modify-write the joiner would wait for, and which keeps
            // its next handle's load from starting early).
            // SAFETY: both sides are done with the cell: the job set
            // `JOB_GONE` after its last access, and this consumed handle makes
            // none after this. The result, if any, was moved out above.
            unsafe { this.cell.free(false) };
        } else {
            let took = if seen & CANCELLED != 0 { 0 } else { TAKEN };
            this.let_go(took);
        }
        result
    }

    /// Sets `HANDLE_GONE` (and `taken`); frees the cell if the job is gone.
    fn let_go(&self, taken: u32) {
        let before = self.state().fetch_or(HANDLE_GONE | taken, AcqRel);
        assert_live(before);
        if before & JOB_GONE != 0 {
            let untaken_result = taken == 0 && before & (COMPLETE | CANCELLED) == COMPLETE;
            // SAFETY: the job let go before us; we are last, and the handle is
            // being dropped or consumed.
            unsafe { self.cell.free(untaken_result) };
        }
    }

    /// Calls `f` with the task's outcome when it finishes, instead of a
    /// [`join`](Self::join) (Python's `Future.add_done_callback`). `f` runs
    /// on the worker that finishes the task, or on the thread that cancels
    /// it, or at once on the calling thread if the task has finished: keep it
    /// short, as that worker runs nothing else meanwhile. A panic in `f` is
    /// contained where it runs (the panic hook reports it).
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::{Arc, mpsc::channel};
    /// use ply_os::thread::ThreadPool;
    ///
    /// let pool = ThreadPool::new(2).unwrap();
    /// let sum = Arc::new(AtomicU64::new(0));
    /// let (done, all_done) = channel();
    /// for i in 1..=4u64 {
    ///     let (sum, done) = (Arc::clone(&sum), done.clone());
    ///     pool.submit(move || i * 10).unwrap().on_complete(move |r| {
    ///         sum.fetch_add(r.unwrap(), Ordering::Relaxed);
    ///         done.send(()).unwrap();
    ///     });
    /// }
    /// for _ in 0..4 {
    ///     all_done.recv().unwrap();
    /// }
    /// assert_eq!(sum.load(Ordering::Relaxed), 100);
    /// ```
    pub fn on_complete<F>(self, f: F)
    where
        F: FnOnce(Result<T, TaskError>) + Send + 'static,
        T: Send + 'static,
    {
        // The notice owns the handle: the cell stays alive until the notice
        // has joined it, and joining a completed task does not block.
        let cell = CellRef(self.cell.0);
        let handle = self;
        cell_register(&cell, Box::new(move || f(handle.join())));
    }

    /// Asks to be told on `tx`, with `index`, when the task finishes (at once
    /// if it already has).
    pub(crate) fn notify_on_finish(&self, index: usize, tx: Sender<usize>) {
        cell_register(
            &self.cell,
            Box::new(move || {
                let _ = tx.send(index); // the receiver may be gone: fine
            }),
        );
    }
}

/// Registers the one notice of a task (through its handle, which is then
/// given up: `on_complete` consumes it, `as_completed` and `wait` own it).
fn cell_register<T>(cell: &CellRef<T>, notice: Notice) {
    {
        // SAFETY: the slot is the handle's until `NOTIFY` is set; this is
        // called once per handle, by its owner.
        cell.cell()
            .notify
            .with_mut(|n| unsafe { *n = Some(notice) });
    }
    // AcqRel: Release publishes the slot to the completer; Acquire sees
    // its `COMPLETE`, so exactly one of us sends.
    let before = cell.cell().state.fetch_or(NOTIFY, AcqRel);
    if before & COMPLETE != 0 {
        cell.send_notice();
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        self.let_go(0);
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(all(test, loom))]
mod loom_models;
#[cfg(not(loom))]
mod recycle;
