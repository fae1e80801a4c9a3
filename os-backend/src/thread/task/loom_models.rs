//! loom models of the task cell (see the parent module): every race between
//! the job's side and the handle's side, on the code that ships.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ply-os --release --lib loom`.

use std::sync::Arc;
use std::sync::mpsc::channel;

use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::SeqCst;
use loom::thread;

use super::{TaskHandle, task_job};
use crate::thread::error::TaskError;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// A result that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn loom_a_joiner_racing_the_completion_gets_the_result() {
    model(|| {
        let (job, handle) = task_job(|| 7);
        let worker = thread::spawn(move || job.run());
        assert_eq!(handle.join(), Ok(7)); // may sleep: the job must wake it
        worker.join().unwrap();
    });
}

#[test]
fn loom_a_result_is_dropped_once_whichever_side_lets_go_last() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let (job, handle) = task_job(move || Counted(d));
        let worker = thread::spawn(move || job.run());
        drop(handle); // while the task may be running
        worker.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1);
    });
}

#[test]
fn loom_cancel_racing_start_decides_once() {
    model(|| {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let (job, handle) = task_job(move || r.fetch_add(1, SeqCst));
        let worker = thread::spawn(move || job.run());
        let cancelled = handle.cancel();
        let outcome = handle.join();
        worker.join().unwrap();
        if cancelled {
            assert_eq!(outcome, Err(TaskError::Cancelled));
            assert_eq!(ran.load(SeqCst), 0, "a cancelled task ran");
        } else {
            assert_eq!(outcome, Ok(0));
            assert_eq!(ran.load(SeqCst), 1);
        }
    });
}

#[test]
fn loom_a_job_dropped_unrun_cancels_a_waiting_joiner() {
    model(|| {
        let (job, handle): (_, TaskHandle<()>) = task_job(|| ());
        let dropper = thread::spawn(move || drop(job));
        assert_eq!(handle.join(), Err(TaskError::Cancelled));
        dropper.join().unwrap();
    });
}

#[test]
fn loom_a_completion_notice_is_sent_once() {
    model(|| {
        let (job, handle) = task_job(|| 1);
        let (tx, rx) = channel();
        let worker = thread::spawn(move || job.run());
        handle.notify_on_finish(5, tx);
        worker.join().unwrap();
        assert_eq!(rx.try_recv(), Ok(5));
        assert!(rx.try_recv().is_err(), "a second notice");
        assert_eq!(handle.join(), Ok(1));
    });
}
