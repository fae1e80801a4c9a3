//! A pool worker's shared-memory channel: one request slot and one reply
//! slot in a `memfd` that the worker and the pool's process both map, each
//! slot announced by a sequence word that doubles as a futex.
//!
//! # Why
//!
//! Over the worker's socket, a round trip is two kernel messages and, when
//! the parties sleep, two wake-ups, plus the supervisor thread's hop in
//! between. Through this channel a submitter writes the encoded request
//! straight into an idle worker's slot and the thread that joins the task
//! reads the reply from the other slot: while both sides are awake (spinning
//! briefly before they sleep) no system call is made at all. The socket
//! stays, for what does not fit ([`REQUEST_CAP`], [`REPLY_CAP`]) and for the
//! "doorbell" that wakes the supervisor when nobody spins on the reply.
//!
//! # Protocol
//!
//! The pool's side (whoever holds the pool's inbox lock: a submitter, a
//! joiner, the supervisor) and the worker alternate; a worker holds at most
//! one request at a time.
//!
//! 1. The pool writes the request's bytes into `request`, its length into
//!    `request_len` ([`VIA_SOCKET`] if the request follows on the socket as
//!    a frame instead), then stores the request's number in `request_seq`
//!    (SeqCst; one more than its last, counted in the pool's own memory,
//!    never read back from the channel), and, if the
//!    worker said it sleeps (`worker_sleeping`, SeqCst), `FUTEX_WAKE`s
//!    `request_seq`.
//! 2. The worker watches `request_seq` (spinning [`SPIN_BEFORE_SLEEP`], then
//!    `worker_sleeping = 1`, a SeqCst re-check of `request_seq`, and a timed
//!    `FUTEX_WAIT` on it). The SeqCst store/load pairs on both sides are
//!    Dekker's handshake: either the pool's load of `worker_sleeping` sees 1
//!    and it wakes the worker, or the worker's re-check sees the new
//!    sequence and does not sleep; the kernel's own check of the word in
//!    `FUTEX_WAIT` covers a wake that comes between the re-check and the
//!    sleep. The wait is untimed: an idle worker costs nothing until the
//!    pool needs it, and a timeout, even a long one, would arm and cancel a
//!    kernel timer on every sleep, which the first task after idling pays
//!    for (BENCHMARKS.md, issue 15 target 3). What ends the sleep besides a
//!    request: the pool's **closing request** (step 6), a signal (the
//!    supervisor kills workers it stops using, stopped or not), or the
//!    death of the fork server or of the pool's process (`SIGKILL` through
//!    `PR_SET_PDEATHSIG`, `forkserver/mod.rs`). The worker waits on nothing
//!    that has a deadline: the supervisor owns every deadline and ends the
//!    worker itself.
//! 3. The worker runs the request and writes the reply's bytes into `reply`,
//!    its length into `reply_len`, then `reply_seq = request_seq`
//!    (SeqCst), and reads `spinning_for` (SeqCst). Unless a joiner in the
//!    pool names this very request there, it sends an empty frame on
//!    its socket (the doorbell) so that the supervisor completes the task;
//!    if one does and the worker had said it sleeps (so the pool woke it),
//!    the worker yields its CPU once (`sched_yield`), for a joiner that
//!    shares it (see 4). A worker that took the request while spinning
//!    does not: its joiner spins on another CPU, and the next request may
//!    be a few hundred nanoseconds away. A reply too large for the slot
//!    goes on the socket as a frame instead.
//!
//!    A worker the pool woke looks twice before it rings. The kernel often
//!    runs a woken worker at once, on the waker's CPU, before the
//!    submitter's own call returns: the reply is then published before the
//!    joiner had a chance to name itself. Such a worker yields once (the
//!    submitter runs, joins, finds the reply and takes it) and then reads
//!    `spinning_for` again (SeqCst); only if it still does not name the
//!    request does it ring. Without the second look each such round trip
//!    woke the supervisor thread for a task its joiner had already taken
//!    (about one in four first tasks after idling on a loaded machine, by
//!    a syscall trace; BENCHMARKS.md, issue 15 target 3). The look is
//!    sound for the reason the first is (4): a name seen after the reply
//!    was published belongs to a joiner that will look at `reply_seq`
//!    again, or that saw it and takes the reply itself.
//! 4. A joiner that knows its task sits in this channel stores the
//!    request's sequence number in `spinning_for` (SeqCst) while it spins on
//!    `reply_seq`, and before it sleeps clears it (a SeqCst compare-exchange
//!    from its own number, so that it never clears another joiner's) and
//!    looks once more (SeqCst): the same handshake as in 2, so a reply is
//!    never left with neither a spinner nor a doorbell. The word names the
//!    request rather than counting spinners because a joiner may still be
//!    spinning, its own reply taken, when the worker answers the next
//!    request, which nobody spins on; a joiner that overwrites another's
//!    number costs the other a doorbell, never its reply. A joiner that
//!    saw its reply published leaves its name in place when it stops (it
//!    takes the reply itself): the worker's second look (3) then finds
//!    it. A joiner whose request woke the worker yields its CPU at every
//!    look while it spins: the kernel usually wakes the worker onto the
//!    waker's CPU, so the worker runs at the joiner's first yield (if not
//!    already inside the wake, 3) and hands the CPU back at its own yield
//!    after the reply (3). That round trip costs two context
//!    switches and no wake-up of the joiner, where a sleeping joiner costs
//!    two futex system calls and a wake-up more (BENCHMARKS.md, issue 15
//!    target 3). Any other joiner yields every 64th look.
//! 5. A joiner whose spin ends without its reply sleeps
//!    on `reply_seq` with `spinning_for` still set: it stores the request's
//!    number in `sleeping_for` (SeqCst), looks at `reply_seq` once more
//!    (SeqCst) and `FUTEX_WAIT`s on it; the worker, after publishing,
//!    reads `sleeping_for` (SeqCst) and `FUTEX_WAKE`s `reply_seq` if it
//!    names its request: Dekker's handshake again, so a sleeping joiner is
//!    woken by the worker directly, one wake-up as for a pipe. The
//!    supervisor, which settles a task whose worker died or was killed,
//!    wakes the same word after delivering the outcome; and every such
//!    sleep is bounded (100 ms: the bound only covers a lost wake), after
//!    which the joiner looks at its outcome again.
//! 6. When the pool stops using a channel (its shutdown), it sends a
//!    **closing request**: a request like any other (the next number, the
//!    same wake) whose length is [`CLOSING`]. The worker answers it by
//!    ending its loop. It is sent whether or not the worker holds a
//!    request: a busy worker sees it when it next waits, and the pool reads
//!    no reply after it.
//!
//! The `Acquire`/`Release` side of the SeqCst operations on the sequence
//! words orders the slot's bytes: the bytes (Relaxed atomic stores) and the
//! length are written before the sequence is published, and read after it
//! is seen.
//!
//! # Trust
//!
//! The worker may be killed, stopped, or broken at any instant, and nothing
//! it writes is trusted: the slots are arrays of atomic words (so even bytes
//! a worker changes while the pool reads them are a race on atomics, never
//! undefined behaviour), every length is checked against its slot before it
//! is used, and which task a worker holds is the pool's own record (the
//! pool's lane, under the inbox lock), never anything the worker wrote —
//! nor is the next request's number (a worker that rewound it could make
//! the pool take an old reply for a new request). A
//! reply whose length does not fit is reported as a corrupt message and
//! the worker is killed. The worker trusts the pool (its parent).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use ply_core::sync::{Park, Timeout};

