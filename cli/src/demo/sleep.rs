//! `ply demo sleep`: waiting overlaps on threads and on processes alike.

use std::time::Duration;

use ply_core::partition::Chunking;
use ply_os::process::{MapOptions, map_plain};
use ply_os::thread::ThreadPool;

use super::{Backend, Outcome};

pub fn run(backend: Backend, workers: usize, tasks: u64, ms: u64) -> Result<Outcome, String> {
    let wait = Duration::from_millis(ms);
    let task = |_: &u64| {
        std::thread::sleep(wait);
        1u64
    };
    let ids: Vec<u64> = (0..tasks).collect();
    let done: u64 = match backend {
        Backend::Seq => ids.iter().map(task).sum(),
        Backend::Threads => {
            let pool = ThreadPool::new(workers).map_err(|e| e.to_string())?;
            pool.map(ids, move |_| {
                std::thread::sleep(wait);
                1u64
            })
            .map(|r| r.unwrap_or(0))
            .sum()
        }
        Backend::Processes => {
            let options = MapOptions::new()
                .workers(workers)
                .chunking(Chunking::Fixed(1));
            map_plain(&ids, task, &options)
                .map_err(|e| e.to_string())?
                .iter()
                .sum()
        }
    };
    let rounds = tasks.div_ceil(workers as u64);
    Ok(Outcome::new(
        format!("{done}/{tasks} waits done (ideal wall {} ms)", rounds * ms),
        done.to_string(),
    ))
}
