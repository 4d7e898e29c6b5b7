#!/bin/bash
# gpu-s18.sh - the device calls prepared for session 18 (written at the end of
# session 17, after its device time ran out).
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s18.sh PART
T=$(dirname "$0")
. "$T/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
BC=$B/bench/ringlm-bench-cuda
PART=${1:-check}
. "$T/gpu-lib.sh" # left, build, suites, ncu_attn, eng, prof, ty, memcheck, mkm, benchm, load1, products
#   check    what session 17 wrote after its last device call: the shared
#            int8-plane check in test_cu_kernels, test_cu_mm, test_cu_mmq and
#            test_cu_prefill, test_cu_mixed's Q4_K_M file with F32 matrices on
#            the forced mvb step, the automatic choice's every-matrix rule;
#            then the cuda and model suites and single stream on the final code.
if [ "$PART" = check ]; then
  build
  for t in test_cu_kernels test_cu_mm test_cu_mmq test_cu_prefill test_cu_mixed; do
    echo "$t: $(timeout 240 $B/tests/cuda/$t 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  done
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
#   lean     (needs 7bab6be: the variants were removed after it) rl_cu_mvb variants (session 18): RL_CU_MVB_LEAN=1 (56 registers:
#            another kernel's CTA fits beside), 2 (and a 92 KB ring: the next
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
#   rope     (needs 4634d02..21d26d1: removed after) the RoPE and the KV write in the Q|K|V products' epilogue
#            (rl_cu_mvb_rope_kv; RL_CU_MVB_ROPE=0: the RoPE kernel as before):
#            test_cu_mvb (against the RoPE kernel), the suites, memcheck, then
#            single stream alternating, and the per-op profile (ROPE_QUICK=1:
#            without the suites and memcheck; rope2: the epilogue reading only
#            shared memory, angles and pool rows set up once per CTA).
if [ "$PART" = rope ]; then
  build
  for t in test_cu_mvb test_cu_mixed test_cu_model; do
    echo "$t: $(timeout 240 $B/tests/cuda/$t 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  done
  [ -n "$ROPE_QUICK" ] || { SUITE_S=240 suites --suite cuda --suite model; SAN_S=120 memcheck test_cu_mvb; }
  for r in 1 2; do
    for v in 1 0; do
      left 470 || break
      echo "r$r ROPE=$v 7B q4_0: $(RL_CU_MVB_ROPE=$v ty llama2-7b q4_0) q4_k_m: $(RL_CU_MVB_ROPE=$v ty llama2-7b q4_k_m)"
    done
  done
  for v in 1 0; do
    left 520 || break
    echo "ROPE=$v 7B q8_0: $(RL_CU_MVB_ROPE=$v ty llama2-7b q8_0) TinyLlama q4_k_m: $(RL_CU_MVB_ROPE=$v ty tinyllama-1.1b q4_k_m)"
  done
  left 550 && echo "profile: $(timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E 'qkv|rope|attention|sum' | tr -s ' ' | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   splits   the decode attention's blocks per head at one sequence with the
#            early loads (RL_CU_ATTN_SPLITS; default 9 for 32 heads on 132
#            SMs), 7B and TinyLlama Q4_0 single stream, two rounds.
if [ "$PART" = splits ]; then
  build
  for r in 1 2; do
    for sp in 9 5 12 16; do
      left 540 || break
      echo "r$r splits $sp: 7B $(RL_CU_ATTN_SPLITS=$sp ty llama2-7b q4_0) TinyLlama $(RL_CU_ATTN_SPLITS=$sp ty tinyllama-1.1b q4_0)"
    done
  done
  echo "elapsed ${SECONDS}s"
fi
#   cluster  the one-token attention's cluster merge (RL_CU_ATTN_CLUSTER=0:
#            the counted merge over global partials): the tests, memcheck,
#            single stream alternating (fp16 and int8 KV), per-op attention.
if [ "$PART" = cluster ]; then
  build
  for t in test_cu_kernels test_cu_paged test_cu_kvq8 test_cu_model; do
    echo "$t: $(timeout 240 $B/tests/cuda/$t 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  done
  [ -n "${QUICK:-}" ] || { SUITE_S=240 suites --suite cuda --suite model; SAN_S=150 memcheck test_cu_paged; }
  for r in 1 2; do
    for v in 1 0; do
      left 480 || break
      echo "r$r CLUSTER=$v 7B: $(RL_CU_ATTN_CLUSTER=$v ty llama2-7b q4_0) TinyLlama: $(RL_CU_ATTN_CLUSTER=$v ty tinyllama-1.1b q4_0)"
    done
  done
  for v in 1 0; do
    left 530 || break
    echo "CLUSTER=$v int8 KV 7B: $(RL_CU_ATTN_CLUSTER=$v timeout 90 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 64 --kv q8_0 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+') TinyLlama q4_k_m: $(RL_CU_ATTN_CLUSTER=$v ty tinyllama-1.1b q4_k_m)"
  done
  for v in 1 0; do
    left 560 || break
    echo "CLUSTER=$v profile: $(RL_CU_ATTN_CLUSTER=$v timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E 'attention|sum' | tr -s ' ' | tr '\n' ' ')"
  done
  echo "elapsed ${SECONDS}s"
