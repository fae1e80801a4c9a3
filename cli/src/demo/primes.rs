//! `ply demo primes`: the sum of the primes ≤ n, by 6k±1 trial division.

use ply_os::process::{MapOptions, reduce};
use ply_os::thread::{Chunking, ThreadPool};

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
                        Chunking::Dynamic(CHUNK),
                        || 0,
                        prime_or_zero,
                        |a, b| a + b,
                    )
                })
                .collect()
        }
        Backend::Processes => {
            let options = MapOptions::new()
                .workers(workers)
                .chunking(Chunking::Dynamic(CHUNK));
            limits
                .iter()
                .map(|&n| reduce(0..n as usize + 1, &options, 0, prime_or_zero, |a, b| a + b))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?
        }
    };
    let shown = limits
        .iter()
        .zip(&sums)
        .map(|(n, s)| format!("{n}: {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Outcome {
        check: shown.clone(),
        shown,
    })
}
