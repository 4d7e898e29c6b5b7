#!/bin/bash
# gpu-s18.sh - session 18's device calls (`check` written at the end of
# session 17, after its device time ran out); parts marked "needs" ran code
# that was removed after them.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s18.sh PART
T=$(dirname "$0")
. "$T/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
BC=$B/bench/ringlm-bench-cuda
PART=${1:-check}
. "$T/gpu-lib.sh" # left, build, suites, ncu_attn, eng, prof, ty, memcheck, mkm, benchm, load1, products,
                  # ctests, alt, prof1
#   check    what session 17 wrote after its last device call: the shared
#            int8-plane check in test_cu_kernels, test_cu_mm, test_cu_mmq and
#            test_cu_prefill, test_cu_mixed's Q4_K_M file with F32 matrices on
#            the forced mvb step, the automatic choice's every-matrix rule;
#            then the cuda and model suites and single stream on the final code.
if [ "$PART" = check ]; then
  build
  ctests test_cu_kernels test_cu_mm test_cu_mmq test_cu_prefill test_cu_mixed
  SUITE_S=240 suites --suite cuda --suite model
  for t in q4_0 q4_k_m q8_0; do
    left 520 || break
    echo "7B $t: $(ty llama2-7b $t)"
  done
  left 540 && echo "TinyLlama q4_0: $(ty tinyllama-1.1b q4_0) q4_k_m: $(ty tinyllama-1.1b q4_k_m)"
  # batched K-quant steps (2-8 rows stay on the dp4a matvecs, whose K-quant
  # scale decoding changed in session 17: compare with the same at 02acdee)
  for b in 2 4 8; do
    left 560 || break
    echo "7B q4_k_m batch $b: $(timeout 90 $BC --shape llama2-7b --type q4_k_m --batch $b --prompt 128 --gen 32 --kv f16 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+')"
  done
  echo "elapsed ${SECONDS}s"
fi
#   lean     (needs 7bab6be: removed after) rl_cu_mvb variants:
#            RL_CU_MVB_LEAN=1 (56 registers: another kernel's CTA fits
#            beside), 2 (and a 92 KB ring: the next
#            product's CTA too), RL_CU_MVB_DYN=N (tiles from a counter, N
#            stages ahead at most); test_cu_mvb under each, then 7B Q4_0
#            single stream alternating.
if [ "$PART" = lean ]; then
  build
  for v in "0 0" "1 0" "2 0" "0 2" "0 16" "2 2"; do
    set -- $v
    echo "test_cu_mvb LEAN=$1 DYN=$2: $(RL_CU_MVB_LEAN=$1 RL_CU_MVB_DYN=$2 timeout 120 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:' | head -3)"
  done
  for r in 1 2; do
    for v in "0 0" "1 0" "2 0" "0 2" "0 4" "0 16" "2 2" "2 16"; do
      left 560 || break
      set -- $v
      echo "r$r 7B q4_0 LEAN=$1 DYN=$2: $(RL_CU_MVB_LEAN=$1 RL_CU_MVB_DYN=$2 ty llama2-7b q4_0)"
    done
  done
  echo "elapsed ${SECONDS}s"
fi
#   rope     (needs 4634d02..21d26d1: removed after) the RoPE and the KV write
#            in the Q|K|V products' epilogue (rl_cu_mvb_rope_kv; RL_CU_MVB_ROPE=0:
#            the RoPE kernel as before): test_cu_mvb (against the RoPE kernel),
#            the suites, memcheck, then single stream alternating, and the per-op
#            profile (QUICK=1: without the suites and memcheck).
rope_a() { echo "7B q4_0: $(ty llama2-7b q4_0) q4_k_m: $(ty llama2-7b q4_k_m)"; }
rope_b() { echo "7B q8_0: $(ty llama2-7b q8_0) TinyLlama q4_k_m: $(ty tinyllama-1.1b q4_k_m)"; }
if [ "$PART" = rope ]; then
  build
  ctests test_cu_mvb test_cu_mixed test_cu_model
  [ -n "${QUICK:-}" ] || { SUITE_S=240 suites --suite cuda --suite model; SAN_S=120 memcheck test_cu_mvb; }
  alt RL_CU_MVB_ROPE "1 0" 2 470 rope_a
  alt RL_CU_MVB_ROPE "1 0" 1 520 rope_b
  left 550 && echo "profile: $(prof1 'qkv|rope|attention')"
  echo "elapsed ${SECONDS}s"
