//! The floor for `ply run`'s benchmark: spawn a command per input line
//! (posix_spawn, through std) and reap any child that ends (`wait`), JOBS
//! at a time, doing nothing else — no output capture, no process groups, no
//! bookkeeping. Children inherit stdout.
//!
//! `seq 10000 | spawn_floor 2 true`, `seq 10000 | spawn_floor 2 echo {}`
//! (`{}` is replaced by the line; without it the line is appended, as by
//! `xargs -n 1` and `ply run`).

use std::io::BufRead;
use std::process::Command;

/// Reaps one child, whichever ends first.
fn reap_one() {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer; every child of this process
    // is one of the jobs, owned by nothing else.
    unsafe { libc::wait(&mut status) };
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(jobs), Some(program)) = (
        args.first().and_then(|j| j.parse::<usize>().ok()),
        args.get(1),
    ) else {
        eprintln!("usage: spawn_floor JOBS PROGRAM [ARGS, {{}} for the line]");
        std::process::exit(2);
    };
    let rest = &args[2..];
    let mut running = 0;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if running == jobs {
            reap_one();
            running -= 1;
        }
        // The handle is dropped unwaited: `wait` above reaps the child.
        let mut command = Command::new(program);
        if rest.iter().any(|a| a.contains("{}")) {
            command.args(rest.iter().map(|a| a.replace("{}", &line)));
        } else {
            command.args(rest).arg(&line);
        }
        match command.spawn() {
            Ok(_) => running += 1,
            Err(e) => {
                eprintln!("spawn_floor: {program}: {e}");
                std::process::exit(1);
            }
        }
    }
    for _ in 0..running {
        reap_one();
    }
}
