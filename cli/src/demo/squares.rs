//! `ply demo squares`: Σ i² for i < n, in `u128` (the sum passes `u64` at n ≈ 3.8e6).

use std::hint::black_box;

use ply_core::partition::Chunking;
use ply_os::process::{MapOptions, reduce};
use ply_os::thread::ThreadPool;

use super::{Backend, Outcome};

/// One term. `black_box` keeps the compiler from replacing the loop by its
/// closed form (n(n-1)(2n-1)/6), which would leave nothing to parallelize.
fn square(i: usize) -> u128 {
    let i = black_box(i) as u128;
    i * i
}

pub fn run(backend: Backend, workers: usize, n: u64) -> Result<Outcome, String> {
    let len = usize::try_from(n).map_err(|_| format!("n = {n} is too large here"))?;
    let sum: u128 = match backend {
        Backend::Seq => (0..len).map(square).sum(),
        Backend::Threads => {
            let pool = ThreadPool::new(workers).map_err(|e| e.to_string())?;
            pool.reduce(0..len, Chunking::Auto, || 0, square, |a, b| a + b)
        }
        Backend::Processes => {
            let options = MapOptions::new().workers(workers);
            reduce(0..len, &options, 0, square, |a, b| a + b).map_err(|e| e.to_string())?
        }
    };
    // The closed form, as an independent check of every backend.
    let m = n as u128;
    let expected = if m == 0 {
        0
    } else {
        (m - 1) * m * (2 * m - 1) / 6
    };
    if sum != expected {
        return Err(format!("sum {sum} is not the closed form {expected}"));
    }
    Ok(Outcome::new(sum.to_string(), sum.to_string()))
}
