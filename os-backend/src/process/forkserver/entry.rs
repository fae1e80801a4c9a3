//! Naming the program's functions across an `exec`: the handler of a
//! re-executed pool, its initializer, and functions given to
//! [`submit_fn`](crate::process::ProcessPool::submit_fn).
//!
//! The same binary is mapped at another address in another process, but
//! everything in it keeps its distance: a function is named by its offset
//! from an anchor, a function of ply's, together with the offset of a
//! *trampoline* monomorphized for its argument and result types, which turns
//! the address back into a `fn(A) -> B` and calls it. The types therefore
//! match by construction; a hash of their names is checked too, before the
//! first call. [`Entry::of`] refuses a function that lives in another object
//! (a shared library), whose distance to the anchor would not survive the
//! `exec`. procspawn identifies functions the same way.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::answer::answer;
use super::reexec::anchor;
use crate::process::wire::Entry;

/// What a trampoline is asked to do with the function at its address.
pub(crate) enum Invoke<'a> {
    /// Return the hash of the types it was instantiated for.
    Types,
    /// Decode these bytes as the argument, call, and encode the reply.
    Call(&'a [u8]),
    /// Call a `fn()` (an initializer).
    Run,
}

/// What a trampoline did.
pub(crate) enum Outcome {
    Types(u64),
    Reply(Vec<u8>),
    Ran,
}

/// A trampoline: called with a function's address and what to do with it.
type Trampoline = fn(usize, Invoke<'_>) -> Outcome;

fn anchor_address() -> usize {
    anchor as fn() -> u64 as usize
}

/// A hash (FNV-1a) of type names.
fn hash_names(names: &[&str]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in names.iter().flat_map(|n| n.bytes().chain([0])) {
        hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn types_hash<A, B>() -> u64 {
    hash_names(&[std::any::type_name::<A>(), std::any::type_name::<B>()])
}

/// The trampoline of a `fn(A) -> B`.
fn call_trampoline<A, B>(function: usize, invoke: Invoke<'_>) -> Outcome
where
    A: DeserializeOwned,
    B: Serialize,
{
    match invoke {
        Invoke::Types => Outcome::Types(types_hash::<A, B>()),
        Invoke::Call(args) => {
            // SAFETY: `function` is the address of a `fn(A) -> B` of this
            // binary: `Entry::of::<A, B>` took it from such a value in a
            // process running the same file, as an offset from `anchor` in
            // the same object (checked with `dladdr`), and `Entry::resolve`
            // rebuilt it from the same offset here, after checking that this
            // trampoline was instantiated for the same `(A, B)`.
            let f = unsafe { std::mem::transmute::<*const (), fn(A) -> B>(function as *const ()) };
            Outcome::Reply(answer(&f, args, "task"))
        }
        Invoke::Run => Outcome::Types(0),
    }
}

/// The trampoline of a `fn()`.
fn run_trampoline(function: usize, invoke: Invoke<'_>) -> Outcome {
    match invoke {
        Invoke::Types => Outcome::Types(hash_names(&["fn()"])),
        Invoke::Run => {
            // SAFETY: as in `call_trampoline`, for a `fn()` named by
            // `Entry::of_init`; `resolve` checked the hash of "fn()".
            let f = unsafe { std::mem::transmute::<*const (), fn()>(function as *const ()) };
            f();
            Outcome::Ran
        }
        Invoke::Call(_) => Outcome::Types(0),
    }
}

/// A resolved entry: the trampoline and the function's address here.
#[derive(Clone, Copy)]
pub(crate) struct Resolved {
    tramp: Trampoline,
    function: usize,
}

impl Resolved {
    /// Calls a `fn(A) -> B` entry on encoded arguments; returns the encoded
    /// `Reply<B>`.
    pub(crate) fn call(self, args: &[u8]) -> Vec<u8> {
        match (self.tramp)(self.function, Invoke::Call(args)) {
            Outcome::Reply(bytes) => bytes,
            _ => super::answer::bad_request("not a function of one argument".into()),
        }
    }

    /// Runs a `fn()` entry.
    pub(crate) fn run(self) {
        let _ = (self.tramp)(self.function, Invoke::Run);
    }
}

impl Entry {
    /// Names `f`, a function of this program, for a re-executed copy of it.
    ///
    /// # Errors
    ///
    /// A message if `f` is not in the same object as ply (it lives in a
    /// shared library).
    pub(crate) fn of<A, B>(f: fn(A) -> B) -> Result<Entry, String>
    where
        A: DeserializeOwned,
        B: Serialize,
    {
        let tramp: Trampoline = call_trampoline::<A, B>;
        Entry::named(tramp, f as usize, types_hash::<A, B>())
    }

    /// Names `f`, an initializer, as [`of`](Self::of) does.
    ///
    /// # Errors
    ///
    /// As [`of`](Self::of).
    pub(crate) fn of_init(f: fn()) -> Result<Entry, String> {
        Entry::named(run_trampoline, f as usize, hash_names(&["fn()"]))
    }

    fn named(tramp: Trampoline, function: usize, types: u64) -> Result<Entry, String> {
        let anchor = anchor_address();
        let home = object_base(anchor);
        if home.is_none() || object_base(function) != home || object_base(tramp as usize) != home {
            return Err("the function must be in the program's own executable \
                        (not in a shared library); use build_forking for others"
                .into());
        }
        let offset = |addr: usize| (addr as i64).wrapping_sub(anchor as i64);
        Ok(Entry {
            trampoline: offset(tramp as usize),
            function: offset(function),
            types,
        })
    }

    /// The trampoline and function this entry names, in this process.
    ///
    /// # Errors
    ///
    /// A message if the trampoline's types do not match the entry's.
    pub(crate) fn resolve(self) -> Result<Resolved, String> {
        let at = |offset: i64| (anchor_address() as i64).wrapping_add(offset) as usize;
        let (tramp, function) = (at(self.trampoline), at(self.function));
        // SAFETY: `tramp` is the address of a `Trampoline` of this binary: the
        // supervisor computed its offset with `Entry::of` (or `of_init`) in a
        // process running the same file, from the same anchor, and sent it
        // over a socket only it and this process (its child, or its
        // re-executed child's child) hold.
        let tramp = unsafe { std::mem::transmute::<*const (), Trampoline>(tramp as *const ()) };
        match tramp(function, Invoke::Types) {
            Outcome::Types(hash) if hash == self.types => Ok(Resolved { tramp, function }),
            _ => Err("the function's types do not match (is this the same program?)".into()),
        }
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
