//! [`SharedValue`] and [`SharedArray`]: plain data in shared memory, locked.

use std::cell::UnsafeCell;
use std::io;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ply_core::TearSafe;
use ply_core::sync::{Patience, RecoveryGuard, RobustError, RobustGuard, RobustMutex};

use crate::liveness::ThreadLiveness;
use crate::park::{FutexPark, Until};
use crate::shm::{SharedBox, SharedSlice, ShmSafe};

/// The value, twice: `copies[current]` is the value; a write fills the other
/// copy, then flips `current`. A writer that dies mid-write has only touched
/// the copy nobody reads, so the value is never torn. That other copy may be
/// torn, which is no valid `T` for some types (`char`, enums): the copies are
/// `MaybeUninit`, and only the current one is ever read as a `T`.
struct Copies<T> {
    current: AtomicU32,
    copies: [MaybeUninit<T>; 2],
}

impl<T: Copy> Copies<T> {
    fn get(&self) -> T {
        // Acquire: pairs with the Release flip in `set`, also across a
        // holder's death (the flip is the last thing a writer does).
        let current = self.current.load(Ordering::Acquire) as usize & 1;
        // SAFETY: the current copy was written whole (by `new`, or by `set`
        // before its flip), and is not written while current.
        unsafe { self.copies[current].assume_init() }
    }

    fn set(&mut self, value: T) {
        let next = (self.current.load(Ordering::Relaxed) as usize & 1) ^ 1;
        self.copies[next] = MaybeUninit::new(value);
        // Release: the new copy is written before it becomes current, for the
        // compiler and the CPU alike, so a death between the two leaves the
        // old value current.
        self.current.store(next as u32, Ordering::Release);
    }
}

// SAFETY: an `AtomicU32` and two `T`s, which are `ShmSafe`.
unsafe impl<T: ShmSafe> ShmSafe for Copies<T> {}

type ValueLock<T> = RobustMutex<Copies<T>, ThreadLiveness, FutexPark>;

/// One plain-data value shared with children forked afterwards — Python's
/// `multiprocessing.Value`.
///
/// `T` is [`ShmSafe`] (no pointers or references, no heap memory: a
/// `&'static str` set by a child would point into the child's memory) and
/// `Copy` (`get` returns a copy).
///
/// Behind ply-core's [`RobustMutex`]: a process killed while it holds the
/// lock (inside `set` or `update`) never hangs the others. The next access
/// notices that the holder died and takes over, and the value is the one
/// before the dead process's unfinished write: writes go to a second copy that
/// becomes current only once complete. Waiters sleep on a futex.
///
/// Every access has a bounded form ([`get_timeout`](Self::get_timeout),
/// [`set_timeout`](Self::set_timeout), [`update_timeout`](Self::update_timeout))
/// for when the holder may be alive but stopped (`SIGSTOP`) or slow: an
/// `update` closure runs under the lock, so a slow one delays everyone.
///
/// # Example
///
/// ```
/// use ply_os::{fork, ipc::SharedValue};
///
/// let counter = SharedValue::new(0u64)?;
/// fork::scope(|s| {
///     let children: Vec<_> = (0..3)
///         .map(|_| s.fork_child(|| {
///             for _ in 0..1000 {
///                 counter.update(|n| n + 1);
///             }
///             0
///         }))
///         .collect::<Result<_, _>>()?;
///     for c in children {
///         assert!(c.wait()?.success());
///     }
///     Ok::<(), std::io::Error>(())
/// })?;
/// assert_eq!(counter.get(), 3000); // no lost update
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedValue<T> {
    cell: SharedBox<ValueLock<T>>,
}

impl<T: ShmSafe + Copy> SharedValue<T> {
    /// Maps a new shared value.
    ///
    /// # Errors
    ///
    /// The `mmap` error.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::ipc::SharedValue::new(1.5f64).unwrap().get(), 1.5);
    /// ```
    pub fn new(value: T) -> io::Result<Self> {
        let copies = Copies {
            current: AtomicU32::new(0),
            copies: [MaybeUninit::new(value); 2],
        };
        Ok(SharedValue {
            cell: SharedBox::new(RobustMutex::new(copies, ThreadLiveness, FutexPark))?,
        })
    }