fi
#   splits   the decode attention's blocks per head at one sequence with the
#            early loads (RL_CU_ATTN_SPLITS; default 9 for 32 heads on 132
#            SMs), 7B and TinyLlama Q4_0 single stream, two rounds.
q4_pair() { echo "7B $(ty llama2-7b q4_0) TinyLlama $(ty tinyllama-1.1b q4_0)"; }
if [ "$PART" = splits ]; then
  build
  alt RL_CU_ATTN_SPLITS "9 5 12 16" 2 540 q4_pair
  echo "elapsed ${SECONDS}s"
fi
#   cluster  (needs 55a2624: removed after) the one-token attention's cluster
#            merge (RL_CU_ATTN_CLUSTER=0: the counted merge over global
#            partials): the tests, memcheck, single stream alternating (fp16
#            and int8 KV), per-op attention.
cluster_b() { echo "int8 KV 7B: $(timeout 90 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 64 --kv q8_0 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+') TinyLlama q4_k_m: $(ty tinyllama-1.1b q4_k_m)"; }
prof_attn() { prof1 attention; }
if [ "$PART" = cluster ]; then
  build
  ctests test_cu_kernels test_cu_paged test_cu_kvq8 test_cu_model
  [ -n "${QUICK:-}" ] || { SUITE_S=240 suites --suite cuda --suite model; SAN_S=150 memcheck test_cu_paged; }
  alt RL_CU_ATTN_CLUSTER "1 0" 2 480 q4_pair
  alt RL_CU_ATTN_CLUSTER "1 0" 1 530 cluster_b
  alt RL_CU_ATTN_CLUSTER "1 0" 1 560 prof_attn
  echo "elapsed ${SECONDS}s"
fi
#   host     the host's part of a step: ids and block tables in one upload
#            (always, since this part), and how the host waits for the step
#            (RL_CU_SYNC=spin|yield|block against the runtime's default).
if [ "$PART" = host ]; then
  build
  ctests test_cu_model test_cu_paged
  [ -n "${QUICK:-}" ] || SUITE_S=240 suites --suite cuda --suite model
  alt RL_CU_SYNC "d spin yield block" 2 520 q4_pair
  echo "elapsed ${SECONDS}s"
fi
#   o8       (needs 72b92fc: removed after) the O product on 8 consumer warps
#            (RL_CU_MVB_O8=1: a CTA of 288 threads, 89 registers, fits beside
#            two attention blocks, so its producer can fill the ring during the
#            attention): test_cu_mvb (both widths), single stream alternating,
#            per-op O.
q4q8() { echo "7B q4_0: $(ty llama2-7b q4_0) q8_0: $(ty llama2-7b q8_0)"; }
kq_pair() { echo "7B q4_k_m: $(ty llama2-7b q4_k_m) TinyLlama q4_k_m: $(ty tinyllama-1.1b q4_k_m)"; }
prof_o() { prof1 'o matvec|attention'; }
if [ "$PART" = o8 ]; then
  build
  ctests test_cu_mvb test_cu_model
  alt RL_CU_MVB_O8 "1 0" 3 500 q4q8
  alt RL_CU_MVB_O8 "1 0" 1 540 kq_pair
  alt RL_CU_MVB_O8 "1 0" 1 565 prof_o
  echo "elapsed ${SECONDS}s"
fi
#   carve    (needs 4467b53's parent: removed after) every kernel asking for
#            the largest shared-memory carveout (RL_CU_CARVEOUT=1), single
#            stream alternating, per-op O.
carve_b() { echo "7B q4_k_m: $(ty llama2-7b q4_k_m) batch 64: $(eng llama2-7b 64 160 q8_0)"; }
if [ "$PART" = carve ]; then
  build
  echo "test_cu_model: $(RL_CU_CARVEOUT=1 timeout 240 $B/tests/cuda/test_cu_model 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  alt RL_CU_CARVEOUT "1 0" 3 480 q4_pair
  alt RL_CU_CARVEOUT "1 0" 1 530 carve_b
  alt RL_CU_CARVEOUT "1 0" 1 565 prof_o
  echo "elapsed ${SECONDS}s"
