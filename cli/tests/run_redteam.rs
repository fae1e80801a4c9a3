//! Regression tests from a hostile review of `ply run`: each one is a
//! misbehaviour found by trying the CLI as a user (or a fault) would.

mod common;

use common::*;

/// `-j4` (the value attached to the short flag) is how GNU parallel users
/// spell it; clap accepts it for every other short option with a value.
#[test]
fn attached_short_jobs_value_is_accepted() {
    for args in [
        &["run", "-j4", "-k", "echo", ":::", "a", "b"][..],
        &["run", "-j50%", "-k", "echo", ":::", "a", "b"],
        &["run", "-kj2", "echo", ":::", "a", "b"],
    ] {
        let out = ply(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "a\nb\n", "{args:?}");
    }
}
