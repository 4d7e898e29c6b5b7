#!/bin/bash
# gpu-sanitize.sh - compute-sanitizer memcheck and racecheck over the CUDA tests:
#   source .device/setup.sh && bash tools/gpu-sanitize.sh
. "$(dirname "$0")/gpu-env.sh"
B=/tmp/rl-san
meson setup $B -Dbuildtype=debugoptimized -Dcuda=enabled -Dwerror=false >"$OUT/setup.log" 2>&1 || { tail "$OUT/setup.log"; exit 1; }
ninja -C $B -j16 tests/cuda/test_cu_model tests/cuda/test_cu_kernels tests/cuda/test_cu_mixed tools/ringlm-mkmodel >"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head; exit 1; }
export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
for tool in memcheck racecheck; do
  for t in test_cu_model test_cu_kernels test_cu_mixed; do
    timeout 200 compute-sanitizer --tool $tool --error-exitcode 99 $B/tests/cuda/$t >"$OUT/$tool-$t.log" 2>&1
    echo "$tool $t: rc=$? $(grep -E 'ERROR SUMMARY|Checks' "$OUT/$tool-$t.log" | tr '\n' ' ')"
  done
done
