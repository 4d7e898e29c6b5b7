#!/bin/bash
# gpu-s21.sh - session 21's device calls; parts marked "needs" ran code that
# was removed after them.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s21.sh PART
# The old tree (.old, carried) is `git archive` of the commit before the change.
T=$(dirname "$0")
. "$T/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
BC=$B/bench/ringlm-bench-cuda
PART=${1:-first}
. "$T/gpu-lib.sh" # left, build, suites, ctests, alt, ty, build_pair, ab, ...
#   first    (old tree: f3134fb) Q6_K rows packed in groups of 8 blocks behind
#            a 16-byte header of their d's (210 bytes a block, the 224-byte
#            slots before) and Q|K in one matrix where only V has another type
#            (Q4_K_M / Q5_K_M layers with a Q6_K V): the CUDA tests that read
#            Q6_K or split layers, then old tree against new, alternating;
#            Q|K fused against not (RL_CU_QK_FUSE=0), alternating.
if [ "$PART" = first ]; then
  build_pair
  ctests test_cu_kernels test_cu_mvb test_cu_mixed
  wait
  for r in 1 2; do
    ab 300 llama2-7b q6_k
    ab 330 llama2-7b q4_k_m
    ab 350 llama2-7b q5_k_m
    ab 370 tinyllama-1.1b q4_k_m
  done
  ab 390 llama2-7b q4_0
  alt RL_CU_QK_FUSE "1 0" 2 430 "ty llama2-7b q4_k_m"
  echo "QK_FUSE=0: $(RL_CU_QK_FUSE=0 ctests test_cu_mixed | tr '\n' ' ')"
  left 470 && ctests test_cu_mm test_cu_mmq test_cu_model test_cu_prefill
  left 520 && ab 540 llama2-7b q4_k_m --batch 4 --prompt 128 --gen 32
  echo "elapsed ${SECONDS}s"
fi
