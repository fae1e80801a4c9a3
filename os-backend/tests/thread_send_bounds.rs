//! The thread pool's safe API refuses closures, results and borrowed data
//! that are not thread-safe (the expected compiler messages are in
//! `ui_thread/`; after a compiler upgrade changes their wording, review and
//! refresh them with
//! `TRYBUILD=overwrite cargo test -p ply-os --test thread_send_bounds`).

#[test]
#[cfg_attr(miri, ignore = "runs the compiler")]
fn the_pool_refuses_values_that_are_not_thread_safe() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui_thread/*.rs");
}
