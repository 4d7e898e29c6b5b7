#!/bin/bash
# gpu-s22.sh - session 22's device calls; parts marked "needs" ran code that
# was removed after them.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s22.sh PART
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, suites, ctests, alt, ty, cfgs, ...
PART=${1:-first}
# sw01 VAR "SHAPE TYPE ROUNDS LIMIT" ...: a switch off and on, alternating
# (gpu-lib.sh's alt over ty), for each model in turn.
sw01() {
  local var=$1 a; shift
  for a in "$@"; do set -- $a; echo "$1 $2:"; alt $var "0 1" $3 $4 "ty $1 $2"; done
}
#   first    (needs a6ab1ad, reverted in c6eff8c) the attention's blocks ask the O product's weights (and the
#            gate/up product's first rows) into L2 once their own rows are
#            read (RL_CU_ATTN_PF=1 before the merge, 2 after it; off by
#            default): the tests it touches, then the settings alternating.
if [ "$PART" = first ]; then
  build
  ctests test_cu_paged test_cu_kernels
  P0="RL_CU_ATTN_PF=0" P1="RL_CU_ATTN_PF=1" P2="RL_CU_ATTN_PF=2"
  cfgs llama2-7b q4_0 3 330 "$P0" "$P1" "$P2" "$P2 RL_CU_ATTN_PF_GU=1056" "$P1 RL_CU_ATTN_PF_GU=2112"
  cfgs llama2-7b q4_k_m 2 420 "$P0" "$P1" "$P2 RL_CU_ATTN_PF_GU=1056"
  cfgs tinyllama-1.1b q4_k_m 2 470 "$P0" "$P1" "$P2 RL_CU_ATTN_PF_GU=1056"
  left 520 && echo "PF=2 model test: $(RL_CU_ATTN_PF=2 ctests test_cu_model | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   cores    (needs 28e15df, reverted) can the
#            O product's CTAs start beside the one-token attention and stream
#            their weights meanwhile? At most one attention block per SM
#            (RL_CU_ATTN_SPLITS=4: 128 blocks for 32 heads), the block within
#            128 registers (CAP) and the largest carveout (CARVE), against
#            each without; the tests of the capped kernel.
if [ "$PART" = cores ]; then
  build
  ctests test_cu_paged test_cu_kernels
  echo "CAP=1: $(RL_CU_ATTN_CAP=1 RL_CU_ATTN_CARVE=1 ctests test_cu_paged test_cu_kernels | tr '\n' ' ')"
  S4="RL_CU_ATTN_SPLITS=4" C1="RL_CU_ATTN_CAP=1" V1="RL_CU_ATTN_CARVE=1"
  cfgs llama2-7b q4_0 3 400 "RL_CU_ATTN_CAP=0" "$S4" "$S4 $C1" "$S4 $C1 $V1" "$C1 $V1" "$S4 $V1"
  cfgs tinyllama-1.1b q4_k_m 2 500 "RL_CU_ATTN_CAP=0" "$S4" "$S4 $C1 $V1" "$C1 $V1"
  echo "elapsed ${SECONDS}s"
fi
#   skip     (needs 6419829: RL_CU_STEP_SKIP, removed after omv, left ops out
#            of the one-sequence step: 1 Q|K|V, 2 RoPE, 4 attention, 8 O, 16
#            gate/up, 32 down, 64 output) what each op costs inside the step:
#            the single stream's tok/s with each left out, alternating.
if [ "$PART" = skip ]; then
  build
  sk() { local a=() v; for v in "$@"; do a+=("RL_CU_STEP_SKIP=$v"); done; echo "${a[@]}"; }
  cfgs llama2-7b q4_0 2 330 $(sk 0 1 2 4 6 8 16 32 64 12 121 127)
  cfgs llama2-7b q4_k_m 1 400 $(sk 0 4 6 8)
  cfgs tinyllama-1.1b q4_k_m 2 480 $(sk 0 2 4 6 8 121 127)
  echo "elapsed ${SECONDS}s"
