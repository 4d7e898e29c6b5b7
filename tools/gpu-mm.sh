#!/bin/bash
# gpu-mm.sh - build, test and benchmark rl_cu_mm (batched tensor-core matrix
# products) on the GPU machine in one command:
#   source .device/setup.sh && bash tools/gpu-mm.sh
# Logs go to $OUT (or /tmp/gpu-out).
. "$(dirname "$0")/gpu-env.sh"
B=/tmp/rl-mm
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
echo "== build"
[ -f $B/build.ninja ] || meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; exit 1; }
ninja -C $B -j16 tests/cuda/test_cu_mm tests/cuda/test_cu_kernels bench/ringlm-bench >>"$OUT/build.log" 2>&1 \
  || { grep -E "error|FAILED" "$OUT/build.log" | head -30; exit 1; }
echo "== tests"
: >"$OUT/tests.log"
for t in test_cu_mm test_cu_kernels; do
  timeout 100 $B/tests/cuda/$t >"$OUT/t.log" 2>&1; rc=$?
  echo "$t: rc=$rc $(grep -E '^[0-9]+%' "$OUT/t.log")"
  [ $rc -eq 0 ] || grep -vE "seed [0-9]+$|rel err [0-9.e-]+$" "$OUT/t.log" | head -30
  cat "$OUT/t.log" >>"$OUT/tests.log"
done
rm -f "$OUT/t.log"
grep -E "^mm .*rel err" "$OUT/tests.log" | awk '{print $NF}' | sort -g | tail -1 | sed 's/^/test_cu_mm max rel err: /'
echo "== bench: ringlm-bench cuda --mm"
timeout 60 $B/bench/ringlm-bench cuda --mm 2>&1 | tee "$OUT/bench_mm.txt"
timeout 60 $B/bench/ringlm-bench cuda --mm --json >"$OUT/bench_mm.jsonl" 2>&1
