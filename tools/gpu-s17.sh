#!/bin/bash
# gpu-s17.sh - the device calls prepared for session 17 (written in session
# 16, after its device time ran out).
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s17.sh PART
T=$(dirname "$0")
. "$T/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
BC=$B/bench/ringlm-bench-cuda
PART=${1:-chain}
. "$T/gpu-lib.sh" # left, build, suites, ncu_attn, eng, prof, load1, products
# ty SHAPE TYPE: single stream (512-token prompt, 64 generated, fp16 KV):
# the step's path and tok/s.
ty() { timeout 90 $BC --shape $1 --type $2 --batch 1 --prompt 512 --gen 64 --kv f16 --json 2>/dev/null | grep -oE '"step":"[a-z]+"|"gen_tok_s":[0-9.]+' | tr '\n' ' '; }
#   chain    rl_cu_mvb_chain (a layer's O, gate/up, down and next Q|K|V in one
#            launch; RL_CU_MVB_CHAIN=1), written at the end of session 16 and
#            never run: its tests (a deadlock shows as a timeout), the cuda and
#            model suites, memcheck, then single stream chained against one
#            launch per product, 7B and TinyLlama (forced onto rl_cu_mvb).
if [ "$PART" = chain ]; then
  build
  echo "test_cu_mvb: $(timeout 150 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4) rc=${PIPESTATUS[0]}"
  echo "test_cu_mixed: $(timeout 150 $B/tests/cuda/test_cu_mixed 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  SUITE_S=220 suites --suite cuda --suite model
  timeout 150 compute-sanitizer --tool memcheck $B/tests/cuda/test_cu_mvb >"$OUT/san-memcheck.log" 2>&1
  echo "compute-sanitizer memcheck: rc=$? $(grep -E 'ERROR SUMMARY|Checks' "$OUT/san-memcheck.log" | tr '\n' ' ')"
  for r in 1 2; do
    left 400 || break
    echo "7B q4_0: chain $(RL_CU_MVB_CHAIN=1 ty llama2-7b q4_0) per product $(ty llama2-7b q4_0)"
    echo "TinyLlama q4_0: chain $(RL_CU_MVB=1 RL_CU_MVB_CHAIN=1 ty tinyllama-1.1b q4_0) per product $(RL_CU_MVB=1 ty tinyllama-1.1b q4_0) matvec $(ty tinyllama-1.1b q4_0)"
  done
  left 480 && echo "7B q8_0: chain $(RL_CU_MVB_CHAIN=1 ty llama2-7b q8_0) per product $(ty llama2-7b q8_0)"
  left 520 && echo "7B f16: chain $(RL_CU_MVB_CHAIN=1 ty llama2-7b f16) per product $(ty llama2-7b f16)"
  echo "elapsed ${SECONDS}s"
fi
#   model    the issue's own command on the final code: ringlm-bench model
#            --device cuda --prompt 512 --gen 128 (gpu-final.sh bench-q4:
#            TinyLlama and 7B Q4_0, models from ringlm-mkmodel), which runs
#            the engine and so the mvb step where it applies.
if [ "$PART" = model ]; then
  RL_GPU_BUILD=${RL_GPU_BUILD:-/tmp/rl-final} bash $T/gpu-final.sh bench-q4 | grep -vE "^==" | tail -6
  echo "elapsed ${SECONDS}s"
fi