    /// Runs `f` under the lock, waiting as `patience` allows; `None` if it ran
    /// out while a live holder had the lock.
    fn with<R>(&self, patience: impl Patience, f: impl FnOnce(&mut Copies<T>) -> R) -> Option<R> {
        let mut guard = match self.cell.lock_with(patience)? {
            Ok(guard) => guard,
            Err(RobustError::OwnerDied(recovery)) => {
                // SAFETY: `current` changes by one atomic store, made only once
                // the copy it names is whole, so the current copy is a valid
                // `T` whatever the dead holder had done; the other copy is a
                // `MaybeUninit`, valid with any bytes (see `Copies`).
                unsafe { RecoveryGuard::mark_consistent_unchecked(recovery) }
            }
            // Only a takeover that is not marked consistent makes the lock
            // unrecoverable, and every takeover above is marked at once; a
            // process that dies before marking leaves the state "owner died"
            // for the next one, not "unrecoverable".
            Err(_) => unreachable!("a SharedValue's lock is never left unrecoverable"),
        };
        Some(f(&mut guard))
    }

    /// A copy of the value, waiting while another process holds the lock (a
    /// dead holder is noticed and taken over).
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(ply_os::ipc::SharedValue::new('x').unwrap().get(), 'x');
    /// ```
    pub fn get(&self) -> T {
        self.get_until(Until::never())
            .expect("an unbounded wait gives up only on its own")
    }

    /// A copy of the value, or `None` if a live holder kept the lock for
    /// `timeout`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let v = ply_os::ipc::SharedValue::new(5u8).unwrap();
    /// assert_eq!(v.get_timeout(Duration::from_millis(10)), Some(5));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.get_until(Until::after(timeout))
    }

    fn get_until(&self, until: Until) -> Option<T> {
        self.with(until, |copies| copies.get())
    }

    /// Replaces the value.
    ///
    /// # Example
    ///
    /// ```
    /// let v = ply_os::ipc::SharedValue::new(1).unwrap();
    /// v.set(2);
    /// assert_eq!(v.get(), 2);
    /// ```
    pub fn set(&self, value: T) {
        if self.set_timeout_until(value, Until::never()).is_err() {
            unreachable!("an unbounded wait gives up only on its own");
        }
    }

    /// Replaces the value, unless a live holder kept the lock for `timeout`
    /// (then `value` comes back).
    ///
    /// # Errors
    ///
    /// `value`, if the lock could not be taken in time.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let v = ply_os::ipc::SharedValue::new(1).unwrap();
    /// assert_eq!(v.set_timeout(3, Duration::from_millis(10)), Ok(()));
    /// assert_eq!(v.get(), 3);
    /// ```
    pub fn set_timeout(&self, value: T, timeout: Duration) -> Result<(), T> {
        self.set_timeout_until(value, Until::after(timeout))
    }

    fn set_timeout_until(&self, value: T, until: Until) -> Result<(), T> {
        self.with(until, |copies| copies.set(value)).ok_or(value)
    }

    /// Replaces the value with `f(value)` under the lock; returns the new
    /// value. If `f` panics, the value is unchanged.
    ///
    /// # Example
    ///
    /// ```
    /// let v = ply_os::ipc::SharedValue::new(20).unwrap();
    /// assert_eq!(v.update(|x| x + 1), 21);
    /// ```
    pub fn update(&self, f: impl FnOnce(T) -> T) -> T {
        self.update_until(f, Until::never())
            .expect("an unbounded wait gives up only on its own")
    }

    /// As [`update`](Self::update), unless a live holder kept the lock for
    /// `timeout` (then `None`, and `f` did not run).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let v = ply_os::ipc::SharedValue::new(20).unwrap();
    /// assert_eq!(v.update_timeout(|x| x * 2, Duration::from_millis(10)), Some(40));
    /// ```
    pub fn update_timeout(&self, f: impl FnOnce(T) -> T, timeout: Duration) -> Option<T> {
        self.update_until(f, Until::after(timeout))
    }

    fn update_until(&self, f: impl FnOnce(T) -> T, until: Until) -> Option<T> {
        self.with(until, |copies| {
            let new = f(copies.get());
            copies.set(new);
            new
        })
    }
}

impl<T: ShmSafe + Copy + std::fmt::Debug> std::fmt::Debug for SharedValue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.get_timeout(Duration::from_millis(100)) {
            Some(value) => f.debug_tuple("SharedValue").field(&value).finish(),
            None => f.write_str("SharedValue(<locked>)"),
        }
    }
}

/// A cell the array's lock guards.
#[repr(transparent)]
struct Slot<T>(UnsafeCell<T>);

