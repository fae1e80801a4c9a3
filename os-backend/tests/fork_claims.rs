//! Every ply API that runs the caller's code in a forked child refuses, at
//! compile time, closures and inputs that hold a claim on shared memory (a
//! lock guard, a semaphore permit, a producer role) or, outside a scope, a
//! borrow: see `ply_os::fork`, "What the child is given". The expected
//! compiler messages are in `ui_fork/`; after a compiler upgrade changes
//! their wording, review and refresh them with
//! `TRYBUILD=overwrite cargo test -p ply-os --test fork_claims`. That the
//! accepted forms count exactly across processes is shown by
//! `tests/fork_claims_runtime.rs`.

#[test]
#[cfg_attr(miri, ignore = "runs the compiler")]
fn fork_apis_refuse_claims_and_escaping_borrows() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui_fork/*.rs");
}
