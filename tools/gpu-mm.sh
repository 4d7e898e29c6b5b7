#!/bin/bash
# gpu-mm.sh - build, test and benchmark rl_cu_mm (batched tensor-core matrix
# products) on the GPU machine in one command:
#   source .device/setup.sh && bash tools/gpu-mm.sh
# Tests and benchmarks run for each tiling (RL_CU_MM_WARPS 8|16) and
# activation sharing (RL_CU_MM_XSHARE 1|2|4). Logs go to $OUT (or /tmp/gpu-out).
set -u -o pipefail
export C_INCLUDE_PATH=/opt/deps/usr/include${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}
export LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
B=/tmp/rl-mm
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
echo "== build"
[ -f $B/build.ninja ] || meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; exit 1; }
ninja -C $B -j16 tests/cuda/test_cu_mm tests/cuda/test_cu_kernels bench/ringlm-bench >>"$OUT/build.log" 2>&1 \
  || { grep -E "error|FAILED" "$OUT/build.log" | head -30; exit 1; }
echo "== test_cu_kernels"
timeout 100 $B/tests/cuda/test_cu_kernels >"$OUT/tests.log" 2>&1; echo "test_cu_kernels: rc=$?"
grep -E "^[0-9]+%|Failures|Errors" "$OUT/tests.log" | grep -v "^100%" | head -5
: >"$OUT/bench.jsonl"
for cfg in ${MM_CONFIGS:-8:1 16:1 8:4 16:2 8:2}; do
  w=${cfg%:*}; xs=${cfg#*:}
  export RL_CU_MM_WARPS=$w RL_CU_MM_XSHARE=$xs
  echo "== warps $w xshare $xs"
  timeout 60 $B/tests/cuda/test_cu_mm >"$OUT/t.log" 2>&1; rc=$?
  echo "test_cu_mm: rc=$rc $(grep -E '^[0-9]+%' "$OUT/t.log") max rel err $(grep -E 'rel err' "$OUT/t.log" | awk '{print $NF}' | sort -g | tail -1)"
  [ $rc -eq 0 ] || grep -vE "seed [0-9]+$|rel err [0-9.e-]+$" "$OUT/t.log" | head -20
  cat "$OUT/t.log" >>"$OUT/tests.log"
  timeout 45 $B/bench/ringlm-bench cuda --mm --json 2>&1 | sed "s/^{/{\"warps\":$w,\"xshare\":$xs,/" >"$OUT/b.jsonl"
  grep -E "step|rror" "$OUT/b.jsonl" | sed -E 's/.*"type":"([^"]+)","kernel":"([^"]+)","batch":([0-9]+).*"step_ms":([0-9.]+).*/\1 \2 b\3 step \4 ms/' | tr '\n' ';'; echo
  cat "$OUT/b.jsonl" >>"$OUT/bench.jsonl"
done
rm -f "$OUT/t.log" "$OUT/b.jsonl"
echo "== text bench (default config)"
unset RL_CU_MM_WARPS RL_CU_MM_XSHARE
timeout 60 $B/bench/ringlm-bench cuda --mm 2>&1 | tee "$OUT/bench_mm.txt" | grep -E "Q4_0.* mm +64|step"
