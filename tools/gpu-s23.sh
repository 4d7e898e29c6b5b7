#!/bin/bash
# gpu-s23.sh - session 23's device calls; parts marked "needs" ran code that
# was removed after them.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s23.sh PART
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, suites, ctests, alt, ty, cfgs, tyc, ...
PART=${1:-ctx}
# profC SHAPE TYPE PROMPT: the single stream's per-op profile after a PROMPT-token prompt.
profC() { timeout 90 $BC --shape $1 --type $2 --batch 1 --prompt $3 --gen 16 --kv f16 --profile 2>&1 | grep -E "us x|sum" | sed -E 's/ +/ /g; s/ us x +[0-9]+ = +[0-9.]+ us \( *[0-9.]+%\)//' | tr '\n' '|'; }
#   ctx      the single stream from an empty context (a 1-token prompt, 128
#            generated: the reference engine's tg128) against after a
#            512-token prompt (128 generated), every type: tok/s, replayed
#            step us; the per-op profile of 7B Q4_0 at both.
if [ "$PART" = ctx ]; then
  build
  for r in 1 2; do
    for s in "llama2-7b q4_0" "tinyllama-1.1b q4_0"; do
      left 200 && echo "r$r $s: p1 $(tyc $s 1 128) | p512 $(tyc $s 512 128)"
    done
  done
  for s in "llama2-7b q8_0" "llama2-7b f16" "llama2-7b q4_k_m" "llama2-7b q4_k" "llama2-7b q5_k_m" "llama2-7b q6_k" \
           "tinyllama-1.1b q8_0" "tinyllama-1.1b f16" "tinyllama-1.1b q4_k_m"; do
    left 420 && echo "$s: p1 $(tyc $s 1 128) | p512 $(tyc $s 512 128)"
  done
  left 470 && echo "prof 7B q4_0 p1: $(profC llama2-7b q4_0 1)"
  left 510 && echo "prof 7B q4_0 p512: $(profC llama2-7b q4_0 512)"
  left 540 && echo "prof TL q4_0 p1: $(profC tinyllama-1.1b q4_0 1)"
  echo "elapsed ${SECONDS}s"
fi
