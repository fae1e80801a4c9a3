//! Compile-time checks of ply-core's soundness boundaries: what safe code must
//! not be able to do. Each file in `ui_soundness/` must fail to compile, with
//! the message recorded beside it:
//!
//! - reach the atomic words that carry a queue's protocol (an array queue's
//!   stamps, an SCQ queue's index-ring entries): a store there would make a
//!   pop read a slot nobody wrote;
//! - share between threads a queue or lock holding a `!Send` value (`Rc`), or
//!   send a lock guard to another thread.
//! - read, or mark consistent, a robust lock's data after its holder's death
//!   when the type is not `TearSafe` (a `char`, an enum with fields): the
//!   holder may have been killed mid-write, leaving no valid value.
//!
//! Refresh the messages after a compiler upgrade with
//! `TRYBUILD=overwrite cargo test -p ply-core --test soundness`.

#[test]
#[cfg_attr(miri, ignore = "runs the compiler")]
fn safe_code_cannot_cross_ply_cores_soundness_boundaries() {
    trybuild::TestCases::new().compile_fail("tests/ui_soundness/*.rs");
}
