//! A child forked while another thread makes the process's first robust-lock
//! call must still be able to lock: ply's one-time setup for lock owners
//! (`ThreadLiveness`) must never leave a child waiting on a thread it does not
//! have. Each round runs in a fresh helper process, where that setup has not
//! happened yet, and races it against the fork at a different moment.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ply_core::sync::Liveness;
use ply_os::fork::fork_child;
use ply_os::liveness::ThreadLiveness;

const ROUND: &str = "PLY_TEST_LIVENESS_FORK_ROUND";
const ROUNDS: u32 = 300;

/// Not a test on its own: one round, in a helper process.
#[test]
#[ignore = "helper process for first_lock_owner_setup_never_hangs_a_forked_child"]
fn helper() {
    let Ok(round) = std::env::var(ROUND) else {
        return;
    };
    // Spread the fork over the other thread's first call: a different few spins late each round.
    let delay: u32 = round.parse().unwrap();
    // Spinning, not a `Barrier`: a thread woken from a futex starts tens of
    // microseconds late, long after the fork.
    let ready = AtomicBool::new(false);
    let go = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            ready.store(true, Ordering::SeqCst);
            while !go.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            std::hint::black_box(ThreadLiveness.current());
        });
        while !ready.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        go.store(true, Ordering::SeqCst);
        for _ in 0..(delay % 60) * 8 {
            std::hint::spin_loop();
        }
        let mut child = fork_child(|| {
            let me = ThreadLiveness.current();
            i32::from(!ThreadLiveness.is_alive(me))
        })
        .unwrap();
        let exit = child
            .wait_timeout(Duration::from_secs(20))
            .unwrap()
            .expect("the child hung in ply's lock-owner setup");
        assert!(
            exit.success(),
            "the child's own token is not alive: {exit:?}"
        );
    });
}

#[test]
fn first_lock_owner_setup_never_hangs_a_forked_child() {
    for round in 0..ROUNDS {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--ignored", "--exact", "helper", "--test-threads=1"])
            .env(ROUND, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; the helper dies with this process.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            })
        };
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "round {round}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
