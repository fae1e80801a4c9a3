//! Compile-time checks that safe code cannot reach the atomic words that carry
//! a queue's protocol (an array queue's stamps, an SCQ queue's index-ring
//! entries): a store there would make a pop read a slot nobody wrote. The
//! expected compiler messages are in `ui_queue_words/`; refresh them after a
//! compiler upgrade with
//! `TRYBUILD=overwrite cargo test -p ply-core --test queue_words`.

#[test]
#[cfg_attr(miri, ignore = "runs the compiler")]
fn safe_code_cannot_store_to_a_queues_protocol_words() {
    trybuild::TestCases::new().compile_fail("tests/ui_queue_words/*.rs");
}