fi
#   p16      (needs ec68402, reverted) rl_cu_mvb without a producer warp
#            (RL_CU_MVB_P16=1) and the attention switches of `cores` back:
#            the step's skip figures say the O product costs ~8 us inside the
#            step (4.8 alone): can its CTAs start beside the attention now
#            that a 16-warp CTA leaves each scheduler room for an attention
#            warp (126 registers)? Ran three times: the refill by one lane,
#            then a row a lane, then without the fence.proxy.async before it.
if [ "$PART" = p16 ]; then
  build
  ctests test_cu_mvb
  echo "P16=1: $(RL_CU_MVB_P16=1 ctests test_cu_mvb test_cu_mixed | tr '\n' ' ')"
  S4="RL_CU_ATTN_SPLITS=4" CC="RL_CU_ATTN_CAP=1 RL_CU_ATTN_CARVE=1" P1="RL_CU_MVB_P16=1"
  cfgs llama2-7b q4_0 3 380 "RL_CU_MVB_P16=0" "$P1" "$P1 $S4 $CC" "$S4 $CC" "$P1 $CC"
  cfgs llama2-7b q4_k_m 1 420 "RL_CU_MVB_P16=0" "$P1" "$P1 $S4 $CC"
  cfgs tinyllama-1.1b q4_k_m 1 460 "RL_CU_MVB_P16=0" "$P1" "$P1 $S4 $CC"
  cfgs llama2-7b q4_0 1 520 "$P1 $S4 $CC RL_CU_STEP_SKIP=8" "$P1 $S4 $CC RL_CU_STEP_SKIP=4" "RL_CU_STEP_SKIP=8"
  left 540 && SAN_S=50 RL_CU_MVB_P16=1 memcheck test_cu_mvb
  echo "elapsed ${SECONDS}s"
fi
#   omv      (needs ff0ecef: RL_CU_MVB_O=0 then put the O product on the dp4a
#            matvec, whose CTAs are small and load their weights before the
#            PDL wait) the O product inside the step on either kernel, with
#            the step's skip figures; test_cu_model with it.
if [ "$PART" = omv ]; then
  build
  echo "O on matvec: $(RL_CU_MVB_O=0 ctests test_cu_model test_cu_mixed | tr '\n' ' ')"
  cfgs llama2-7b q4_0 3 330 "RL_CU_MVB_O=1" "RL_CU_MVB_O=0" "RL_CU_MVB_O=0 RL_CU_STEP_SKIP=8" "RL_CU_MVB_O=0 RL_CU_STEP_SKIP=4"
  cfgs llama2-7b q4_k_m 2 400 "RL_CU_MVB_O=1" "RL_CU_MVB_O=0"
  cfgs tinyllama-1.1b q4_k_m 2 450 "RL_CU_MVB_O=1" "RL_CU_MVB_O=0"
  cfgs llama2-7b q8_0 1 480 "RL_CU_MVB_O=1" "RL_CU_MVB_O=0"
  echo "elapsed ${SECONDS}s"
fi
#   final    (the O product on the matvec by default for Q4_0, Q8_0, Q4_K,
#            and Q5_K then; Q5_K back on rl_cu_mvb after it)
#            the other types with O on either kernel (RL_CU_MVB_O=1 /
#            0), the closing single-stream figures, the cuda and model suites.
if [ "$PART" = final ]; then
  build
  ctests test_cu_mixed test_cu_model
  for t in q5_k_m q6_k f16; do cfgs llama2-7b $t 1 250 "RL_CU_MVB_O=1" "RL_CU_MVB_O=0"; done
  cfgs tinyllama-1.1b f16 1 270 "RL_CU_MVB_O=1" "RL_CU_MVB_O=0"
  for sh in "llama2-7b q4_0" "llama2-7b q4_k_m" "llama2-7b q4_k" "llama2-7b q8_0" "tinyllama-1.1b q4_0" "tinyllama-1.1b q4_k_m"; do
    left 340 && echo "final $sh: $(ty $sh)"
  done
  left 360 && SUITE_S=$((585 - SECONDS)) suites --suite cuda --suite model
  echo "elapsed ${SECONDS}s"
