#!/bin/bash
# gpu-s19.sh - session 19's device calls; parts marked "needs" ran code that
# was removed after them.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s19.sh PART
T=$(dirname "$0")
. "$T/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
BC=$B/bench/ringlm-bench-cuda
PART=${1:-gap}
. "$T/gpu-lib.sh" # left, build, suites, ncu_attn, eng, prof, ty, memcheck, mkm, benchm, load1, products,
                  # ctests, alt, prof1
# gap SHAPE TYPE: single stream's wall time per step against the same step's
# graph replayed back to back (no host between steps), and tok/s.
gap() { timeout 90 $BC --shape $1 --type $2 --batch 1 --prompt 512 --gen 64 --kv f16 --json 2>/dev/null | grep -oE '"step":"[a-z]+"|"gen_tok_s":[0-9.]+|"step_us":[0-9.]+|"replay_step_us":[0-9.]+' | tr '\n' ' '; }
#   gap      where a single stream's step time goes besides the GPU's work:
#            wall time per synchronous step against the graph replayed back
#            to back, for the 7B and TinyLlama types; TinyLlama's per-op profile.
if [ "$PART" = gap ]; then
  build
  for r in 1 2; do
    for s in "llama2-7b q4_0" "llama2-7b q8_0" "llama2-7b q4_k_m" "tinyllama-1.1b q4_0" "tinyllama-1.1b q4_k_m" "tinyllama-1.1b f16"; do
      left 500 || break
      echo "r$r $s: $(gap $s)"
    done
  done
  left 540 && timeout 60 $BC --shape tinyllama-1.1b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E "us x|sum"
  echo "elapsed ${SECONDS}s"
fi
