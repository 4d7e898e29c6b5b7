#!/bin/bash
# gpu-s30.sh - session 30's device calls (an H200).
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s30.sh PART
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, ctests, cfgc, tyc, mkm, ...
PART=${1:-pf}
#   (part pf ran at 1464463, reverted: slower at every size)
#   pf       the attention's L2 prefetch hint (RL_CU_ATTN_PF KB of the
#            layer's gate|up then down weights, asked for by the attention's
#            blocks after their PDL wait): the tests it touches, then sizes
#            alternating on the single streams.
P=("RL_CU_ATTN_PF=0" "RL_CU_ATTN_PF=8192" "RL_CU_ATTN_PF=16384" "RL_CU_ATTN_PF=32768")
if [ "$PART" = pf ]; then
  build
  ctests test_cu_paged test_cu_model
  cfgc llama2-7b q4_0 1 128 2 300 "${P[@]}"
  cfgc tinyllama-1.1b q4_0 1 128 2 360 "${P[0]}" "${P[2]}" "${P[3]}"
  cfgc llama2-7b q4_k_m 1 128 1 400 "${P[0]}" "${P[2]}" "${P[3]}"
  cfgc llama2-7b q8_0 1 128 1 430 "${P[0]}" "${P[2]}"
  cfgc llama2-7b q4_0 512 64 1 460 "${P[0]}" "${P[2]}" "${P[3]}"
  cfgc tinyllama-1.1b q4_k_m 1 128 1 490 "${P[0]}" "${P[2]}" "${P[3]}"
  cfgc llama2-7b f16 1 128 1 520 "${P[0]}" "${P[2]}"
  echo "elapsed ${SECONDS}s"
fi
#   (part ks ran at 8ef7bd1, reverted in a17047b: even)
#   ks       the one-sequence Q4_K matvec's shape (the O product of Q4_K and
#            Q4_K_M files; RL_CU_MV_KSHAPE 0: 8 warps x 2 rows, 4 units a
#            round, 127 registers; 1: 2 units a round, three CTAs an SM; 2:
#            4-warp CTAs of 8 rows): the kernel tests in each, the single
#            streams alternating, a step timeline with each.
K=("RL_CU_MV_KSHAPE=0" "RL_CU_MV_KSHAPE=1" "RL_CU_MV_KSHAPE=2")
if [ "$PART" = ks ]; then
  build & build_tl; wait
  for k in 0 1 2; do echo "[ks $k] $(RL_CU_MV_KSHAPE=$k ctests test_cu_kernels test_cu_mixed)"; done
  cfgc llama2-7b q4_k_m 1 128 2 330 "${K[@]}"
  cfgc llama2-7b q4_k 1 128 2 380 "${K[@]}"
  cfgc tinyllama-1.1b q4_k_m 1 128 2 420 "${K[@]}"
  cfgc llama2-7b q4_k_m 512 64 1 450 "${K[@]}"
  for k in 0 1 2; do left 520 && { echo "== timeline 7bkm ks $k"; RL_CU_MV_KSHAPE=$k tl 7bkm$k llama2-7b q4_k_m 1 128 | head -14; }; done
  echo "elapsed ${SECONDS}s"
fi
#   dmax     the attention's one-block queries on the H200: queries of at
#            most RL_CU_ATTN_DMAX chunks (64 positions) in one block of their
#            head, merged there (default 1), and the two-chunk pairs
#            (RL_CU_ATTN_PAIR) on the single streams from an empty context.
D=("RL_CU_ATTN_DMAX=1" "RL_CU_ATTN_DMAX=2" "RL_CU_ATTN_DMAX=3" "RL_CU_ATTN_DMAX=1 RL_CU_ATTN_PAIR=0")
if [ "$PART" = dmax ]; then
  build
  for d in 2 3; do echo "[dmax $d] $(RL_CU_ATTN_DMAX=$d ctests test_cu_paged)"; done
  cfgc tinyllama-1.1b q4_0 1 128 3 330 "${D[@]}"
  cfgc llama2-7b q4_0 1 128 2 450 "${D[@]}"
  cfgc tinyllama-1.1b q4_0 512 64 1 500 "${D[0]}" "${D[1]}"
  echo "elapsed ${SECONDS}s"
fi
#   (part nsplit ran at 6189794, reverted: slower)
#   nsplit   the deferred-norm matvec's K split over clusters of two CTAs
#            where a product has at most half as many 32-blocks of outputs
#            as SMs (TinyLlama's O and down: RL_CU_MV_NSPLIT=1, default,
#            against 0): the kernel and model tests in both, the single
#            streams alternating.
N=("RL_CU_MV_NSPLIT=1" "RL_CU_MV_NSPLIT=0")
if [ "$PART" = nsplit ]; then
  build
  for k in 1 0; do echo "[nsplit $k] $(RL_CU_MV_NSPLIT=$k ctests test_cu_kernels)"; done
  ctests test_cu_model test_cu_mixed test_cu_paged
  cfgc tinyllama-1.1b q4_0 1 128 3 330 "${N[@]}"
  cfgc tinyllama-1.1b q4_0 512 64 2 380 "${N[@]}"
  cfgc llama2-7b q4_0 1 128 1 420 "${N[@]}"
  left 450 && mkm tinyllama-1.1b Q4_0 tl-q4_0 && for k in 1 0; do echo "engine TinyLlama Q4_0 p1 [nsplit $k]: $(RL_CU_MV_NSPLIT=$k timeout 90 $B/bench/ringlm-bench model --model /tmp/rl-models/tl-q4_0.gguf --device cuda --prompt 1 --gen 128 --bw 4240 --json 2>/dev/null | grep -oE '"(gen_tok_s|gen_roofline_frac)":[0-9.]+' | tr '\n' ' ')"; done
  echo "elapsed ${SECONDS}s"
fi
