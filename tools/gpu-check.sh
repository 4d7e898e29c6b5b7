#!/bin/bash
# gpu-check.sh - build, check and benchmark the CUDA backend on the GPU machine.
#   source .device/setup.sh && cd .gpu/src && bash tools/gpu-check.sh [quick]
# Logs go to $OUT (or /tmp/gpu-out); a short table is printed last.
set -u -o pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
B=/tmp/rl-build
MODE=${1:-full}
log() { echo "== $*"; }
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv | tee "$OUT/gpu.txt"

log build
if [ ! -f $B/build.ninja ]; then
  meson setup $B -Dbuildtype=release -Dcuda=enabled >"$OUT/setup.log" 2>&1 || { tail -30 "$OUT/setup.log"; exit 1; }
fi
ninja -C $B -j16 >"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head -30; exit 1; }

log tests
meson test -C $B --suite cuda --print-errorlogs >"$OUT/tests.log" 2>&1
TEST_RC=$?
grep -E "^ *[0-9]+/[0-9]+ " "$OUT/tests.log"
[ $TEST_RC -eq 0 ] || grep -E "Assert|failed|error|FAIL" "$OUT/tests.log" | head -40
cp $B/meson-logs/testlog.txt "$OUT/testlog.txt" 2>/dev/null

BENCH=$B/bench/ringlm-bench-cuda
log kernels
$BENCH --kernels >"$OUT/kernels.txt" 2>&1; cat "$OUT/kernels.txt"
$BENCH --kernels --batch 8 >"$OUT/kernels_b8.txt" 2>&1

log models
: >"$OUT/bench.txt"
run() { $BENCH "$@" 2>>"$OUT/bench.err" | tee -a "$OUT/bench.txt"; }
run --shape tinyllama-1.1b --type q4_0
run --shape tinyllama-1.1b --type q4_0 --no-graph
if [ "$MODE" = full ]; then
  run --shape tinyllama-1.1b --type q8_0
  run --shape tinyllama-1.1b --type f16
  run --shape llama2-7b --type q4_0
  run --shape llama2-7b --type q8_0
  run --shape llama2-7b --type f16
  run --shape llama2-7b --type q4_0 --batch 8
fi
tail -5 "$OUT/bench.err"

log summary
echo "tests rc=$TEST_RC"
sed -E 's/^cuda +//' "$OUT/bench.txt"
