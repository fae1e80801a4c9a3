//! Position independence: how a control block finds its buffer in every
//! process that maps it, wherever each maps it, and how a process can check
//! that it got the layout right.
//!
//! A queue or dispenser lives in memory that unrelated processes may map at
//! different addresses (`shm_open` or `memfd_create`, then `mmap`), so its
//! control block cannot hold the buffer's address. Each storage holds a
//! [`Place`] instead: the distance from the `Place` itself to the buffer, the
//! technique of Boost.Interprocess's `offset_ptr`. That distance is the same in
//! every process as long as the control block and the buffer are mapped
//! together (one mapping, or one object of any kind): the rule `ply.h` states.
//!
//! ply-core builds its queues by value and moves them into place, touching the
//! storage on the way (the array queue stamps its cells, the SCQ queue fills its
//! index rings). So a storage starts out *absolute* (its `Place` holds the
//! buffer's address) and `ply_*_init` [anchors](Place::anchor) it once the
//! control block is where it stays; only then does it [publish](Tag::publish)
//! the object.
//!
//! What can be checked is checked: `ply_*_init` refuses a buffer that overlaps
//! the control block, every call refuses an object that was never initialized
//! (a fresh, zero-filled mapping) or is of another type ([`Tag`]), and
//! `ply_*_attach` tells a process whether the buffer it sees is the one the
//! control block will use ([`attached`]).

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::{PLY_ERR_ALIGN, PLY_ERR_MAPPING, PLY_ERR_NULL, PLY_ERR_OVERLAP, PLY_ERR_UNINIT};
use crate::{PLY_OK, ply_status};

/// Where a storage's buffer is: relative to the `Place` itself once anchored.
///
/// The buffer's address is `(address of self & mask) + offset`: before
/// [`anchor`](Place::anchor), `mask` is 0 and `offset` the absolute address;
/// after, `mask` is all ones and `offset` the distance from `self`. No branch,
/// two plain loads. Both words are atomics only so that `anchor` may rewrite
/// them through a shared reference; they change once, in `ply_*_init`, before
/// the object is published (a `Release` store its users `Acquire`), so every
/// read is `Relaxed`.
///
/// The pointer is made from an integer, so it carries the buffer's *exposed*
/// provenance: [`Place::absolute`] and [`attached`] expose it.
pub(crate) struct Place {
    mask: AtomicUsize,
    offset: AtomicUsize,
}

impl Place {
    /// The place of `buffer`, absolute (while the queue is being built).
    pub(crate) fn absolute(buffer: *mut u8) -> Self {
        Place {
            mask: AtomicUsize::new(0),
            offset: AtomicUsize::new(buffer.expose_provenance()),
        }
    }

    /// The buffer, as this process sees it.
    #[inline(always)]
    pub(crate) fn get(&self) -> *mut u8 {
        let me = core::ptr::from_ref(self).addr();
        let address = (me & self.mask.load(Ordering::Relaxed))
            .wrapping_add(self.offset.load(Ordering::Relaxed));
        core::ptr::with_exposed_provenance_mut(address)
    }

    /// Makes the place relative to where `self` is now. Once, when the control
    /// block is in its final place, before the object is published.
    pub(crate) fn anchor(&self) {
        let me = core::ptr::from_ref(self).addr();
        let buffer = self.get().addr();
        self.offset
            .store(buffer.wrapping_sub(me), Ordering::Relaxed);
        self.mask.store(usize::MAX, Ordering::Relaxed);
    }
}

/// What kind of object a control block holds, or 0 until its `ply_*_init` has
/// finished (a zero-filled mapping, say).
pub(crate) struct Tag(AtomicUsize);

impl Tag {
    /// No object yet.
    pub(crate) const fn new() -> Self {
        Tag(AtomicUsize::new(0))
    }

    /// Marks the object initialized as a `kind`. Release: a process that sees
    /// the tag (with `Acquire`, in [`is`](Tag::is)) sees the whole object.
    pub(crate) fn publish(&self, kind: Kind) {
        self.0.store(kind as usize, Ordering::Release);
    }

    /// Whether the object is an initialized `kind`.
    #[inline(always)]
    pub(crate) fn is(&self, kind: Kind) -> bool {
        self.0.load(Ordering::Acquire) == kind as usize
    }
}

/// The kinds of object a [`Tag`] names: distinct values unlikely to be there by
/// chance, so a control block of another type, or stray bytes, is not taken
/// for one.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Spsc = 0x706c_7931,
    ArrayQueue = 0x706c_7932,
    Scq = 0x706c_7933,
    Dispenser = 0x706c_7934,
}

/// Whether the `a_len` bytes at `a` and the `b_len` bytes at `b` overlap.
pub(crate) fn overlaps<A, B>(a: *const A, a_len: usize, b: *const B, b_len: usize) -> bool {
    let (a, b) = (a.addr(), b.addr());
    a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

/// Ends a `ply_*_init`: anchors every storage of the control block, which is
/// now in its final place, then publishes it as a `kind`.
pub(crate) fn publish(places: &[&Place], tag: &Tag, kind: Kind) {
    for place in places {
        place.anchor();
    }
    tag.publish(kind);
}

/// The check of `ply_*_attach`: `PLY_ERR_UNINIT` unless `tag` names an
/// initialized `kind`; `PLY_ERR_MAPPING` unless each place finds, in this
/// process, the buffer address paired with it; else `PLY_OK`.
pub(crate) fn attached(tag: &Tag, kind: Kind, places: &[(&Place, *mut u8)]) -> ply_status {
    if !tag.is(kind) {
        return PLY_ERR_UNINIT;
    }
    for &(place, buffer) in places {
        if place.get().addr() != buffer.addr() {
            return PLY_ERR_MAPPING;
        }
        // This process reaches the buffer from integers (`Place::get`): the
        // pointer it was given is where that memory's provenance comes from.
        let _ = buffer.expose_provenance();
    }
    PLY_OK
}

/// `PLY_ERR_OVERLAP` if the `len` bytes of `buffer` overlap the control block
/// at `object`.
pub(crate) fn apart<T>(object: *const T, buffer: *const u8, len: usize) -> Result<(), ply_status> {
    if overlaps(object, size_of::<T>(), buffer, len) {
        Err(PLY_ERR_OVERLAP)
    } else {
        Ok(())
    }
}

/// `&*object` for a call on an initialized object of `kind`: its tag, read
/// through `tag`, names `kind`. Otherwise the status to return:
/// `PLY_ERR_NULL`, `PLY_ERR_ALIGN` or `PLY_ERR_UNINIT`.
///
/// # Safety
///
/// `object` must be NULL or point to readable memory of a `T`'s size (the
/// types here are atomics and integers, for which any bytes are a value).
#[inline(always)]
pub(crate) unsafe fn published<'a, T>(
    object: *const T,
    kind: Kind,
    tag: impl FnOnce(&T) -> &Tag,
) -> Result<&'a T, ply_status> {
    if object.is_null() {
        return Err(PLY_ERR_NULL);
    }
    if !object.is_aligned() {
        return Err(PLY_ERR_ALIGN);
    }
    // SAFETY: non-null, aligned, readable (the caller's promise).
    let object = unsafe { &*object };
    if tag(object).is(kind) {
        Ok(object)
    } else {
        Err(PLY_ERR_UNINIT)
    }
}
