#!/bin/bash
# gpu-s12.sh - checks for the GPU that session 12 (no device time) could not run.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s12.sh PART
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}
T=$(dirname "$0")
PART=${1:-first}
#   first    every CUDA suite (cuda_mixed now also uploads Q4_1/Q5_0/Q5_1
#            matrices as Q8_0 and checks them against the float64 reference,
#            with a file of rows of 64), the batch/model suites, then a
#            smollm-135m-shaped Q4_K_M model (Q5_0 and Q8_0 throughout: rows
#            of 576) through the engine on the GPU and on the CPU.
if [ "$PART" = first ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  export RL_SHARED_DIR=$PWD/.gpu/shared
  timeout 300 meson test -C $B --no-rebuild --suite cuda --suite batch --suite model --print-errorlogs >"$OUT/tests.log" 2>&1
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/tests.log" | tr '\n' ' '; echo
  grep -E "FAIL|Failure|failed:|rel err" "$OUT/tests.log" | grep -E "FAIL|Failure|failed|legacy|rows of 64" | head -20
  M=/tmp/smollm-q4km.gguf
  $B/tools/ringlm-mkmodel --shape smollm-135m --type Q4_K_M --out $M --threads 8 >/dev/null 2>&1
  for d in cuda cpu; do
    echo "smollm-135m Q4_K_M $d: $(timeout 120 $B/bench/ringlm-bench model --model $M --device $d --threads 8 --prompt 64 --gen 128 --json 2>&1 | tail -1)"
  done
fi
#   closing  session 11's closing part (tests, hf_check, the 64-client load
#            with zero copy on/off: the cells-only registration), unchanged.
if [ "$PART" = closing ]; then
  bash $T/gpu-s11.sh closing
fi
