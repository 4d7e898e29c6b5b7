#!/bin/bash
# gpu-s9.sh - session 9's device calls.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s9.sh PART
# Parts:
#   verify   every CUDA test and the transformers check (gpu-final.sh tests), then
#            the per-op prefill profile of the 7B Q4_0 shape (512 tokens) and the
#            single-stream Q4_0 benchmarks.
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}
T=$(dirname "$0")
BC=$B/bench/ringlm-bench-cuda
PART=${1:-verify}
if [ "$PART" = verify ]; then
  bash $T/gpu-final.sh tests || exit 1
  echo "== prefill profile, 7B Q4_0, 512 tokens"
  timeout 120 $BC --shape llama2-7b --type q4_0 --prompt 512 --prefill-profile 2>&1 | tail -30
  bash $T/gpu-final.sh bench-q4 | grep -oE '"model":"[^"]*"|"gen_tok_s":[0-9.]+|"prefill_tok_s":[0-9.]+' | paste - - -
fi