use crate::park::FutexPark;

use crate::process::supervisor::SPIN_BEFORE_SLEEP;

/// The largest request sent through shared memory (larger ones go on the
/// socket).
pub(crate) const REQUEST_CAP: usize = 16 << 10;
/// The largest reply sent through shared memory.
pub(crate) const REPLY_CAP: usize = 16 << 10;
/// `request_len` of a request that follows on the socket.
pub(crate) const VIA_SOCKET: u32 = u32::MAX;
/// `request_len` of the pool's closing request (module docs, 6).
const CLOSING: u32 = u32::MAX - 1;

/// What the pool writes.
#[derive(Default)]
#[repr(C)]
struct PoolWords {
    request_seq: AtomicU32,
    request_len: AtomicU32,
    /// The request whose reply a joiner waits for (0: none).
    spinning_for: AtomicU32,
    /// The request whose reply a joiner sleeps on `reply_seq` for.
    sleeping_for: AtomicU32,
}

/// What the worker writes.
#[derive(Default)]
#[repr(C)]
struct WorkerWords {
    reply_seq: AtomicU32,
    reply_len: AtomicU32,
    /// 1 while the worker sleeps (or is about to) on `request_seq`.
    worker_sleeping: AtomicU32,
    /// 1 once the worker will take no more requests (its task limit).
    retiring: AtomicU32,
}

