//! Every ply-os API that puts a `T` into memory shared between processes
//! refuses types that are not `ShmSafe`: `String`, `Vec`, `Box`, references,
//! `&'static str`, raw pointers, and structs holding them (the expected
//! compiler messages are in `ui/`; after a compiler upgrade changes their
//! wording, review and refresh them with
//! `TRYBUILD=overwrite cargo test -p ply-os --test shm_safe_bounds`). The
//! accepted types working across `fork()` are shown by the unit tests of
//! `shm`, `ipc` and `process` and by the workspace's `tests/shared_*.rs`.

#[test]
#[cfg_attr(miri, ignore = "runs the compiler")]
fn shared_memory_apis_refuse_pointers_and_heap_data() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
