#!/usr/bin/env python3
"""The classic Python process pools on the workloads of benches/process.rs.

Run: python3 benches/python/process_bench.py   (about a minute)

Prints one line per measurement, in the units BENCHMARKS.md uses, so the
numbers sit beside ply's from `cargo bench --bench process` on the same machine:

- spawn: multiprocessing.Process start + join, threading.Thread start + join
- round trip: ProcessPoolExecutor.submit(f, x).result(), one at a time
- chunked map over 1,000,000 trivial items: Pool.map (default chunksize) and
  ProcessPoolExecutor.map(chunksize=16384), ns per item
- primes: sum of primes <= n for n in 1e6, 2e6, 3e6 (6k+-1 trial division),
  sequential vs Pool(2) and ProcessPoolExecutor(2) over chunks of 8192
"""
import concurrent.futures as cf
import multiprocessing as mp
import threading
import time


def inc(x):
    return x + 1


def nothing():
    pass


def is_prime(n):
    if n < 4:
        return n >= 2
    if n % 2 == 0 or n % 3 == 0:
        return False
    i = 5
    while i * i <= n:
        if n % i == 0 or n % (i + 2) == 0:
            return False
        i += 6
    return True


def prime_sum(bounds):
    lo, hi = bounds
    return sum(i for i in range(lo, hi) if is_prime(i))


LIMITS = (1_000_000, 2_000_000, 3_000_000)
CHUNK = 8192


def chunks(n):
    return [(lo, min(lo + CHUNK, n + 1)) for lo in range(0, n + 1, CHUNK)]


def best(f, runs=3):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    n = 200
    t = best(lambda: [p.join() for p in [mp.Process(target=nothing)] if not p.start()], runs=n)
    print(f"spawn: multiprocessing.Process start+join   {t * 1e6:10.1f} us")
    t = best(lambda: [th.join() for th in [threading.Thread(target=nothing)] if not th.start()], runs=n)
    print(f"spawn: threading.Thread start+join          {t * 1e6:10.1f} us")

    with cf.ProcessPoolExecutor(2) as ex:
        ex.submit(inc, 0).result()
        trips = 2000
        t = best(lambda: [ex.submit(inc, i).result() for i in range(trips)], runs=3) / trips
        print(f"round trip: ProcessPoolExecutor.submit     {t * 1e6:10.1f} us")
        items = 1_000_000
        t = best(lambda: list(ex.map(inc, range(items), chunksize=16384)), runs=3) / items
        print(f"map 1M trivial: ProcessPoolExecutor.map    {t * 1e9:10.1f} ns/item")
        t = best(lambda: [sum(ex.map(prime_sum, chunks(n))) for n in LIMITS], runs=2)
        print(f"primes: ProcessPoolExecutor(2)             {t * 1e3:10.1f} ms")
    with mp.Pool(2) as pool:
        items = 1_000_000
        t = best(lambda: pool.map(inc, range(items)), runs=3) / items
        print(f"map 1M trivial: multiprocessing.Pool.map   {t * 1e9:10.1f} ns/item")
        t = best(lambda: [sum(pool.map(prime_sum, chunks(n))) for n in LIMITS], runs=2)
        print(f"primes: multiprocessing.Pool(2)            {t * 1e3:10.1f} ms")
    t = best(lambda: [prime_sum((0, n + 1)) for n in LIMITS], runs=1)
    print(f"primes: sequential                         {t * 1e3:10.1f} ms")


if __name__ == "__main__":
    main()