/// The mapped region. All zeros is a valid value (a fresh `memfd` is
/// zero-filled): every field is an atomic integer.
#[repr(C)]
struct Region {
    pool: CachePadded<PoolWords>,
    worker: CachePadded<WorkerWords>,
    request: [AtomicU64; REQUEST_CAP / 8],
    reply: [AtomicU64; REPLY_CAP / 8],
}

/// One side's mapping of a worker's channel.
pub(crate) struct ShmChannel {
    region: NonNull<Region>,
    /// The pool's last request number, kept in the pool's own memory: the
    /// worker can write `request_seq` in the shared region, so the next
    /// number is never read back from there (a worker that rewound it could
    /// make the pool take an old reply for a new request). Written under
    /// the pool's inbox lock; atomic only because `send_request` takes
    /// `&self`.
    last_request: AtomicU32,
}

// SAFETY: the region holds only atomics, shared by design; the pointer is to
// a mapping this value owns (unmapped on drop).
unsafe impl Send for ShmChannel {}
// SAFETY: as above: every access through `&self` is an atomic operation.
unsafe impl Sync for ShmChannel {}

impl std::fmt::Debug for ShmChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmChannel").finish_non_exhaustive()
    }
}

/// Creates a channel's memory: a zero-filled `memfd` of the region's size.
pub(crate) fn create() -> io::Result<OwnedFd> {
    // SAFETY: a valid NUL-terminated name and flags; the result is checked.
    let fd = unsafe { libc::memfd_create(c"ply-pool-channel".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = std::mem::size_of::<Region>() as libc::off_t;
    // SAFETY: ftruncate on a descriptor we own; the result is checked.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

impl ShmChannel {
    /// Maps the channel in `fd` (from [`create`]). Refuses a file smaller
    /// than the region (the mapping would fault past its end).
    pub(crate) fn map(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let len = std::mem::size_of::<Region>();
        // SAFETY: `stat` is plain data; fstat fills it or fails (checked).
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a live descriptor and a valid out pointer.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if (stat.st_size as u64) < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a pool channel smaller than its layout",
            ));
        }
        // SAFETY: maps `len` bytes of a file at least that long, shared; the
        // result is checked against MAP_FAILED.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let region = NonNull::new(raw.cast::<Region>()).expect("mmap returned null on success");
        Ok(ShmChannel {
            region,
            last_request: AtomicU32::new(0),
        })
    }

    fn region(&self) -> &Region {
        // SAFETY: the mapping lives as long as `self`, is page-aligned (more
        // than `Region`'s alignment) and at least `size_of::<Region>()` long
        // (checked in `map`); all zeros, and any bytes another process
        // writes, are valid values of its atomic fields.
        unsafe { self.region.as_ref() }
    }

    // ---- the pool's side ----

    /// Hands the worker a request (`None`: it follows on the socket).
    /// Returns its sequence number, and whether the worker slept (and was
    /// woken). The caller holds the pool's inbox lock (the pool's writes are
    /// serialized by it) and has checked that the worker holds no request.
    pub(crate) fn send_request(&self, bytes: Option<&[u8]>) -> (u32, bool) {
        let len = match bytes {
            Some(bytes) => {
                debug_assert!(bytes.len() <= REQUEST_CAP);
                write_words(&self.region().request, bytes);
                bytes.len() as u32
            }
            None => VIA_SOCKET,
        };
        self.announce(len)
    }

    /// Tells the worker the pool will send it nothing more (module docs,
    /// 6): a worker asleep on its channel wakes and ends its loop. The
    /// caller has taken the channel out of the pool's lanes (nothing else
    /// sends on it).
    pub(crate) fn close(&self) {
        self.announce(CLOSING);
    }

    /// Publishes a request of length word `len` (its bytes written) under
    /// the next number; wakes the worker if it sleeps.
    fn announce(&self, len: u32) -> (u32, bool) {
        let r = self.region();
        r.pool.request_len.store(len, Ordering::Relaxed);
        // The pool's own count, under its inbox lock (see `last_request`).
        // Never 0, which `spinning_for` reserves for "nobody".
        let seq = match self.last_request.load(Ordering::Relaxed).wrapping_add(1) {
            0 => 1,
            seq => seq,
        };
        self.last_request.store(seq, Ordering::Relaxed);
        // SeqCst: releases the bytes and the length, and is the first half
        // of the wake-up handshake with `worker_sleeping` (module docs, 2).
        r.pool.request_seq.store(seq, Ordering::SeqCst);
        let asleep = r.worker.worker_sleeping.load(Ordering::SeqCst) != 0;
        if asleep {
            FutexPark.wake_one(&r.pool.request_seq);
        }
        (seq, asleep)
    }

    /// Whether the worker said it takes no more requests.
    pub(crate) fn retiring(&self) -> bool {
        self.region().worker.retiring.load(Ordering::Relaxed) != 0
    }

    /// Whether the reply to request `seq` has been published.
    pub(crate) fn replied(&self, seq: u32) -> bool {
        // SeqCst (Acquire would do here): pairs with the worker's
        // publication of the reply.
        self.region().worker.reply_seq.load(Ordering::SeqCst) == seq
    }

    /// The reply to request `seq`: `None` if not published; `Err` if the
    /// worker wrote a length that does not fit its slot.
    pub(crate) fn take_reply(&self, seq: u32) -> Option<Result<Vec<u8>, String>> {
        if !self.replied(seq) {
            return None;
        }
        let r = self.region();
        let len = r.worker.reply_len.load(Ordering::Relaxed) as usize;
        if len > REPLY_CAP {
            return Some(Err(format!(
                "a reply of {len} bytes announced in a {REPLY_CAP}-byte slot"
            )));
        }
        Some(Ok(read_words(&r.reply, len)))
    }

    /// Says the caller spins on the reply to request `seq` until the guard
    /// drops.
    pub(crate) fn spinning(&self, seq: u32) -> Spinning<'_> {
        // SeqCst: the second half of the reply handshake (module docs, 4).
        self.region().pool.spinning_for.store(seq, Ordering::SeqCst);
        Spinning { channel: self, seq }
    }

    /// Sleeps until the reply to request `seq` is published, a nudge, or
    /// `slice` passes (module docs, 5). The caller holds a [`Spinning`]
    /// guard for `seq`.
    pub(crate) fn sleep_for_reply(&self, seq: u32, slice: Duration) {
        let r = self.region();
        r.pool.sleeping_for.store(seq, Ordering::SeqCst);
        let now = r.worker.reply_seq.load(Ordering::SeqCst);
        if now != seq {
            FutexPark.wait_timeout(&r.worker.reply_seq, now, Timeout::After(slice));
        }
        let _ = r
            .pool
            .sleeping_for
            .compare_exchange(seq, 0, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Wakes whoever sleeps on a reply (the supervisor, after it settled
    /// the task itself).
    pub(crate) fn nudge(&self) {
        FutexPark.wake_all(&self.region().worker.reply_seq);
    }

    /// Tests only: wakes the worker without a request.
    #[cfg(test)]
    fn nudge_worker(&self) {
        FutexPark.wake_all(&self.region().pool.request_seq);
    }

    // ---- the worker's side ----

    /// Waits for the request after `last`. `None` for the pool's closing
    /// request, or once the pool has closed `stream` (looked at before each
    /// sleep). Sleeps untimed after its spin (module docs, 2).
    pub(crate) fn wait_request(&self, last: u32, stream: &UnixStream) -> Option<Request> {
        let r = self.region();
        let spin_until = Instant::now() + SPIN_BEFORE_SLEEP;
        let mut looks = 0u32;
        let mut said_asleep = false;
        loop {
            let seq = r.pool.request_seq.load(Ordering::SeqCst);
            if seq != last {
                return match r.pool.request_len.load(Ordering::Relaxed) {
                    CLOSING => None,
                    len => Some(Request {
                        seq,
                        len,
                        said_asleep,
                    }),
                };
            }
            if Instant::now() < spin_until {
                looks = looks.wrapping_add(1);
                if looks % 64 == 0 {
                    std::thread::yield_now(); // a core shared with the pool
                } else {
                    std::hint::spin_loop();
                }
                continue;
            }
            // Idle: not on any round trip's path. A pool that already closed
            // the socket would send no closing request.
            if peer_closed(stream) {
                return None;
            }
            r.worker.worker_sleeping.store(1, Ordering::SeqCst);
            said_asleep = true;
            if r.pool.request_seq.load(Ordering::SeqCst) == last {
                // Shared futex (the word is in a `MAP_SHARED` mapping).
                FutexPark.wait_timeout(&r.pool.request_seq, last, Timeout::Never);
            }
            r.worker.worker_sleeping.store(0, Ordering::Relaxed);
        }
    }

    /// The bytes of a request of `len` bytes (at most [`REQUEST_CAP`]).
    pub(crate) fn request(&self, len: u32) -> Vec<u8> {
        read_words(&self.region().request, (len as usize).min(REQUEST_CAP))
    }

    /// Whether a joiner names request `seq` in `spinning_for` now (the
    /// worker's second look before it rings, module docs, 3): it spins on
    /// the reply, or saw it and takes it itself.
    pub(crate) fn joiner_named(&self, seq: u32) -> bool {
        // SeqCst: after the reply's publication, as the first look.
        self.region().pool.spinning_for.load(Ordering::SeqCst) == seq
    }

    /// Publishes the reply to request `seq`, if it fits (`false`: send it on
    /// the socket). Returns whether the pool needs the doorbell (nobody
    /// spins on the reply).
    pub(crate) fn send_reply(&self, seq: u32, bytes: &[u8]) -> Option<bool> {
        if bytes.len() > REPLY_CAP {
            return None;
        }
        let r = self.region();
        write_words(&r.reply, bytes);
        r.worker
            .reply_len
            .store(bytes.len() as u32, Ordering::Relaxed);
        // SeqCst: releases the bytes and the length, and is the first half
        // of the reply handshake with `spinning_for` (module docs, 3).
        r.worker.reply_seq.store(seq, Ordering::SeqCst);
        // Both looks before the wake: a joiner woken here may finish and
        // clear its name before a later look (a needless doorbell).
        let nobody_waits = r.pool.spinning_for.load(Ordering::SeqCst) != seq;
        if r.pool.sleeping_for.load(Ordering::SeqCst) == seq {
            FutexPark.wake_all(&r.worker.reply_seq);
        }
        Some(nobody_waits)
    }

    /// Says this worker takes no more requests (before its last reply).
    pub(crate) fn retire(&self) {
        self.region().worker.retiring.store(1, Ordering::SeqCst);
    }
}

impl Drop for ShmChannel {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `map`, which nothing borrows any
        // more (borrows of the region are tied to `&self`).
        unsafe {
            libc::munmap(self.region.as_ptr().cast(), std::mem::size_of::<Region>());
        }
    }
}

/// A request announced to the worker ([`ShmChannel::wait_request`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// Its sequence number.
    pub seq: u32,
    /// Its length: [`VIA_SOCKET`], or at most [`REQUEST_CAP`].
    pub len: u32,
    /// Whether the worker said it slept while it waited: then the pool
    /// woke it, and the joiner yields to it at every look (module docs, 4).
    pub said_asleep: bool,
}

