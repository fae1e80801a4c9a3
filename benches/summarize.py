#!/usr/bin/env python3
"""Summarize criterion logs from several runs into a markdown table.

Usage: cargo bench --bench NAME > run1.log   (repeat: run2.log, run3.log)
       python3 benches/summarize.py run1.log run2.log run3.log

For each benchmark it prints the point estimate of every run (ns per element),
and, per run, the ratio to the group's first ply entry: >1.0 means slower than ply.
The ratios within one run are the numbers to trust on a shared VM.
"""
import re
import statistics
import sys

UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
TIME = re.compile(r"time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]")


def parse(path):
    """{(group, bench): ns} from one criterion log."""
    results, name = {}, None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        m = TIME.search(line)
        head = line.split("time:")[0].strip()
        if head and "/" in head and not head.startswith(("Benchmarking", "change", "Found", "Warning")):
            name = head
        if m and name:
            group, bench = name.split("/", 1)
            results[(group, bench)] = float(m.group(1)) * UNITS[m.group(2)]
            name = None
    return results


def main(paths):
    runs = [parse(p) for p in paths]
    keys = list(dict.fromkeys(k for r in runs for k in r))
    print("| group | benchmark | " + " | ".join(f"run {i + 1} ns/item (× ply)" for i in range(len(runs))) + " | median ns/item |")
    print("|---|---|" + "---|" * len(runs) + "---|")
    for group, bench in keys:
        cells, values = [], []
        for r in runs:
            v = r.get((group, bench))
            ply = [r[k] for k in r if k[0] == group and k[1].startswith("ply")]
            if v is None:
                cells.append("–")
                continue
            values.append(v)
            ratio = f" ({v / ply[0]:.2f}×)" if ply and not bench.startswith("ply") else ""
            cells.append(f"{v:.2f}{ratio}")
        median = f"{statistics.median(values):.2f}" if values else "–"
        print(f"| {group} | {bench} | " + " | ".join(cells) + f" | {median} |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["/dev/stdin"])