// SAFETY: slots are only accessed through a `SharedArrayGuard`, which holds the
// array's lock, so at most one thread (or process) touches them at a time (a
// holder that died is gone before its lock is taken over).
unsafe impl<T: Send> Sync for Slot<T> {}
// SAFETY: a `T` in an `UnsafeCell`, nothing else; `T` is `ShmSafe`.
unsafe impl<T: ShmSafe> ShmSafe for Slot<T> {}

/// A fixed-length array of plain data shared with children forked afterwards,
/// behind one [`RobustMutex`] — Python's `multiprocessing.Array`.
///
/// A process killed while it holds the lock never hangs the others: the next
/// [`lock`](Self::lock) takes over and says so ([`RobustError::OwnerDied`]),
/// because the elements may be half-updated, even torn (killed between two
/// stores of one element). The caller gets a [`SharedArrayRecovery`]: it
/// repairs the elements and marks them consistent (when `T` is
/// [`TearSafe`], which a torn element cannot make invalid), or overwrites
/// them all ([`SharedArrayRecovery::reset`], any `T`); otherwise the array
/// becomes unrecoverable ([`RobustError::NotRecoverable`]) — the `pthread`
/// robust mutex contract. [`lock_timeout`](Self::lock_timeout) bounds the wait for a
/// holder that is alive but stopped or slow.
///
/// `T` is [`ShmSafe`] and `Copy`, as for [`SharedValue`].
///
/// # Example
///
/// ```
/// use ply_os::{fork, ipc::SharedArray};
///
/// let histogram = SharedArray::new(4, 0u32)?;
/// let child = fork::scope(|s| s.fork_child(|| {
///     histogram.lock().expect("nobody died")[1] += 10;
///     0
/// })?.wait())?;
/// assert!(child.success());
/// let mut bins = histogram.lock().expect("nobody died");
/// bins[3] += 1;
/// assert_eq!(&*bins, &[0, 10, 0, 1]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct SharedArray<T> {
    lock: SharedBox<RobustMutex<(), ThreadLiveness, FutexPark>>,
    slots: SharedSlice<Slot<T>>,
}

/// What [`SharedArray::lock`] returns: the guard, or why the lock was not
/// taken cleanly (with a recovery guard inside after a holder's death).
pub type SharedArrayLock<'a, T> =
    Result<SharedArrayGuard<'a, T>, RobustError<SharedArrayRecovery<'a, T>>>;

impl<T: ShmSafe + Copy> SharedArray<T> {
    /// Maps `len` copies of `value`.
    ///
    /// # Errors
    ///
    /// The `mmap` error.
    ///
    /// # Example
    ///
    /// ```
    /// let a = ply_os::ipc::SharedArray::new(3, 1u8).unwrap();
    /// assert_eq!(a.len(), 3);
    /// ```
    pub fn new(len: usize, value: T) -> io::Result<Self> {
        Ok(SharedArray {
            lock: SharedBox::new(RobustMutex::new((), ThreadLiveness, FutexPark))?,
            slots: SharedSlice::new(len, |_| Slot(UnsafeCell::new(value)))?,
        })
    }

    /// The number of elements.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(ply_os::ipc::SharedArray::new(0, 0u8).unwrap().is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the array has no elements.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(!ply_os::ipc::SharedArray::new(1, 0u8).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Locks the array, waiting while another live process holds it; the guard
    /// derefs to `[T]`.
    ///
    /// # Errors
    ///
    /// [`RobustError::OwnerDied`] (with a [`SharedArrayRecovery`]) if the
    /// previous holder died holding the lock; [`RobustError::NotRecoverable`] if a holder died and
    /// the elements were never marked consistent since.
    ///
    /// # Example
    ///
    /// ```
    /// let a = ply_os::ipc::SharedArray::new(2, 0i32).unwrap();
    /// a.lock().unwrap().copy_from_slice(&[4, 5]);
    /// assert_eq!(a.lock().unwrap().iter().sum::<i32>(), 9);
    /// ```
    pub fn lock(&self) -> SharedArrayLock<'_, T> {
        self.lock_until(Until::never())
            .expect("an unbounded wait gives up only on its own")
    }

    /// As [`lock`](Self::lock), unless a live holder keeps the lock for
    /// `timeout` (`None`).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let a = ply_os::ipc::SharedArray::new(2, 0u8).unwrap();
    /// let held = a.lock().unwrap();
    /// let other = std::thread::scope(|s| {
    ///     s.spawn(|| a.lock_timeout(Duration::from_millis(20)).is_none()).join().unwrap()
    /// });
    /// assert!(other, "held by a live thread: timed out");
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<SharedArrayLock<'_, T>> {
        self.lock_until(Until::after(timeout))
    }

    fn lock_until(&self, until: Until) -> Option<SharedArrayLock<'_, T>> {
        let slots = &self.slots;
        Some(match self.lock.lock_with(until)? {
            Ok(guard) => Ok(SharedArrayGuard {
                _guard: guard,
                slots,
            }),
            Err(RobustError::OwnerDied(guard)) => {
                Err(RobustError::OwnerDied(SharedArrayRecovery { guard, slots }))
            }
            Err(_) => Err(RobustError::NotRecoverable),
        })
    }
}

