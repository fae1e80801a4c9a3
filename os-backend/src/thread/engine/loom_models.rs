//! loom models of the engine's two protocols, on the code that ships (the
//! atomics go through `primitive`, ply-core's queues and semaphore through
//! ply-core's own facade):
//!
//! - **sleep/wake**: a worker going to sleep races a submission (through the
//!   injector, and through a scope's guest ring). A lost wake-up leaves the
//!   worker blocked in the park and the submitter blocked waiting for its job:
//!   loom reports the deadlock.
//! - **closing racing submission**: `shutdown` or `terminate` races a
//!   `submit`. Every job is accounted for: a refused job never runs; an
//!   accepted one runs exactly once (or, under `terminate`, is cancelled); and
//!   none is left in a queue after the worker has exited.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ply-os --release --lib loom`.
//!
//! Each model fails when an ordering it checks is weakened (mutation-checked):
//! removing the `SeqCst` fence of `Sleep::notify_one` or of `Sleep::sleep`
//! makes both sleep/wake models deadlock; removing the fence of
//! `Registry::admit` or of `Registry::close` makes both closing models find an
//! accepted job left in a queue; storing `drained` with `Relaxed` instead of
//! `Release` makes the shutdown model find one. Two orderings are kept
//! although no model can fail without them: the `Release` of `push`'s
//! `submitting` decrement (the notifier's fence just before it already
//! orders the push), and the `Release`/`Acquire` pair on the wake word, which
//! rules out a load-buffering outcome loom does not model.

use std::sync::Arc;

use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::SeqCst;
use loom::sync::{Condvar, Mutex};
use loom::thread;

use super::registry::{Admission, Registry, WorkerConfig};
use crate::thread::job::Job;

/// Bounds the preemptions loom explores to two: each protocol here is one
/// race between two threads (Dekker's pattern), which two preemptions cover.
/// With three, loom also explores an idle worker polling forever for a push
/// it cannot see yet (loom does not model that a store eventually becomes
/// visible), and gives up on the length of that execution.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(f);
}

/// A registry with `workers` workers (not started: the model runs their loops
/// on loom threads) and a queue bound of 2.
fn registry(workers: usize) -> Arc<Registry> {
    let config = WorkerConfig {
        name_prefix: "loom".into(),
        stack_size: None,
        cpus: Vec::new(),
    };
    Registry::new(workers, 2, config)
}

/// A one-shot signal a thread can block on.
#[derive(Default)]
struct Done {
    flag: Mutex<bool>,
    changed: Condvar,
}

impl Done {
    fn set(&self) {
        *self.flag.lock().unwrap() = true;
        self.changed.notify_all();
    }

    fn wait(&self) {
        let mut flag = self.flag.lock().unwrap();
        while !*flag {
            flag = self.changed.wait(flag).unwrap();
        }
    }
}

/// A job that sets `done` when it runs.
fn signalling_job(done: &Arc<Done>) -> Job {
    let done = Arc::clone(done);
    Job::new(move || done.set())
}

#[test]
fn loom_a_job_injected_while_the_worker_falls_asleep_wakes_it() {
    model(|| {
        let registry = registry(1);
        let r = Arc::clone(&registry);
        let worker = thread::spawn(move || r.run_worker(0));
        let done = Arc::new(Done::default());
        assert!(submit_via(&registry, Path::Injector, signalling_job(&done)));
        done.wait(); // deadlocks if the worker slept through the push
        registry.shutdown();
        worker.join().unwrap();
    });
}

#[test]
fn loom_a_spawn_into_a_guest_ring_wakes_a_sleeping_worker() {
    model(|| {
        let registry = registry(1);
        let r = Arc::clone(&registry);
        let worker = thread::spawn(move || r.run_worker(0));
        let done = Arc::new(Done::default());
        // This thread is not a worker: the push goes to the guest ring it
        // takes a lease on.
        assert!(registry.push_local(signalling_job(&done)).is_ok());
        done.wait(); // the worker must steal it: the holder only waits here
        registry.shutdown();
        worker.join().unwrap();
    });
}

/// Counts a job's fate: run, or dropped unrun (refused or cancelled).
struct Fate {
    ran: AtomicUsize,
    dropped: AtomicUsize,
}

struct DropCount(Arc<Fate>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, SeqCst);
    }
}

fn counted_job(fate: &Arc<Fate>) -> Job {
    let guard = DropCount(Arc::clone(fate));
    Job::new(move || {
        guard.0.ran.fetch_add(1, SeqCst);
        std::mem::forget(guard);
    })
}

/// How the racing submission travels.
#[derive(Clone, Copy)]
enum Path {
    /// `Registry::submit` from a thread outside the pool: its guest ring.
    GuestRing,
    /// The injector (`admit` + `push`), as when the guest rings are all held.
    Injector,
}

fn submit_via(registry: &Arc<Registry>, path: Path, job: Job) -> bool {
    match path {
        Path::GuestRing => registry.submit(job).is_ok(),
        Path::Injector => match registry.admit(true) {
            Admission::Queued => {
                registry.push(job);
                true
            }
            _ => false,
        },
    }
}

/// `close` races a submission; returns (accepted, ran, dropped unrun, left in
/// a queue after the worker exited).
fn close_racing_submit(close: fn(&Registry), path: Path) -> (bool, usize, usize, bool) {
    let registry = registry(1);
    let r = Arc::clone(&registry);
    let worker = thread::spawn(move || r.run_worker(0));
    let fate = Arc::new(Fate {
        ran: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
    });
    let (r, f) = (Arc::clone(&registry), Arc::clone(&fate));
    let submitter = thread::spawn(move || submit_via(&r, path, counted_job(&f)));
    close(&registry);
    let accepted = submitter.join().unwrap();
    worker.join().unwrap();
    let stranded = registry.has_work();
    (
        accepted,
        fate.ran.load(SeqCst),
        fate.dropped.load(SeqCst),
        stranded,
    )
}

fn check_shutdown(path: Path) {
    model(move || {
        let (accepted, ran, dropped, stranded) = close_racing_submit(Registry::shutdown, path);
        assert!(!stranded, "a job was left queued after the worker exited");
        if accepted {
            assert_eq!((ran, dropped), (1, 0), "an accepted job runs once");
        } else {
            assert_eq!((ran, dropped), (0, 1), "a refused job is dropped unrun");
        }
    });
}

fn check_terminate(path: Path) {
    model(move || {
        let (accepted, ran, dropped, stranded) = close_racing_submit(Registry::terminate, path);
        assert!(!stranded, "a job was left queued after the worker exited");
        assert_eq!(ran + dropped, 1, "each job runs or is dropped, once");
        if !accepted {
            assert_eq!(ran, 0);
        }
    });
}

#[test]
fn loom_shutdown_racing_submit_to_a_guest_ring_runs_every_accepted_job() {
    check_shutdown(Path::GuestRing);
}

#[test]
fn loom_shutdown_racing_submit_to_the_injector_runs_every_accepted_job() {
    check_shutdown(Path::Injector);
}

#[test]
fn loom_terminate_racing_submit_to_a_guest_ring_runs_or_cancels_each_job_once() {
    check_terminate(Path::GuestRing);
}

#[test]
fn loom_terminate_racing_submit_to_the_injector_runs_or_cancels_each_job_once() {
    check_terminate(Path::Injector);
}