fi
#   ar       rl_cu_mvb keeping a lane's activation units in registers across
#            tiles (RL_CU_MVB_AR=0: from shared memory each stage as before):
#            the tests, single stream alternating, per-op products. ar2: more
#            rounds of 7B Q4_0 and Q6_K, TinyLlama Q4_K_M. ar3: the final rule
#            (one-chunk rows of two units a lane), the suites, every type.
ar_a() { echo "7B q4_0: $(ty llama2-7b q4_0) q8_0: $(ty llama2-7b q8_0) q4_k_m: $(ty llama2-7b q4_k_m)"; }
ar_b() { echo "TinyLlama q4_k_m: $(ty tinyllama-1.1b q4_k_m) 7B q6_k: $(ty llama2-7b q6_k)"; }
ar_c() { echo "7B q4_0: $(ty llama2-7b q4_0) q6_k: $(ty llama2-7b q6_k) TinyLlama q4_k_m: $(ty tinyllama-1.1b q4_k_m)"; }
ar_d() { echo "$(ar_a) q6_k: $(ty llama2-7b q6_k) TinyLlama q4_k_m: $(ty tinyllama-1.1b q4_k_m)"; }
prof_mv() { prof1 'qkv|o matvec|gate|down'; }
if [ "$PART" = ar ]; then
  build
  ctests test_cu_mvb test_cu_mixed test_cu_model
  [ -n "${QUICK:-}" ] || { SUITE_S=240 suites --suite cuda --suite model; SAN_S=120 memcheck test_cu_mvb; }
  alt RL_CU_MVB_AR "1 0" 2 470 ar_a
  alt RL_CU_MVB_AR "1 0" 1 530 ar_b
  alt RL_CU_MVB_AR "1 0" 1 565 prof_mv
  echo "elapsed ${SECONDS}s"
fi
if [ "$PART" = ar2 ]; then
  build
  alt RL_CU_MVB_AR "1 0" 3 540 ar_c
  echo "elapsed ${SECONDS}s"
fi
if [ "$PART" = ar3 ]; then
  build
  ctests test_cu_mvb test_cu_mixed test_cu_model
  SUITE_S=240 suites --suite cuda --suite model
  alt RL_CU_MVB_AR "1 0" 2 500 ar_d
  left 540 && echo "f16: $(ty llama2-7b f16) TinyLlama q4_0: $(ty tinyllama-1.1b q4_0)"
  left 560 && echo "bench model 7B q4_0: $(mkm llama2-7b Q4_0 7b-q4_0 && benchm 7b-q4_0)"
  echo "elapsed ${SECONDS}s"
fi
#   tl       TinyLlama (2,048 wide) on the mvb step (RL_CU_MVB=1) against the
#            default, Q4_0, Q8_0 and F16; tl2: the automatic choice with
#            F16/BF16 (on rl_cu_mvb at any width since tl) against RL_CU_MVB=0,
#            test_cu_mixed and the suites first.
tl_a() { echo "TinyLlama q4_0: $(ty tinyllama-1.1b q4_0) q8_0: $(ty tinyllama-1.1b q8_0) f16: $(ty tinyllama-1.1b f16)"; }
tl_b() { echo "TinyLlama f16: $(ty tinyllama-1.1b f16) bf16: $(ty tinyllama-1.1b bf16) q4_0: $(ty tinyllama-1.1b q4_0)"; }
if [ "$PART" = tl ]; then
  build
  alt RL_CU_MVB "1 d" 2 540 tl_a
  echo "elapsed ${SECONDS}s"
fi
if [ "$PART" = tl2 ]; then
  build
  ctests test_cu_mixed test_cu_model
  SUITE_S=240 suites --suite cuda --suite model
  alt RL_CU_MVB "d 0" 2 540 tl_b
  echo "elapsed ${SECONDS}s"
fi
#   ck       (needs 8304e7e..: removed after) Q8_0 and Q6_K chunks of 128 units (4 and 3.5 KB row copies; one
#            chunk at 4,096 wide, so the activation units stay in registers;
#            RL_CU_MVB_CK128=1) against 64: test_cu_mvb under both, single
#            stream alternating.
ck_a() { echo "7B q8_0: $(ty llama2-7b q8_0) q6_k: $(ty llama2-7b q6_k) q4_k_m: $(ty llama2-7b q4_k_m)"; }
ck_b() { echo "TinyLlama q8_0 (mvb): $(RL_CU_MVB=1 ty tinyllama-1.1b q8_0) q4_k_m: $(ty tinyllama-1.1b q4_k_m)"; }
if [ "$PART" = ck ]; then
  build
  for v in 1 0; do echo "CK128=$v $(RL_CU_MVB_CK128=$v ctests test_cu_mvb test_cu_mixed)"; done
  alt RL_CU_MVB_CK128 "1 0" 3 500 ck_a
  alt RL_CU_MVB_CK128 "1 0" 1 560 ck_b
  echo "elapsed ${SECONDS}s"
fi