/// Exclusive access to a [`SharedArray`]'s elements; unlocks on drop.
///
/// # Example
///
/// ```
/// let a = ply_os::ipc::SharedArray::new(2, 0u8).unwrap();
/// let mut g = a.lock().unwrap();
/// g[0] = 1;
/// assert_eq!(&*g, &[1, 0]);
/// ```
#[must_use = "dropping the guard unlocks at once"]
pub struct SharedArrayGuard<'a, T> {
    _guard: RobustGuard<'a, (), ThreadLiveness, FutexPark>,
    slots: &'a [Slot<T>],
}

impl<T: std::fmt::Debug> std::fmt::Debug for SharedArrayGuard<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl<T> Deref for SharedArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the guard holds the lock, and the lock was released
        // normally or recovered (reset, or `T: TearSafe`): the elements are
        // valid.
        unsafe { elements(self.slots) }
    }
}

impl<T> DerefMut for SharedArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only view.
        unsafe { elements_mut(self.slots) }
    }
}

/// A [`SharedArray`]'s lock, held after its previous holder died: the
/// elements may be half-updated, even torn.
///
/// Derefs to the elements only if `T` is [`TearSafe`] (a torn element is
/// still a valid one); then repair them and call
/// [`mark_consistent`](Self::mark_consistent). For any `T`,
/// [`reset`](Self::reset) overwrites them all without reading them. Either
/// gives the ordinary [`SharedArrayGuard`]; dropping this instead makes the
/// array unrecoverable.
///
/// # Example
///
/// ```
/// use ply_os::ipc::{SharedArray, SharedArrayRecovery};
/// use ply_core::sync::RobustError;
///
/// let a = SharedArray::new(2, 'a').unwrap();
/// let mut g = match a.lock() {
///     Ok(g) => g,
///     // A `char` may be torn into no `char` at all: start over.
///     Err(RobustError::OwnerDied(recovery)) => SharedArrayRecovery::reset(recovery, 'a'),
///     Err(e) => panic!("{e}"),
/// };
/// g[1] = 'b';
/// ```
#[must_use = "dropping it unlocks and makes the array unrecoverable"]
pub struct SharedArrayRecovery<'a, T> {
    guard: RecoveryGuard<'a, (), ThreadLiveness, FutexPark>,
    slots: &'a [Slot<T>],
}

impl<'a, T: Copy> SharedArrayRecovery<'a, T> {
    /// Overwrites every element with `value` (the old ones are not read),
    /// marks the array consistent and returns the ordinary guard.
    ///
    /// # Example
    ///
    /// See [`SharedArrayRecovery`].
    pub fn reset(recovery: Self, value: T) -> SharedArrayGuard<'a, T> {
        for slot in recovery.slots {
            // SAFETY: we hold the lock, so no one else accesses the slot;
            // `write` does not read the old, possibly torn, bytes.
            unsafe { slot.0.get().write(value) };
        }
        SharedArrayGuard {
            _guard: RecoveryGuard::mark_consistent(recovery.guard),
            slots: recovery.slots,
        }
    }
}

