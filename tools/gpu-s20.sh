#!/bin/bash
# gpu-s20.sh - session 20's device calls; parts marked "needs" ran code that
# was removed after them.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s20.sh PART
# The old tree (.old, carried) is `git archive` of the commit before the change.
T=$(dirname "$0")
. "$T/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
BC=$B/bench/ringlm-bench-cuda
PART=${1:-first}
. "$T/gpu-lib.sh" # left, build, suites, ctests, alt, ty, build_pair, ab, ...
# kv8 SHAPE TYPE: the single stream with the int8 KV cache (tok/s).
kv8() { timeout 90 $BC --shape $1 --type $2 --batch 1 --prompt 512 --gen 64 --kv q8_0 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+' | cut -d: -f2; }
# attp SHAPE TYPE: the single stream's per-op attention and RoPE (us) and sum.
attp() { timeout 90 $BC --shape $1 --type $2 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E "attention|rope|sum" | tr -s ' ' | tr '\n' '|'; }
#   first    (1e21097 + a4f6fcc's Q5_K units + RL_CU_ATTN_ACQREL) session 19's
#            replay check on a GPU; Q5_K units in one shift and a rotation,
#            old tree against new; the split merge's arrival as one
#            acquire-release atomic (RL_CU_ATTN_ACQREL=1) against the fences,
#            alternating; 7B blocks per head; the int8 KV at batch 1; TinyLlama's
#            time to first token (20-token prompt, engine) and per-op profile at 20 rows.
if [ "$PART" = first ]; then
  build_pair
  mkm tinyllama-1.1b q4_0 tl-q4_0
  echo "TTFT 20 tokens: $(timeout 90 $B/bench/ringlm-bench model --model /tmp/rl-models/tl-q4_0.gguf --device cuda --prompt 20 --gen 16 --json 2>/dev/null | grep -oE '"(ttft_ms|ttft_reps)":[0-9.]+' | tr '\n' ' ')"
  timeout 60 $BC --shape tinyllama-1.1b --type q4_0 --batch 20 --prompt 20 --gen 8 --kv f16 --profile 2>&1 | grep -E "profile|us x|sum"
  ctests test_cu_model test_cu_kernels test_cu_paged test_cu_mvb test_cu_mixed
  echo "ACQREL=1: $(RL_CU_ATTN_ACQREL=1 ctests test_cu_kernels test_cu_paged test_cu_kvq8 | tr '\n' ' ')"
  wait
  for r in 1 2; do
    ab 300 llama2-7b q5_k_m
    ab 310 llama2-7b q5_k
  done
  alt RL_CU_ATTN_ACQREL "0 1" 3 380 "ty tinyllama-1.1b q4_0"
  alt RL_CU_ATTN_ACQREL "0 1" 2 430 "ty llama2-7b q4_0"
  for v in 0 1; do left 450 && echo "ACQREL=$v profile TinyLlama: $(RL_CU_ATTN_ACQREL=$v attp tinyllama-1.1b q4_0)"; done
  alt RL_CU_ATTN_SPLITS "d 5 18" 1 490 "ty llama2-7b q4_0"
  left 510 && echo "int8 KV 7B q4_0: $(kv8 llama2-7b q4_0) TinyLlama q4_0: $(kv8 tinyllama-1.1b q4_0)"
  echo "elapsed ${SECONDS}s"
fi
#   second   (needs 62ff8d0: PFG and NOX removed in 9644415; acquire-release merge on by default) the norm's weights
#            prefetched into L1 before the PDL wait in rl_cu_mvb
#            (RL_CU_MVB_PFG), the RoPE kernel's position, angles and cache
#            row before its wait (RL_CU_ROPE_EARLY), each against off,
#            alternating; what preparing the activation costs rl_cu_mvb
#            (RL_CU_MVB_NOX=1: none prepared, wrong results).
if [ "$PART" = second ]; then
  build
  ctests test_cu_kernels test_cu_paged test_cu_kvq8 test_cu_mvb test_cu_mixed test_cu_model
  echo "ROPE_EARLY=0 PFG=0: $(RL_CU_ROPE_EARLY=0 RL_CU_MVB_PFG=0 ctests test_cu_kernels test_cu_paged | tr '\n' ' ')"
  alt RL_CU_MVB_PFG "1 0" 3 250 "ty llama2-7b q4_0"
  alt RL_CU_MVB_PFG "1 0" 2 290 "ty tinyllama-1.1b q4_k_m"
  alt RL_CU_ROPE_EARLY "1 0" 3 340 "ty tinyllama-1.1b q4_0"
  alt RL_CU_ROPE_EARLY "1 0" 2 380 "ty llama2-7b q4_0"
  for v in 1 0; do left 400 && echo "ROPE_EARLY=$v profile TinyLlama: $(RL_CU_ROPE_EARLY=$v attp tinyllama-1.1b q4_0)"; done
  alt RL_CU_MVB_NOX "0 1" 2 450 "ty llama2-7b q4_0"
  left 470 && echo "NOX=1 profile 7B: $(RL_CU_MVB_NOX=1 profT llama2-7b q4_0)"
  left 490 && echo "NOX=0 profile 7B: $(profT llama2-7b q4_0)"
  echo "elapsed ${SECONDS}s"
fi
#   greg     (RL_CU_ROPE_EARLY on by default; PFG and NOX removed) rl_cu_mvb's
#            normed inputs with the norm's weights loaded before the PDL wait
#            and x read once (RL_CU_MVB_GREG) against prepare_x, alternating;
#            the CUDA and model suites; then every type's single stream on the
#            final defaults and the issue's command on a 7B Q4_0 file.
if [ "$PART" = greg ]; then
  build
  ctests test_cu_mvb test_cu_mixed test_cu_model test_cu_kernels
  echo "GREG=0: $(RL_CU_MVB_GREG=0 ctests test_cu_mvb test_cu_mixed | tr '\n' ' ')"
  alt RL_CU_MVB_GREG "1 0" 3 220 "ty llama2-7b q4_0"
  alt RL_CU_MVB_GREG "1 0" 2 260 "ty llama2-7b q4_k_m"
  alt RL_CU_MVB_GREG "1 0" 2 290 "ty tinyllama-1.1b q4_k_m"
  alt RL_CU_MVB_GREG "1 0" 1 310 "ty llama2-7b f16"
  SUITE_S=150 suites --suite cuda --suite model
  for s in "llama2-7b q8_0" "llama2-7b q6_k" "llama2-7b q4_k" "llama2-7b q5_k_m" "tinyllama-1.1b q4_0" "tinyllama-1.1b f16"; do
    left 500 || break
    echo "final $s: $(ty $s)"
  done
  left 500 && mkm llama2-7b q4_0 7b-q4_0 && echo "7B Q4_0 ringlm-bench model: $(benchm 7b-q4_0)"
  echo "elapsed ${SECONDS}s"
fi
# b64 KV: the 7B Q4_0 engine step at batch 64 (tok/s).
b64() { timeout 120 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 64 --kv $1 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+'; }
#   mvbtl    (GREG on by default) TinyLlama Q4_0 and Q8_0 on rl_cu_mvb
#            (RL_CU_MVB=1) against the matvecs (the default below 4,096 wide),
#            alternating; the time to first token (20 tokens, engine); the
#            RoPE's early lookups at batch 64 (int8 KV).
if [ "$PART" = mvbtl ]; then
  build
  alt RL_CU_MVB "d 1" 2 200 "ty tinyllama-1.1b q4_0"
  alt RL_CU_MVB "d 1" 2 240 "ty tinyllama-1.1b q8_0"
  mkm tinyllama-1.1b q4_0 tl-q4_0
  left 280 && echo "TTFT 20 tokens: $(timeout 90 $B/bench/ringlm-bench model --model /tmp/rl-models/tl-q4_0.gguf --device cuda --prompt 20 --gen 16 --json 2>/dev/null | grep -oE '"(ttft_ms|ttft_reps)":[0-9.]+' | tr '\n' ' ')"
  alt RL_CU_ROPE_EARLY "1 0" 1 360 "b64 q8_0"
  echo "elapsed ${SECONDS}s"
fi
#   splits   (final code) TinyLlama Q4_0's blocks per head again (9 by
#            default, 16 forced), alternating; the 7B per-op profiles.
if [ "$PART" = splits ]; then
  build
  alt RL_CU_ATTN_SPLITS "d 16" 3 200 "ty tinyllama-1.1b q4_0"
  for t in q4_0 q4_k_m; do left 300 && echo "profile 7B $t: $(profT llama2-7b $t)"; done
  left 320 && echo "profile TinyLlama q4_0: $(profT tinyllama-1.1b q4_0)"
  echo "elapsed ${SECONDS}s"
fi
# tlb B: TinyLlama Q4_0 at batch B (128-token prompts, 32 generated): tok/s.
tlb() { timeout 90 $BC --shape tinyllama-1.1b --type q4_0 --batch $1 --prompt 128 --gen 32 --kv f16 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+'; }
#   pow2     (needs aea25de: the switch removed after it) the attention's blocks per
#            head rounded up to a power of two against the two-wave count,
#            alternating: the single streams (7B: 16 against 9) and TinyLlama
#            batches 2-8.
if [ "$PART" = pow2 ]; then
  build
  alt RL_CU_ATTN_POW2 "0 1" 3 200 "ty llama2-7b q4_0"
  alt RL_CU_ATTN_POW2 "0 1" 2 220 "ty llama2-7b q4_k_m"
  alt RL_CU_ATTN_POW2 "0 1" 2 240 "ty tinyllama-1.1b q4_0"
  alt RL_CU_ATTN_POW2 "0 1" 2 260 "ty tinyllama-1.1b q4_k_m"
  for b in 2 3 4 8; do left 300 && alt RL_CU_ATTN_POW2 "0 1" 2 300 "tlb $b" | sed "s/^/batch $b /"; done
  echo "elapsed ${SECONDS}s"
fi
# ttftlib: the 20-token prompt's time to first token through libringlm (one
# client, 50 requests against ringlmd on a TinyLlama Q4_0 file): the bench's
# TTFT figures.
ttftlib() {
  mkm tinyllama-1.1b q4_0 tl-q4_0
  local sock=/tmp/rl-ttft.sock; rm -f $sock
  $B/daemon/ringlmd --model /tmp/rl-models/tl-q4_0.gguf --device cuda --socket $sock --max-clients 8 --step-tokens 512 2>"$OUT/ringlmd-ttft.log" &
  local dpid=$! i
  for i in $(seq 1 600); do $B/tools/ringlm --socket $sock info >/dev/null 2>&1 && break; sleep 0.1; done
  timeout 120 $B/bench/ringlm-bench load --socket $sock --clients 1 --requests 50 --prefix 0 --suffix 20 --max-tokens 16 --json 2>>"$OUT/load.err" | grep -oE '"ttft_ms":\{[^}]*\}'
  kill -TERM $dpid; wait $dpid
}
#   pair     (final code + RL_CU_MVB_PAIR) a tile's halves meeting at their
#            two warps' barrier instead of all consumers', alternating; then
#            7B Q4_K_M at batch 4 and the 20-token TTFT through libringlm.
if [ "$PART" = pair ]; then
  build
  echo "PAIR=1: $(RL_CU_MVB_PAIR=1 ctests test_cu_mvb test_cu_mixed test_cu_model | tr '\n' ' ')"
  alt RL_CU_MVB_PAIR "0 1" 3 220 "ty llama2-7b q4_k_m"
  alt RL_CU_MVB_PAIR "0 1" 2 250 "ty llama2-7b q4_0"
  alt RL_CU_MVB_PAIR "0 1" 2 280 "ty llama2-7b q6_k"
  alt RL_CU_MVB_PAIR "0 1" 2 300 "ty tinyllama-1.1b q4_k_m"
  left 320 && echo "7B q4_k_m batch 4: $(tps $BC llama2-7b q4_k_m --batch 4 --prompt 128 --gen 32)"
  left 380 && echo "TTFT through libringlm: $(ttftlib)"
  echo "elapsed ${SECONDS}s"
fi
#   rope     (needs 41197dd: reverted in 8e950d9) the rotating one-token attention (RL_CU_ATTN_ROPE on by
#            default) its bit-for-bit test and the tests it touches, then the
#            single streams against the RoPE kernel (RL_CU_ATTN_ROPE=0),
#            alternating; the suites if time is left.
if [ "$PART" = rope ]; then
  build
  ctests test_cu_attnrope test_cu_kernels test_cu_paged test_cu_kvq8 test_cu_model test_cu_mixed
  alt RL_CU_ATTN_ROPE "1 0" 3 160 "ty tinyllama-1.1b q4_0"
  alt RL_CU_ATTN_ROPE "1 0" 2 180 "ty llama2-7b q4_0"
  alt RL_CU_ATTN_ROPE "1 0" 2 195 "ty tinyllama-1.1b q4_k_m"
  alt RL_CU_ATTN_ROPE "1 0" 1 205 "ty llama2-7b q4_k_m"
  left 215 && echo "profile TinyLlama q4_0: $(profT tinyllama-1.1b q4_0)"
  left 200 && SUITE_S=90 suites --suite cuda --suite model
  echo "elapsed ${SECONDS}s"
fi
#   final    (the final code) the cuda and model suites, the single streams
#            on the final defaults, memcheck on rl_cu_mvb's test.
if [ "$PART" = final ]; then
  build
  SUITE_S=150 suites --suite cuda --suite model
  for s in "llama2-7b q4_0" "llama2-7b q4_k_m" "tinyllama-1.1b q4_0" "tinyllama-1.1b q4_k_m" "llama2-7b q4_0" "tinyllama-1.1b q4_0"; do
    left 230 || break
    echo "final $s: $(ty $s)"
  done
  left 200 && SAN_S=60 memcheck test_cu_mvb
  echo "elapsed ${SECONDS}s"
fi
