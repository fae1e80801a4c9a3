#!/usr/bin/env bash
# Builds libply_capi.a (the capi profile), compiles the Concurrency Kit
# comparison against it, and runs it. Needs libck-dev (apt-get install libck-dev).
#   bash core/capi/bench/run.sh [--build-only]
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo build --quiet -p ply-capi --profile capi
cc -std=c11 -O2 -Icore/capi/include core/capi/bench/ck_compare.c \
    target/capi/libply_capi.a -lck -lpthread -o target/capi/ck_compare
if [ "${1:-}" != "--build-only" ]; then
    target/capi/ck_compare
fi
