#!/bin/bash
# gpu-mmq.sh - build, test and benchmark rl_cu_mmq (int8 tensor-core products
# for Q4_0/Q8_0) on the GPU machine in one command, from the repository root:
#   source .device/setup.sh && bash tools/gpu-mmq.sh
# Logs go to $OUT (or /tmp/gpu-out).
. "$(dirname "$0")/gpu-env.sh"
B=/tmp/rl-mmq
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
echo "== build"
[ -f $B/build.ninja ] || meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; exit 1; }
ninja -C $B -j16 tests/cuda/test_cu_mmq bench/ringlm-bench-cuda >>"$OUT/build.log" 2>&1 \
  || { grep -E "error|FAILED" "$OUT/build.log" | head -30; exit 1; }
echo "== test_cu_mmq"
timeout 50 $B/tests/cuda/test_cu_mmq >"$OUT/test_mmq.log" 2>&1; rc=$?
echo "test_cu_mmq: rc=$rc $(grep -E '^[0-9]+%' "$OUT/test_mmq.log")"
[ $rc -eq 0 ] || grep -vE "seed [0-9]+$|rel err .*\)$" "$OUT/test_mmq.log" | head -30
grep -E "^mmq .*rel err" "$OUT/test_mmq.log" | awk '{print $(NF-3)}' | sort -g | tail -1 | sed 's/^/max rel err vs float64: /'
grep -E "^mmq .*rel err" "$OUT/test_mmq.log" | awk '{print $NF}' | tr -d ')' | sort -g | tail -1 | sed 's/^/max rel diff vs matvec: /'
echo "== bench: ringlm-bench-cuda --mm"
timeout 85 $B/bench/ringlm-bench-cuda --mm 2>&1 | tee "$OUT/bench_mm.txt"
