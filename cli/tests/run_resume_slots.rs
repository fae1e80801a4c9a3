//! `--resume` with `{%}` (the job slot) in the command: the joblog holds
//! the command of the slot each job ran in, which need not be the slot it
//! gets on the resumed run; a job that ran must match in whichever slot.

mod common;

use common::*;

#[test]
fn resume_matches_a_job_that_ran_in_any_slot() {
    let dir = TempDir::new("run-resume-slots");
    let log = dir.path().join("joblog");
    let ran = dir.path().join("ran");
    let job = format!("echo {{}} {{%}} >> {}; [ {{}} != f ]", ran.display());
    let run = |mode: Option<&str>| {
        let mut cmd = ply_cmd();
        cmd.args(["run", "-j", "3", "--joblog"]).arg(&log);
        if let Some(mode) = mode {
            cmd.arg(mode);
        }
        cmd.args([job.as_str(), ":::", "a", "b", "c", "d", "e", "f"])
            .output()
            .unwrap()
    };
    let values = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_to_string(&ran)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let first = run(None);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert_eq!(values(), ["a", "b", "c", "d", "e", "f"]);
    // Several slots were used, or the test shows nothing.
    let text = std::fs::read_to_string(&ran).unwrap();
    assert!(text.lines().any(|l| !l.ends_with(" 1")), "{text}");
    let resume = run(Some("--resume"));
    assert!(resume.status.success(), "{}", stderr(&resume));
    assert_eq!(
        values().len(),
        6,
        "nothing ran again:\n{}",
        std::fs::read_to_string(&ran).unwrap()
    );
    let failed = run(Some("--resume-failed"));
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert_eq!(
        values(),
        ["a", "b", "c", "d", "e", "f", "f"],
        "only f again"
    );
}
