#!/usr/bin/env bash
# ply run beside xargs -P, GNU parallel, rust-parallel and a bare
# spawn-and-wait loop (the floor), in the same run: N jobs of `true` and of
# `echo {}` at -j 2, output to /dev/null. Every runner runs once per round,
# in a rotating order, for ROUNDS rounds; the table gives each runner's
# median per-job cost, its range, and the ratio of medians to the floor and
# to xargs. (On a shared machine, load changes from minute to minute:
# interleaving the runners exposes them all to the same load.)
#
#   bash benches/runner.sh                  # 10,000 jobs, 3 rounds
#   JOBS=2000 ROUNDS=5 bash benches/runner.sh
#   MILLION=1 bash benches/runner.sh        # also: peak RSS of ply run over 1M input lines
#
# Installs nothing: GNU parallel (Debian package `parallel`) and
# rust-parallel (`cargo install rust-parallel`) are timed when on PATH and
# reported missing otherwise. Builds ply and the floor in release.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-10000}
ROUNDS=${ROUNDS:-3}
cargo build --release -q -p ply-cli --bin ply --example spawn_floor
PLY=target/release/ply
FLOOR=target/release/examples/spawn_floor
INPUT=$(mktemp)
TIMES=$(mktemp)
trap 'rm -f "$INPUT" "$TIMES"' EXIT
seq "$JOBS" > "$INPUT"

# Appends "name seconds" for a command reading $INPUT, output discarded.
timed() {
    local name=$1 start end
    shift
    start=$(date +%s%N)
    "$@" < "$INPUT" > /dev/null
    end=$(date +%s%N)
    echo "$name $(( end - start ))" >> "$TIMES"
}

for workload in true echo; do
    : > "$TIMES"
    if [ "$workload" = true ]; then cmd=(true); else cmd=(echo '{}'); fi
    # The floor gets the program's absolute path: ply run also searches PATH
    # once per program, not once per job as xargs does.
    runners=(floor ply ply-no-cgroup xargs)
    command -v parallel > /dev/null && runners+=(gnu-parallel)
    command -v rust-parallel > /dev/null && runners+=(rust-parallel)
    for round in $(seq "$ROUNDS"); do
        n=${#runners[@]}
        for i in $(seq 0 $(( n - 1 ))); do
            r=${runners[$(( (i + round) % n ))]}
            case $r in
                floor) timed floor "$FLOOR" 2 "$(type -P "${cmd[0]}")" "${cmd[@]:1}" ;;
                ply) timed ply "$PLY" run -j 2 "${cmd[@]}" ;;
                ply-no-cgroup) timed ply-no-cgroup "$PLY" run -j 2 --no-cgroup "${cmd[@]}" ;;
                xargs) if [ "$workload" = true ]; then timed xargs xargs -P 2 -n 1 true
                       else timed xargs xargs -P 2 -I '{}' echo '{}'; fi ;;
                gnu-parallel) timed gnu-parallel parallel -j 2 "${cmd[@]}" ;;
                rust-parallel) timed rust-parallel rust-parallel -j 2 "${cmd[@]}" ;;
            esac
        done
    done
    echo "$JOBS jobs of '${cmd[*]}' at -j 2, $ROUNDS interleaved rounds ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
    awk -v jobs="$JOBS" '
        { t[$1] = t[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
        function median(list,   a, k, i, j, x) {
            k = split(list, a, " ")
            for (i = 2; i <= k; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
            lo = a[1]; hi = a[k]
            return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        END {
            for (i = 1; i <= n; i++) { m[order[i]] = median(t[order[i]]); l[order[i]] = lo; h[order[i]] = hi }
            printf "  %-18s %12s %18s %9s %9s\n", "runner", "us/job", "range", "vs floor", "vs xargs"
            for (i = 1; i <= n; i++) {
                r = order[i]
                printf "  %-18s %12.1f %8.1f..%-8.1f %8.2fx %8.2fx\n", r, m[r] / jobs / 1000, l[r] / jobs / 1000, h[r] / jobs / 1000, m[r] / m["floor"], m[r] / m["xargs"]
            }
        }' "$TIMES"
    command -v parallel > /dev/null || echo "  GNU parallel: not installed (apt-get install parallel)"
    command -v rust-parallel > /dev/null || echo "  rust-parallel: not installed (cargo install rust-parallel)"
done

if [ "${MILLION:-0}" = 1 ]; then
    # Peak RSS (VmHWM, sampled every 10 ms) of ply run over 1,000,000 lines.
    seq 1000000 > "$INPUT"
    "$PLY" run -j 2 true < "$INPUT" > /dev/null &
    pid=$!
    peak=0
    while kill -0 "$pid" 2> /dev/null; do
        hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
        if [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ]; then peak=$hwm; fi
        sleep 0.01
    done
    wait "$pid"
    echo "ply run -j 2 true over 1,000,000 stdin lines: peak RSS $(( peak / 1024 )) MiB ($peak KiB)"
fi