impl<'a, T: TearSafe> SharedArrayRecovery<'a, T> {
    /// After repairing the elements (or finding them good): marks the array
    /// consistent and returns the ordinary guard.
    ///
    /// # Example
    ///
    /// ```
    /// use ply_os::ipc::{SharedArray, SharedArrayRecovery};
    /// use ply_core::sync::RobustError;
    ///
    /// let a = SharedArray::new(2, 50u32).unwrap();
    /// let mut g = match a.lock() {
    ///     Ok(g) => g,
    ///     Err(RobustError::OwnerDied(mut recovery)) => {
    ///         recovery[1] = 100 - recovery[0]; // repair the sum
    ///         SharedArrayRecovery::mark_consistent(recovery)
    ///     }
    ///     Err(e) => panic!("{e}"),
    /// };
    /// g[0] += 1;
    /// g[1] -= 1;
    /// ```
    pub fn mark_consistent(recovery: Self) -> SharedArrayGuard<'a, T> {
        SharedArrayGuard {
            _guard: RecoveryGuard::mark_consistent(recovery.guard),
            slots: recovery.slots,
        }
    }
}

impl<T: TearSafe> Deref for SharedArrayRecovery<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: we hold the lock; the elements may be torn, but a torn
        // `T: TearSafe` is a valid `T`.
        unsafe { elements(self.slots) }
    }
}

impl<T: TearSafe> DerefMut for SharedArrayRecovery<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only view.
        unsafe { elements_mut(self.slots) }
    }
}

impl<T> std::fmt::Debug for SharedArrayRecovery<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The elements may be torn: not shown.
        f.write_str("SharedArrayRecovery { .. }")
    }
}

/// The slots' elements.
///
/// # Safety
///
/// The caller holds the array's lock for as long as the slice lives, and the
/// elements are valid `T`s.
unsafe fn elements<T>(slots: &[Slot<T>]) -> &[T] {
    // SAFETY: `Slot<T>` is `UnsafeCell<T>` wrapped, so it has `T`'s layout;
    // the caller holds the lock, so no one writes the slots meanwhile, and
    // vouches that they are valid.
    unsafe { std::slice::from_raw_parts(slots.as_ptr().cast::<T>(), slots.len()) }
}

