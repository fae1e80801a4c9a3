//! `ply demo primes`: the sum of the primes ≤ n, by 6k±1 trial division.

use ply_core::partition::Chunking;
use ply_os::process::{MapOptions, map_plain};
use ply_os::thread::ThreadPool;

use super::{Backend, Outcome};

/// Items per chunk: fine enough that both workers stay busy to the end.
const CHUNK: usize = 4096;

/// 6k±1 trial division, as in the classic guides.
pub fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n % 2 == 0 || n % 3 == 0 {
        return false;
    }
    let mut i = 5;
    while i * i <= n {
        if n % i == 0 || n % (i + 2) == 0 {
            return false;
        }
        i += 6;
    }
    true
}

fn prime_or_zero(i: usize) -> u64 {
    if is_prime(i as u64) { i as u64 } else { 0 }
}

pub fn run(backend: Backend, workers: usize, limits: &[u64]) -> Result<Outcome, String> {
    let sums: Vec<u64> = match backend {
        Backend::Seq => limits
            .iter()
            .map(|&n| (0..=n as usize).map(prime_or_zero).sum())
            .collect(),
        Backend::Threads => {
            let pool = ThreadPool::new(workers).map_err(|e| e.to_string())?;
            limits
                .iter()
                .map(|&n| {
                    pool.reduce(
                        0..n as usize + 1,
                        Chunking::Fixed(CHUNK),
                        || 0,
                        prime_or_zero,
                        |a, b| a + b,
                    )
                })
                .collect()
        }
        Backend::Processes => {
            // One fork-join call for all the limits (forking per limit would
            // pay the start-up and the tail of each call three times): every
            // limit's range cut into blocks of CHUNK numbers, dearest (largest
            // numbers) first so the last blocks claimed are short; a worker
            // claims one block at a time and returns (limit, block sum).
            let mut blocks: Vec<(usize, std::ops::Range<usize>)> = limits
                .iter()
                .enumerate()
                .flat_map(|(k, &n)| {
                    let end = n as usize + 1;
                    (0..end)
                        .step_by(CHUNK)
                        .map(move |lo| (k, lo..(lo + CHUNK).min(end)))
                })
                .collect();
            blocks.sort_by_key(|(_, range)| std::cmp::Reverse(range.start));
            let options = MapOptions::new()
                .workers(workers)
                .chunking(Chunking::Fixed(1));
            let parts = map_plain(
                &blocks,
                |(k, range)| (*k, range.clone().map(prime_or_zero).sum::<u64>()),
                &options,
            )
            .map_err(|e| e.to_string())?;
            let mut sums = vec![0; limits.len()];
            for &(k, sum) in parts.iter() {
                sums[k] += sum;
            }
            sums
        }
    };
    let shown = limits
        .iter()
        .zip(&sums)
        .map(|(n, s)| format!("{n}: {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Outcome::new(shown.clone(), shown))
}