fi
#   host     the host's part of a step: ids and block tables in one upload
#            (always, since this part), and how the host waits for the step
#            (RL_CU_SYNC=spin|yield|block against the runtime's default),
#            single stream and the 20-token TTFT through the engine.
if [ "$PART" = host ]; then
  build
  for t in test_cu_model test_cu_paged; do
    echo "$t: $(timeout 240 $B/tests/cuda/$t 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  done
  [ -n "${QUICK:-}" ] || SUITE_S=240 suites --suite cuda --suite model
  for r in 1 2; do
    for v in default spin yield block; do
      left 520 || break
      if [ $v = default ]; then unset RL_CU_SYNC; else export RL_CU_SYNC=$v; fi
      echo "r$r SYNC=$v 7B: $(ty llama2-7b q4_0) TinyLlama: $(ty tinyllama-1.1b q4_0)"
    done
  done
  unset RL_CU_SYNC
  echo "elapsed ${SECONDS}s"
fi
#   o8       the O product on 8 consumer warps (RL_CU_MVB_O8=1: a CTA of 288
#            threads, 89 registers, fits beside two attention blocks, so its
#            producer can fill the ring during the attention): test_cu_mvb
#            (both widths), single stream alternating, per-op O.
if [ "$PART" = o8 ]; then
  build
  for t in test_cu_mvb test_cu_model; do
    echo "$t: $(timeout 240 $B/tests/cuda/$t 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  done
  for r in 1 2 3; do
    for v in 1 0; do
      left 500 || break
      echo "r$r O8=$v 7B: $(RL_CU_MVB_O8=$v ty llama2-7b q4_0) q8_0: $(RL_CU_MVB_O8=$v ty llama2-7b q8_0)"
    done
  done
  for v in 1 0; do
    left 540 || break
    echo "O8=$v 7B q4_k_m: $(RL_CU_MVB_O8=$v ty llama2-7b q4_k_m) TinyLlama q4_k_m: $(RL_CU_MVB_O8=$v ty tinyllama-1.1b q4_k_m)"
  done
  for v in 1 0; do
    left 565 || break
    echo "O8=$v profile: $(RL_CU_MVB_O8=$v timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E 'o matvec|attention|sum' | tr -s ' ' | tr '\n' ' ')"
  done
  echo "elapsed ${SECONDS}s"
fi
#   carve    every kernel asking for the largest shared-memory carveout
#            (RL_CU_CARVEOUT=1), single stream alternating, per-op O.
if [ "$PART" = carve ]; then
  build
  echo "test_cu_model: $(RL_CU_CARVEOUT=1 timeout 240 $B/tests/cuda/test_cu_model 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  for r in 1 2 3; do
    for v in 1 0; do
      left 480 || break
      echo "r$r CARVE=$v 7B: $(RL_CU_CARVEOUT=$v ty llama2-7b q4_0) TinyLlama: $(RL_CU_CARVEOUT=$v ty tinyllama-1.1b q4_0)"
    done
  done
  for v in 1 0; do
    left 530 || break
    echo "CARVE=$v 7B q4_k_m: $(RL_CU_CARVEOUT=$v ty llama2-7b q4_k_m) batch 64: $(RL_CU_CARVEOUT=$v eng llama2-7b 64 160 q8_0)"
  done
  for v in 1 0; do
    left 565 || break
    echo "CARVE=$v profile: $(RL_CU_CARVEOUT=$v timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E 'o matvec|attention|sum' | tr -s ' ' | tr '\n' ' ')"
  done
  echo "elapsed ${SECONDS}s"
