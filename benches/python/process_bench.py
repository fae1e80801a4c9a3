#!/usr/bin/env python3
"""The classic Python process pools on the workloads of benches/process.rs.

Run: python3 benches/python/process_bench.py   (about two minutes)

Prints one line per measurement, in the units BENCHMARKS.md uses — the median
of several runs, and the best run in brackets — so the numbers sit beside
ply's from `cargo bench --bench process` on the same machine:

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


def timed(f, runs):
    """(median, best) seconds of `runs` calls of f. The median is what
    BENCHMARKS.md sets beside criterion's estimate (a typical time, not a
    lucky one); the best is printed too."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2], times[0]


def show(label, pair, scale, unit):
    median, best = pair
    print(f"{label:43}{median * scale:10.1f} {unit}  (best {best * scale:.1f})")


def main():
    n = 200
    show("spawn: multiprocessing.Process start+join",
         timed(lambda: [p.join() for p in [mp.Process(target=nothing)] if not p.start()], n), 1e6, "us")
    show("spawn: threading.Thread start+join",
         timed(lambda: [th.join() for th in [threading.Thread(target=nothing)] if not th.start()], n), 1e6, "us")

    with cf.ProcessPoolExecutor(2) as ex:
        ex.submit(inc, 0).result()
        trips = 2000
        show("round trip: ProcessPoolExecutor.submit",
             timed(lambda: [ex.submit(inc, i).result() for i in range(trips)], 5), 1e6 / trips, "us")
        items = 1_000_000
        show("map 1M trivial: ProcessPoolExecutor.map",
             timed(lambda: list(ex.map(inc, range(items), chunksize=16384)), 5), 1e9 / items, "ns/item")
        show("primes: ProcessPoolExecutor(2)",
             timed(lambda: [sum(ex.map(prime_sum, chunks(n))) for n in LIMITS], 3), 1e3, "ms")
    with mp.Pool(2) as pool:
        items = 1_000_000
        pool.map(inc, range(1000))
        show("map 1M trivial: multiprocessing.Pool.map",
             timed(lambda: pool.map(inc, range(items)), 7), 1e9 / items, "ns/item")
        show("primes: multiprocessing.Pool(2)",
             timed(lambda: [sum(pool.map(prime_sum, chunks(n))) for n in LIMITS], 3), 1e3, "ms")
    show("primes: sequential",
         timed(lambda: [prime_sum((0, n + 1)) for n in LIMITS], 1), 1e3, "ms")


if __name__ == "__main__":
    main()
