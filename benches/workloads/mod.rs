//! The classic workloads, shared by the thread-pool and process benches.

/// The limits of the primes workload: sum of the primes ≤ n for each.
pub const PRIME_LIMITS: [usize; 3] = [1_000_000, 2_000_000, 3_000_000];

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

/// `i` if it is prime, else 0: the term summed by the primes workload.
pub fn prime_or_zero(i: usize) -> u64 {
    if is_prime(i as u64) { i as u64 } else { 0 }
}