/// A joiner spinning on a channel's reply.
pub(crate) struct Spinning<'a> {
    channel: &'a ShmChannel,
    seq: u32,
}

impl Drop for Spinning<'_> {
    fn drop(&mut self) {
        // A reply already published is the caller's to take (it looks once
        // more after this): the name stays, for the worker's second look
        // (module docs, 3 and 4).
        if self.channel.replied(self.seq) {
            return;
        }
        // SeqCst: the caller looks at `reply_seq` once more after this
        // (module docs, 4). Failure: another joiner's number, left alone.
        let _ = self.channel.region().pool.spinning_for.compare_exchange(
            self.seq,
            0,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

/// Copies `bytes` into `words` (native-endian, the tail zero-padded).
fn write_words(words: &[AtomicU64], bytes: &[u8]) {
    for (word, chunk) in words.iter().zip(bytes.chunks(8)) {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        word.store(u64::from_ne_bytes(buf), Ordering::Relaxed);
    }
}

/// The first `len` bytes of `words` (`len` at most their size).
fn read_words(words: &[AtomicU64], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len.next_multiple_of(8));
    for word in &words[..len.div_ceil(8)] {
        out.extend_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    out.truncate(len);
    out
}

/// Whether the other end of `stream` has closed: a zero-byte peek.
fn peer_closed(stream: &UnixStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: peeks at most one byte into a live local.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (ShmChannel, ShmChannel) {
        let fd = create().unwrap();
        (
            ShmChannel::map(std::os::fd::AsFd::as_fd(&fd)).unwrap(),
            ShmChannel::map(std::os::fd::AsFd::as_fd(&fd)).unwrap(),
        )
    }

    #[test]
    fn a_request_and_its_reply_cross_two_mappings() {
        let (pool, worker) = pair();
        let (_a, b) = UnixStream::pair().unwrap();
        let (seq, woke) = pool.send_request(Some(b"hello, worker"));
        assert!(!woke);
        let got = worker.wait_request(0, &b).unwrap();
        assert_eq!((got.seq, got.said_asleep), (seq, false));
        assert_eq!(worker.request(got.len), b"hello, worker");
        assert!(!pool.replied(seq));
        let spinning = pool.spinning(seq);
        assert_eq!(worker.send_reply(seq, b"hi"), Some(false)); // a spinner: no doorbell
        drop(spinning);
        assert_eq!(pool.take_reply(seq), Some(Ok(b"hi".to_vec())));
        // A joiner still spinning on the last reply does not stop the
        // doorbell of the next one.
        let stale = pool.spinning(seq);
        let (seq, _) = pool.send_request(None);
        let got = worker.wait_request(seq - 1, &b).unwrap();
        assert_eq!((got.seq, got.len), (seq, VIA_SOCKET));
        assert_eq!(worker.send_reply(seq, &[7; 9]), Some(true));
        drop(stale);
        assert_eq!(worker.send_reply(seq, &vec![0; REPLY_CAP + 1]), None);
    }

    #[test]
    fn a_sleeping_worker_is_woken_and_a_closed_pool_ends_the_wait() {
        let (pool, worker) = pair();
        let (a, b) = UnixStream::pair().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| worker.wait_request(0, &b));
            // Past the spin window, the worker sleeps; the request wakes it.
            while worker
                .region()
                .worker
                .worker_sleeping
                .load(Ordering::SeqCst)
                == 0
            {
                std::thread::yield_now();
            }
            let (seq, woke) = pool.send_request(Some(&[1, 2, 3]));
            assert!(woke, "the worker was asleep");
            let got = waiter.join().unwrap();
            assert_eq!(
                got,
                Some(Request {
                    seq,
                    len: 3,
                    said_asleep: true
                })
            );
        });
        // A socket the pool has closed ends the wait. Another test's child,
        // forked while `a` was open, may hold a copy of it for a while: the
        // worker then sleeps, and looks again at each (here: spurious) wake.
        drop(a);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| worker.wait_request(1, &b));
            let deadline = Instant::now() + Duration::from_secs(30);
            while !waiter.is_finished() {
                assert!(
                    Instant::now() < deadline,
                    "a closed socket did not end the wait"
                );
                pool.nudge_worker();
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(waiter.join().unwrap(), None);
        });
    }

    #[test]
    fn the_closing_request_wakes_a_sleeping_worker_and_ends_its_wait() {
        let fd = create().unwrap();
        let pool = ShmChannel::map(std::os::fd::AsFd::as_fd(&fd)).unwrap();
        let (_a, b) = UnixStream::pair().unwrap();
        // The worker sleeps untimed: without the closing request's wake it
        // never returns, and the bounded receive below fails.
        let (done_tx, done) = std::sync::mpsc::channel();
        let worker = std::thread::spawn(move || {
            let worker = ShmChannel::map(std::os::fd::AsFd::as_fd(&fd)).unwrap();
            let _ = done_tx.send(worker.wait_request(0, &b));
        });
        while pool.region().worker.worker_sleeping.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        pool.close();
        assert_eq!(done.recv_timeout(Duration::from_secs(30)), Ok(None));
        worker.join().unwrap();
        // Closed while the worker held a request: it sees the closing
        // request when it next waits, not a request to run.
        let (pool, worker) = pair();
        let (_a, b) = UnixStream::pair().unwrap();
        let (seq, _) = pool.send_request(Some(b"last"));
        assert_eq!(
            worker.wait_request(0, &b).map(|r| (r.seq, r.len)),
            Some((seq, 4))
        );
        pool.close();
        assert_eq!(worker.send_reply(seq, b"done"), Some(true));
        assert_eq!(worker.wait_request(seq, &b), None);
    }

    #[test]
    fn a_joiner_asleep_on_its_reply_is_woken_by_the_worker() {
        let (pool, worker) = pair();
        let (seq, _) = pool.send_request(Some(b"x"));
        std::thread::scope(|s| {
            let joiner = s.spawn(|| {
                let _spinning = pool.spinning(seq);
                let start = Instant::now();
                // A slice of a minute: without the worker's wake this
                // sleep lasts it, and the assertion below fails.
                while !pool.replied(seq) {
                    pool.sleep_for_reply(seq, Duration::from_secs(60));
                }
                start.elapsed()
            });
            while pool.region().pool.sleeping_for.load(Ordering::SeqCst) != seq {
                std::thread::yield_now();
            }
            assert_eq!(worker.send_reply(seq, b"y"), Some(false)); // woken, not rung
            assert!(joiner.join().unwrap() < Duration::from_secs(60));
        });
    }

    #[test]
    fn a_joiner_that_saw_its_reply_keeps_its_name_for_the_second_look() {
        let (pool, worker) = pair();
        // The worker answers before anyone names the request: it would ring.
        let (seq, _) = pool.send_request(Some(b"x"));
        assert_eq!(worker.send_reply(seq, b"y"), Some(true));
        assert!(!worker.joiner_named(seq));
        // The joiner names itself, sees the reply and stops looking: its
        // name stays, so the worker's second look rings nobody.
        drop(pool.spinning(seq));
        assert!(worker.joiner_named(seq));
        assert_eq!(pool.take_reply(seq), Some(Ok(b"y".to_vec())));
        // A joiner that stops before the reply (to sleep, or done waiting)
        // clears its name: the worker rings.
        let (seq, _) = pool.send_request(Some(b"z"));
        drop(pool.spinning(seq));
        assert_eq!(worker.send_reply(seq, b"w"), Some(true));
        assert!(!worker.joiner_named(seq));
    }

    #[test]
    fn an_oversized_reply_length_is_an_error_not_a_read() {
        let (pool, worker) = pair();
        let (seq, _) = pool.send_request(Some(&[]));
        worker.send_reply(seq, b"ok").unwrap();
        worker
            .region()
            .worker
            .reply_len
            .store(u32::MAX - 1, Ordering::Relaxed);
        assert!(matches!(pool.take_reply(seq), Some(Err(_))));
    }
}