fi
#   mix      (RL_CU_MVB_MV, a measurement switch: products forced onto the
#            matvec in the rl_cu_mvb step, 1 Q|K|V, 2 O, 4 gate/up, 8 down)
#            with O on the matvec, does the rl_cu_mvb step now beat the matvec
#            step for TinyLlama Q4_0 / Q8_0 (RL_CU_MVB=1)? Would another
#            product gain on the matvec too?
if [ "$PART" = mix ]; then
  build
  cfgs tinyllama-1.1b q4_0 2 260 "RL_CU_MVB_MV=0" "RL_CU_MVB=1" "RL_CU_MVB=1 RL_CU_MVB_MV=8" "RL_CU_MVB=1 RL_CU_MVB_MV=1"
  cfgs tinyllama-1.1b q8_0 1 290 "RL_CU_MVB_MV=0" "RL_CU_MVB=1"
  cfgs llama2-7b q4_0 2 400 "RL_CU_MVB_MV=0" "RL_CU_MVB_MV=8" "RL_CU_MVB_MV=4"
  cfgs llama2-7b q4_k_m 1 440 "RL_CU_MVB_MV=0" "RL_CU_MVB_MV=8"
  cfgs tinyllama-1.1b q4_k_m 1 470 "RL_CU_MVB_MV=0" "RL_CU_MVB_MV=8"
  left 500 && echo "TL q4_0 mvb step: $(RL_CU_MVB=1 ctests test_cu_mixed | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   q8       (Q8_0 layers take the rl_cu_mvb step at any width) TinyLlama
#            Q8_0 on it against the matvec step (RL_CU_MVB=0), alternating;
#            Q4_0 unchanged; the cuda and model suites.
if [ "$PART" = q8 ]; then
  build
  cfgs tinyllama-1.1b q8_0 3 220 "RL_CU_MVB_MV=0" "RL_CU_MVB=0"
  cfgs tinyllama-1.1b q4_0 1 240 "RL_CU_MVB_MV=0"
  cfgs llama2-7b q8_0 1 260 "RL_CU_MVB_MV=0"
  left 280 && SUITE_S=$((585 - SECONDS)) suites --suite cuda --suite model
  echo "elapsed ${SECONDS}s"
fi
#   q8b      (test_cu_mixed expects the automatic rl_cu_mvb step for Q8_0 and
#            the types that go up as Q8_0, at rows of 256 and more) the cuda
#            and model suites again.
if [ "$PART" = q8b ]; then
  build
  SUITE_S=400 suites --suite cuda --suite model
  cfgs tinyllama-1.1b q8_0 1 520 "RL_CU_MVB_MV=0"
  echo "elapsed ${SECONDS}s"
fi
#   capo     (needs 71fbfdc, reverted: the attention's RL_CU_ATTN_CAP switch)
#            with the O product on the matvec (84 registers, 8-warp CTAs: two
#            warps a scheduler need 5,632 registers, which two 176-register
#            attention warps leave only at 126): does capping the one-token
#            attention now let the O CTAs load their weights beside it?
if [ "$PART" = capo ]; then
  build
  echo "CAP=1: $(RL_CU_ATTN_CAP=1 ctests test_cu_paged test_cu_kernels | tr '\n' ' ')"
  sw01 RL_CU_ATTN_CAP "llama2-7b q4_0 3 330" "llama2-7b q4_k_m 2 400" "llama2-7b q8_0 2 470" "llama2-7b q6_k 1 500"
  echo "elapsed ${SECONDS}s"
fi
#   w4       (needs 22bd635, reverted: RL_CU_MV_W4, one-row plain matvecs in
#            CTAs of 4 warps x 2 rows, 92 registers, one warp a scheduler,
#            which fit beside two 176-register attention blocks) the O
#            product on the matvec in such CTAs against 8-warp ones.
if [ "$PART" = w4 ]; then
  build
  echo "W4=1: $(RL_CU_MV_W4=1 ctests test_cu_kernels test_cu_mixed | tr '\n' ' ')"
  sw01 RL_CU_MV_W4 "llama2-7b q4_0 3 330" "llama2-7b q4_k_m 2 400" "llama2-7b q8_0 1 440" "tinyllama-1.1b q4_0 2 480"
  echo "elapsed ${SECONDS}s"
fi
#   review   (kquant_packed shared by the K-quant row size and the Q4_K/Q5_K
#            upload) the tests that upload K-quant rows, and the suites.
if [ "$PART" = review ]; then
  build
  ctests test_cu_kernels test_cu_mvb test_cu_mixed
  left 300 && SUITE_S=$((560 - SECONDS)) suites --suite cuda --suite model
  echo "elapsed ${SECONDS}s"
fi