/// The slots' elements, to write.
///
/// # Safety
///
/// As for [`elements`], and no other view of the slots exists while the slice
/// lives.
#[allow(clippy::mut_from_ref)] // the slots are `UnsafeCell`s, guarded by the lock
unsafe fn elements_mut<T>(slots: &[Slot<T>]) -> &mut [T] {
    // SAFETY: as in `elements`, and the caller's view is the only one;
    // `UnsafeCell` permits writing through the shared slots.
    unsafe {
        std::slice::from_raw_parts_mut(
            UnsafeCell::raw_get(slots.as_ptr().cast::<UnsafeCell<T>>()),
            slots.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::{ChildExit, ForkedChild, Signal, fork_child};
    use std::time::Instant;

    const WATCHDOG: Duration = Duration::from_secs(60);

    /// The process state letter from `/proc/<pid>/stat` ('T' = stopped).
    fn proc_state(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    fn wait_until_stopped(child: &ForkedChild) {
        let deadline = Instant::now() + WATCHDOG;
        while !matches!(proc_state(child.pid()), Some('T' | 't')) {
            assert!(Instant::now() < deadline, "watchdog: child never stopped");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn stop_self() {
        // SAFETY: raise has no memory-safety preconditions.
        unsafe { libc::raise(libc::SIGSTOP) };
    }

    /// Runs `f` on a thread under the watchdog (the parent's side of a test
    /// must not hang however the code under test behaves).
    fn finishes<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(WATCHDOG)
            .expect("watchdog: the access hung")
    }

    #[test]
    fn value_survives_a_holder_stopped_then_killed_mid_update() {
        let value: &'static SharedValue<[u64; 4]> =
            Box::leak(Box::new(SharedValue::new([7; 4]).unwrap()));
        let mut child = fork_child(|| {
            value.update(|_| {
                stop_self(); // inside the critical section
                [8; 4]
            });
            0
        })
        .unwrap();
        wait_until_stopped(&child);
        // Stopped: alive, so bounded accesses time out and nothing changes.
        assert_eq!(
            finishes(|| value.get_timeout(Duration::from_millis(30))),
            None
        );
        assert_eq!(
            finishes(|| value.set_timeout([9; 4], Duration::from_millis(30))),
            Err([9; 4])
        );
        assert_eq!(
            finishes(|| value.update_timeout(|v| v, Duration::from_millis(30))),
            None
        );
        child.kill(Signal::KILL).unwrap();
        let exit = child
            .wait_timeout(WATCHDOG)
            .unwrap()
            .expect("watchdog: reaping");
        assert_eq!(exit, ChildExit::Signaled(Signal::KILL));
        // Dead: the next access takes over; the unfinished update never happened.
        assert_eq!(finishes(|| value.get()), [7; 4]);
        assert_eq!(finishes(|| value.update(|v| [v[0] + 1; 4])), [8; 4]);
        assert_eq!(value.get_timeout(Duration::ZERO), Some([8; 4]));
    }

    #[test]
    fn value_waiters_in_other_processes_take_over_from_a_killed_holder() {
        // The waiters sleep (futex) while the holder is stopped; once it is
        // killed, one of them takes over and they all finish.
        let value: &'static SharedValue<u64> = Box::leak(Box::new(SharedValue::new(0).unwrap()));
        let mut holder = fork_child(|| {
            value.update(|v| {
                stop_self();
                v + 1000
            });
            0
        })
        .unwrap();
        wait_until_stopped(&holder);
        let waiters: Vec<ForkedChild> = (0..3)
            .map(|_| {
                fork_child(|| {
                    value.update(|v| v + 1);
                    0
                })
                .unwrap()
            })
            .collect();
        holder.kill(Signal::KILL).unwrap();
        holder.wait_timeout(WATCHDOG).unwrap().expect("watchdog");
        for mut w in waiters {
            let exit = w
                .wait_timeout(WATCHDOG)
                .unwrap()
                .expect("watchdog: a waiter hung");
            assert!(exit.success());
        }
        assert_eq!(value.get(), 3, "the dead holder's +1000 never happened");
    }

    #[test]
    fn array_reports_a_dead_holder_then_repairs_or_becomes_unrecoverable() {
        for repair in [true, false] {
            let array: &'static SharedArray<u32> =
                Box::leak(Box::new(SharedArray::new(2, 50).unwrap()));
            let mut child = fork_child(|| {
                let mut g = array.lock().unwrap();
                g[0] -= 30;
                stop_self(); // before g[1] += 30
                g[1] += 30;
                0
            })
            .unwrap();
            wait_until_stopped(&child);
            assert!(finishes(|| array
                .lock_timeout(Duration::from_millis(30))
                .is_none()));
            child.kill(Signal::KILL).unwrap();
            child.wait_timeout(WATCHDOG).unwrap().expect("watchdog");
            finishes(move || {
                let Err(RobustError::OwnerDied(mut g)) = array.lock() else {
                    panic!("the holder's death must be reported");
                };
                assert_eq!(&*g, &[20, 50], "half-updated");
                if repair {
                    g[1] = 100 - g[0];
                    drop(SharedArrayRecovery::mark_consistent(g));
                }
            });
            if repair {
                let g = array.lock().expect("repaired");
                assert_eq!(g[0] + g[1], 100);
            } else {
                assert_eq!(array.lock().unwrap_err(), RobustError::NotRecoverable);
                assert!(matches!(
                    array.lock_timeout(Duration::ZERO),
                    Some(Err(RobustError::NotRecoverable))
                ));
            }
        }
    }

    #[test]
    fn array_of_chars_torn_by_a_dead_holder_is_reset_without_being_read() {
        let array: &'static SharedArray<char> =
            Box::leak(Box::new(SharedArray::new(2, 'a').unwrap()));
        let mut child = fork_child(|| {
            let mut g = array.lock().unwrap();
            // SAFETY: the 4 bytes of a `char`, written as a `u32` and never
            // read as a `char` in this process: a surrogate, no `char`, as a
            // holder killed mid-write can leave.
            unsafe { g.as_mut_ptr().cast::<u32>().write(0xD800) };
            std::mem::forget(g); // exits holding the lock
            0
        })
        .unwrap();
        let exit = child
            .wait_timeout(WATCHDOG)
            .unwrap()
            .expect("watchdog: reaping");
        assert!(exit.success());
        finishes(move || {
            let Err(RobustError::OwnerDied(recovery)) = array.lock() else {
                panic!("the holder's death must be reported");
            };
            assert_eq!(format!("{recovery:?}"), "SharedArrayRecovery { .. }");
            let g = SharedArrayRecovery::reset(recovery, 'z');
            assert_eq!(&*g, &['z', 'z']);
        });
        assert_eq!(&*array.lock().expect("reset: consistent"), &['z', 'z']);
    }

    #[test]
    fn an_update_that_panics_leaves_the_value_unchanged() {
        let value = SharedValue::new(1u8).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            value.update(|_| panic!("in the closure"))
        }));
        assert!(panicked.is_err());
        assert_eq!(value.get(), 1);
        assert_eq!(value.update(|v| v + 1), 2);
    }
}
