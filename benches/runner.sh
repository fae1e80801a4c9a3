#!/usr/bin/env bash
# ply run beside xargs -P, GNU parallel, rust-parallel and a bare
# spawn-and-wait loop (the floor), in the same run: N jobs of `true` and of
# `echo {}` at -j 2, output to /dev/null. Prints one table of wall times and
# per-job costs, with each runner's ratio to the floor.
#
#   bash benches/runner.sh            # 10,000 jobs each
#   JOBS=2000 bash benches/runner.sh  # fewer
#   MILLION=1 bash benches/runner.sh  # also: peak RSS of ply run over 1M input lines
#
# Installs nothing: GNU parallel (Debian package `parallel`) and
# rust-parallel (`cargo install rust-parallel`) are timed when on PATH and
# reported as missing otherwise. Builds ply and the floor in release.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-10000}
cargo build --release -q -p ply-cli --bin ply --example spawn_floor
PLY=target/release/ply
FLOOR=target/release/examples/spawn_floor
INPUT=$(mktemp)
trap 'rm -f "$INPUT"' EXIT
seq "$JOBS" > "$INPUT"

# Wall seconds of a command reading $INPUT on stdin, output discarded.
wall() {
    local start end
    start=$(date +%s%N)
    "$@" < "$INPUT" > /dev/null
    end=$(date +%s%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.4f", (e - s) / 1e9 }'
}

row() { # name floor_seconds seconds
    local per ratio
    per=$(awk -v t="$3" -v n="$JOBS" 'BEGIN { printf "%.1f", t * 1e6 / n }')
    ratio=$(awk -v t="$3" -v f="$2" 'BEGIN { printf "%.2f", t / f }')
    printf '  %-28s %9.3f s %9s us/job %7sx floor\n' "$1" "$3" "$per" "$ratio"
}

for workload in true echo; do
    if [ "$workload" = true ]; then
        cmd=(true); xcmd=(xargs -P 2 -n 1 true); pcmd=(parallel -j 2 true); rcmd=(rust-parallel -j 2 true)
    else
        cmd=(echo '{}'); xcmd=(xargs -P 2 -I '{}' echo '{}'); pcmd=(parallel -j 2 echo '{}'); rcmd=(rust-parallel -j 2 echo '{}')
    fi
    echo "$JOBS jobs of '${cmd[*]}' at -j 2 ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
    # The floor gets the program's absolute path: ply run also searches
    # PATH once per program, not once per job as xargs does.
    floor=$(wall "$FLOOR" 2 "$(command -v "${cmd[0]}")" "${cmd[@]:1}")
    row "floor (spawn + wait)" "$floor" "$floor"
    row "ply run" "$floor" "$(wall "$PLY" run -j 2 "${cmd[@]}")"
    row "ply run --no-cgroup" "$floor" "$(wall "$PLY" run -j 2 --no-cgroup "${cmd[@]}")"
    row "xargs -P 2" "$floor" "$(wall "${xcmd[@]}")"
    if command -v parallel > /dev/null; then
        row "GNU parallel" "$floor" "$(wall "${pcmd[@]}")"
    else
        echo "  GNU parallel: not installed (apt-get install parallel)"
    fi
    if command -v rust-parallel > /dev/null; then
        row "rust-parallel" "$floor" "$(wall "${rcmd[@]}")"
    else
        echo "  rust-parallel: not installed (cargo install rust-parallel)"
    fi
done

if [ "${MILLION:-0}" = 1 ]; then
    # Peak RSS (VmHWM, sampled every 10 ms) of ply run over 1,000,000 lines.
    seq 1000000 > "$INPUT"
    "$PLY" run -j 2 true < "$INPUT" > /dev/null &
    pid=$!
    peak=0
    while kill -0 "$pid" 2> /dev/null; do
        hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
        [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
        sleep 0.01
    done
    wait "$pid"
    echo "ply run -j 2 true over 1,000,000 stdin lines: peak RSS $((peak / 1024)) MiB ($peak KiB)"
fi
