#!/bin/bash
# gpu-s7.sh - session 7's closing device call: every CUDA test and the
# transformers check, compute-sanitizer (memcheck, racecheck) on the paged-KV
# test (which runs the warp decode-attention kernel), the warp kernel against
# the block kernel per op, and the single-stream benchmarks.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s7.sh
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}
T=$(dirname "$0")
bash $T/gpu-final.sh tests || exit 1
echo "== compute-sanitizer on test_cu_paged and test_cu_kernels"
for tool in memcheck racecheck; do
  for t in test_cu_paged test_cu_kernels; do
    RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no timeout 120 compute-sanitizer --tool $tool --error-exitcode 99 $B/tests/cuda/$t >"$OUT/$tool-$t.log" 2>&1
    echo "$tool $t: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$tool-$t.log" | tr '\n' ' ')"
  done
done
ATTN_KERNELS="block warp" bash $T/gpu-steps.sh attnw | grep -vE "^(==|test_cu|100%)"
bash $T/gpu-final.sh bench-q4 | grep -oE '"model":"[^"]*"|"gen_tok_s":[0-9.]+|"prefill_tok_s":[0-9.]+' | paste - - -
