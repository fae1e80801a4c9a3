//! Compile-time checks of [`ply_core::ShmSafe`]: what it rejects (pointers,
//! references, heap ownership, and anything holding them) and what the
//! `shm_safe!` macro accepts, with and without its `#[tear_safe]` marker (and
//! that marker's refusals: a field that is not `TearSafe`, any enum). The expected compiler messages are in `ui/`;
//! after a compiler upgrade changes their wording, review and refresh them with
//! `TRYBUILD=overwrite cargo test -p ply-core --test shm_safe`.

#[test]
#[cfg_attr(miri, ignore = "runs the compiler")]
fn shm_safe_rejects_pointers_and_heap_and_the_macro_checks_fields() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/rejects_*.rs");
    t.pass("tests/ui/accepts_*.rs");
}