fi
#   ar       rl_cu_mvb keeping a lane's activation units in registers across
#            tiles (RL_CU_MVB_AR=0: from shared memory each stage as before):
#            the tests, single stream alternating, per-op products.
if [ "$PART" = ar ]; then
  build
  for t in test_cu_mvb test_cu_mixed test_cu_model; do
    echo "$t: $(timeout 240 $B/tests/cuda/$t 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  done
  [ -n "${QUICK:-}" ] || { SUITE_S=240 suites --suite cuda --suite model; SAN_S=120 memcheck test_cu_mvb; }
  for r in 1 2; do
    for v in 1 0; do
      left 470 || break
      echo "r$r AR=$v 7B q4_0: $(RL_CU_MVB_AR=$v ty llama2-7b q4_0) q8_0: $(RL_CU_MVB_AR=$v ty llama2-7b q8_0) q4_k_m: $(RL_CU_MVB_AR=$v ty llama2-7b q4_k_m)"
    done
  done
  for v in 1 0; do
    left 530 || break
    echo "AR=$v TinyLlama q4_k_m: $(RL_CU_MVB_AR=$v ty tinyllama-1.1b q4_k_m) 7B q6_k: $(RL_CU_MVB_AR=$v ty llama2-7b q6_k)"
  done
  for v in 1 0; do
    left 565 || break
    echo "AR=$v profile: $(RL_CU_MVB_AR=$v timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E 'qkv|o matvec|gate|down|sum' | tr -s ' ' | tr '\n' ' ')"
  done
  echo "elapsed ${SECONDS}s"
fi
#   ar2      more rounds of `ar`'s single stream: 7B Q4_0 and Q6_K, TinyLlama
#            Q4_K_M, alternating.
if [ "$PART" = ar2 ]; then
  build
  for r in 1 2 3; do
    for v in 1 0; do
      left 540 || break
      echo "r$r AR=$v 7B q4_0: $(RL_CU_MVB_AR=$v ty llama2-7b q4_0) q6_k: $(RL_CU_MVB_AR=$v ty llama2-7b q6_k) TinyLlama q4_k_m: $(RL_CU_MVB_AR=$v ty tinyllama-1.1b q4_k_m)"
    done
  done
  echo "elapsed ${SECONDS}s"
fi
#   ar3      the final rule (registers only for one-chunk rows of two units a
#            lane): test_cu_mvb, test_cu_mixed, test_cu_model, the suites,
#            then single stream of every type alternating with RL_CU_MVB_AR=0.
if [ "$PART" = ar3 ]; then
  build
  for t in test_cu_mvb test_cu_mixed test_cu_model; do
    echo "$t: $(timeout 240 $B/tests/cuda/$t 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  done
  SUITE_S=240 suites --suite cuda --suite model
  for r in 1 2; do
    for v in 1 0; do
      left 500 || break
      echo "r$r AR=$v 7B q4_0: $(RL_CU_MVB_AR=$v ty llama2-7b q4_0) q4_k_m: $(RL_CU_MVB_AR=$v ty llama2-7b q4_k_m) q6_k: $(RL_CU_MVB_AR=$v ty llama2-7b q6_k) q8_0: $(RL_CU_MVB_AR=$v ty llama2-7b q8_0) TinyLlama q4_k_m: $(RL_CU_MVB_AR=$v ty tinyllama-1.1b q4_k_m)"
    done
  done
  left 540 && echo "f16: $(ty llama2-7b f16) TinyLlama q4_0: $(ty tinyllama-1.1b q4_0)"
  left 560 && echo "bench model 7B q4_0: $(mkm llama2-7b Q4_0 7b-q4_0 && benchm 7b-q4_0)"
  echo "elapsed ${SECONDS}s"
fi
#   tl       TinyLlama (2,048 wide) on the mvb step now (RL_CU_MVB=1) against
#            the default matvec step, Q4_0, Q8_0 and F16, alternating.
if [ "$PART" = tl ]; then
  build
  for r in 1 2; do
    for v in 1 d; do
      left 540 || break
      if [ $v = d ]; then unset RL_CU_MVB; else export RL_CU_MVB=1; fi
      echo "r$r MVB=$v TinyLlama q4_0: $(ty tinyllama-1.1b q4_0) q8_0: $(ty tinyllama-1.1b q8_0) f16: $(ty tinyllama-1.1b f16)"
    done
  done
  unset RL_CU_MVB
  echo "elapsed ${SECONDS}s"
fi
#   tl2      the automatic choice with F16/BF16 (now on rl_cu_mvb at any
#            width): test_cu_mixed, the suites, TinyLlama F16 / BF16 default
#            against RL_CU_MVB=0, Q4_0 stays on the matvecs.
if [ "$PART" = tl2 ]; then
  build
  for t in test_cu_mixed test_cu_model; do
    echo "$t: $(timeout 240 $B/tests/cuda/$t 2>&1 | grep -E 'Checks|:F:|:E:' | head -4)"
  done
  SUITE_S=240 suites --suite cuda --suite model
  for r in 1 2; do
    for v in d 0; do
      left 540 || break
      if [ $v = d ]; then unset RL_CU_MVB; else export RL_CU_MVB=0; fi
      echo "r$r MVB=$v TinyLlama f16: $(ty tinyllama-1.1b f16) bf16: $(ty tinyllama-1.1b bf16) q4_0: $(ty tinyllama-1.1b q4_0)"
    done
  done
  unset RL_CU_MVB
  echo "elapsed ${SECONDS}s"
fi
