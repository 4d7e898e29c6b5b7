#!/bin/bash
# gpu-s24.sh - session 24's device calls; parts marked "needs" ran code that
# was removed after them.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s24.sh PART
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, suites, ctests, cfgc, tyc, ...
PART=${1:-fo}
#   fo       (needs df9c987) the O product fused into the attention's launch (RL_CU_ATTN_O,
#            rl_cu_attn_o_paged): its test and the attention's, then the
#            single stream with it off and on, alternating: from an empty
#            context and after 512 tokens; TinyLlama Q4_0 on the rl_cu_mvb
#            step (RL_CU_MVB=1) beside its default matvec step; the model tests.
if [ "$PART" = fo ]; then
  build
  ctests test_cu_attno test_cu_paged
  cfgc llama2-7b q4_0 1 128 2 300 "RL_CU_ATTN_O=0" "RL_CU_ATTN_O=1"
  cfgc llama2-7b q4_0 512 64 1 330 "RL_CU_ATTN_O=0" "RL_CU_ATTN_O=1"
  cfgc tinyllama-1.1b q4_0 1 128 1 370 "RL_CU_MVB=0" "RL_CU_MVB=1 RL_CU_ATTN_O=0" "RL_CU_MVB=1 RL_CU_ATTN_O=1"
  for t in q4_k_m q8_0 q6_k; do cfgc llama2-7b $t 1 128 1 450 "RL_CU_ATTN_O=0" "RL_CU_ATTN_O=1"; done
  cfgc tinyllama-1.1b q4_k_m 1 128 1 480 "RL_CU_ATTN_O=0" "RL_CU_ATTN_O=1"
  left 520 && echo "test_cu_model: $(ctests test_cu_model | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   when     (needs df9c987; ran with RL_CU_ATTO_WHEN / RL_CU_ATTO_SLEEP, measurement
#            switches) why `fo` lost: the O blocks' copies at once, after the
#            PDL wait or after every head's output (no overlap); the
#            counter polled back to back or with a sleep; 7B Q4_0 from an
#            empty context against the unfused step.
if [ "$PART" = when ]; then
  build
  ctests test_cu_attno
  cfgc llama2-7b q4_0 1 128 2 500 "RL_CU_ATTN_O=0" "RL_CU_ATTO_WHEN=0" "RL_CU_ATTO_WHEN=1" "RL_CU_ATTO_WHEN=2" \
    "RL_CU_ATTO_WHEN=0 RL_CU_ATTO_SLEEP=200" "RL_CU_ATTO_WHEN=1 RL_CU_ATTO_SLEEP=200"
  echo "elapsed ${SECONDS}s"
fi
# offon VAR R1 R2 "P G" TLTYPE: VAR=0 against VAR=1, alternating: 7B Q4_0 from
# an empty context (R1 rounds), over a P-token prompt and G generated where
# given, after 512 tokens (R2 rounds), 7B Q4_K_M and Q8_0, TinyLlama TLTYPE.
offon() {
  local v=$1 t
  cfgc llama2-7b q4_0 1 128 $2 300 "$v=0" "$v=1"
  [ -z "$4" ] || cfgc llama2-7b q4_0 $4 1 330 "$v=0" "$v=1"
  cfgc llama2-7b q4_0 512 64 $3 380 "$v=0" "$v=1"
  for t in q4_k_m q8_0; do cfgc llama2-7b $t 1 128 1 460 "$v=0" "$v=1"; done
  cfgc tinyllama-1.1b $5 1 128 1 500 "$v=0" "$v=1"
}
#   cap      (needs 4fa3c5a) the single stream's attention capped at 128 registers
#            (RL_CU_ATTN_REGCAP=1: k_attn_warp<HD, KV, 4>, 126 against 140 for
#            the 7B's fp16 rows of 128), so that one of its blocks fits on an
#            SM beside an rl_cu_mvb CTA (544 threads at 86): off and on,
#            alternating, from an empty context and after 512 tokens.
if [ "$PART" = cap ]; then
  build
  echo "REGCAP=1: $(RL_CU_ATTN_REGCAP=1 ctests test_cu_paged test_cu_kernels | tr '\n' ' ')"
  offon RL_CU_ATTN_REGCAP 3 2 "" q4_0
  echo "elapsed ${SECONDS}s"
fi
#   rope     (needs de23eb6) the rotating one-token attention again (41197dd re-applied on
#            the current kernel), now also capped at 128 registers
#            (RL_CU_ATTN_REGCAP=1) so that its blocks can land beside the
#            Q|K|V product's rl_cu_mvb CTAs and read their rows early:
#            RL_CU_ATTN_ROPE=0 (RoPE kernel, then the attention) against 1,
#            alternating.
if [ "$PART" = rope ]; then
  build
  ctests test_cu_attnrope test_cu_paged
  echo "REGCAP=1: $(RL_CU_ATTN_REGCAP=1 ctests test_cu_attnrope | tr '\n' ' ')"
  cfgc llama2-7b q4_0 1 128 2 300 "RL_CU_ATTN_ROPE=0" "RL_CU_ATTN_ROPE=1" "RL_CU_ATTN_ROPE=1 RL_CU_ATTN_REGCAP=1"
  cfgc llama2-7b q4_0 512 64 1 370 "RL_CU_ATTN_ROPE=0" "RL_CU_ATTN_ROPE=1" "RL_CU_ATTN_ROPE=1 RL_CU_ATTN_REGCAP=1"
  cfgc tinyllama-1.1b q4_0 1 128 1 420 "RL_CU_ATTN_ROPE=0" "RL_CU_ATTN_ROPE=1" "RL_CU_ATTN_ROPE=1 RL_CU_ATTN_REGCAP=1"
  cfgc llama2-7b q4_k_m 1 128 1 480 "RL_CU_ATTN_ROPE=0" "RL_CU_ATTN_ROPE=1" "RL_CU_ATTN_ROPE=1 RL_CU_ATTN_REGCAP=1"
  left 520 && echo "test_cu_model: $(ctests test_cu_model | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   ef       (needs 8058eb3) rl_cu_mvb's weight copies tagged evict-first in L2
#            (RL_CU_MVB_EF=1), so that the KV cache and the activations stay
#            there between steps: off and on, alternating.
if [ "$PART" = ef ]; then
  build
  echo "EF=1: $(RL_CU_MVB_EF=1 ctests test_cu_mvb | tr '\n' ' ')"
  offon RL_CU_MVB_EF 2 1 "1 32" q4_k_m
  echo "elapsed ${SECONDS}s"
fi
OLDBC=/tmp/rl-old/bench/ringlm-bench-cuda
# profA BIN SHAPE TYPE: the argmax and output lines of the per-op profile from an empty context.
profA() { timeout 90 $1 --shape $2 --type $3 --batch 1 --prompt 1 --gen 16 --kv f16 --profile 2>&1 | grep -E "argmax|output|sum" | sed -E 's/ +/ /g' | tr '\n' '|'; }
#   argmax   the greedy argmax reading its row as float4s, 8 a thread in
#            flight (one round trip to L2 for 32,000 logits): the kernels'
#            test, the per-op profile and the single stream, old tree (.old)
#            against new, alternating.
if [ "$PART" = argmax ]; then
  build_pair; wait
  ctests test_cu_kernels
  echo "old: $(profA $OLDBC llama2-7b q4_0)"; echo "new: $(profA $BC llama2-7b q4_0)"
  for r in 1 2 3; do
    left 400 && echo "r$r 7B q4_0 p1: old $(tycb $OLDBC llama2-7b q4_0 1 128) | new $(tyc llama2-7b q4_0 1 128)"
  done
  for r in 1 2; do
    left 470 && echo "r$r TL q4_0 p1: old $(tycb $OLDBC tinyllama-1.1b q4_0 1 128) | new $(tyc tinyllama-1.1b q4_0 1 128)"
  done
  left 520 && echo "7B q4_k_m p1: old $(tycb $OLDBC llama2-7b q4_k_m 1 128) | new $(tyc llama2-7b q4_k_m 1 128)"
  echo "elapsed ${SECONDS}s"
fi
#   final    the session's final code: memcheck over the kernels' test (the
#            argmax), every type's single stream from an empty context and
#            after 512 tokens, the engine on a 7B Q4_0 file, the cuda and
#            model suites.
if [ "$PART" = final ]; then
  build
  mkm llama2-7b Q4_0 7b-q4_0 &
  SAN_S=150 memcheck test_cu_kernels
  alltypes 330
  wait
  for r in 1 2; do
    left 400 && echo "engine r$r p1: $(benchm 7b-q4_0 1) | p512: $(benchm 7b-q4_0)"
  done
  left 430 && SUITE_S=$((585 - SECONDS)) suites --suite cuda --suite model
  echo "elapsed ${SECONDS}s"
fi
#   pdl      (needs d9dab02) each op of the one-sequence rl_cu_mvb step launched without PDL
#            in turn (RL_CU_PDL_OFF, a bitmask of rl_cu_pdl_op's ops: 1
#            embedding, 2 Q|K|V, 4 RoPE, 8 attention, 16 O, 32 gate/up, 64
#            down, 128 output, 256 argmax): 7B Q4_0 from an empty context.
if [ "$PART" = pdl ]; then
  build
  cfgc llama2-7b q4_0 1 128 2 540 "RL_CU_PDL_OFF=0" "RL_CU_PDL_OFF=1" "RL_CU_PDL_OFF=2" "RL_CU_PDL_OFF=4" "RL_CU_PDL_OFF=8" \
    "RL_CU_PDL_OFF=16" "RL_CU_PDL_OFF=32" "RL_CU_PDL_OFF=64" "RL_CU_PDL_OFF=128" "RL_CU_PDL_OFF=256"
  echo "elapsed ${SECONDS}s"
fi
# build_alt "CUDA_ARGS": this tree built again into /tmp/rl-alt with extra
# nvcc arguments (its bench and test_cu_mvb).
build_alt() {
  [ -f /tmp/rl-alt/build.ninja ] || meson setup /tmp/rl-alt -Dbuildtype=release -Dcuda=enabled -Dwerror=false -Dcuda_args="$1" >"$OUT/build-alt.log" 2>&1 || { echo alt setup failed; tail -20 "$OUT/build-alt.log"; return 1; }
  ninja -C /tmp/rl-alt -j16 bench/ringlm-bench-cuda tests/cuda/test_cu_mvb tests/cuda/test_cu_model >>"$OUT/build-alt.log" 2>&1 || { echo alt build failed; grep -E "error|FAILED" "$OUT/build-alt.log" | head; return 1; }
}
ALTBC=/tmp/rl-alt/bench/ringlm-bench-cuda
#   mvb2     (needs 9342764) rl_cu_mvb in a shape two CTAs of which fit on an SM (4 outputs a
#            tile on 8 consumer warps, a 96 KB ring: -DRL_MVB_TR=4
#            -DRL_MVB_RMAX=98304 -DRL_MVB_MINB=2), so that the next
#            product's CTAs land beside the last ones of the one before and
#            fill their rings early: its tests, then the single stream
#            against the default shape, alternating.
if [ "$PART" = mvb2 ]; then
  rm -rf /tmp/rl-alt
  build_alt "-DRL_MVB_TR=4 -DRL_MVB_RMAX=98304 -DRL_MVB_MINB=2" & build; wait
  [ -x $ALTBC ] || exit 1
  echo "alt: $(timeout 120 /tmp/rl-alt/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:' | head -3) $(RL_SHARED_DIR=$PWD/.gpu/shared timeout 200 /tmp/rl-alt/tests/cuda/test_cu_model 2>&1 | grep -E 'Checks|:F:|:E:' | head -3)"
  for r in 1 2; do
    left 330 && echo "r$r 7B q4_0 p1: def $(tyc llama2-7b q4_0 1 128) | alt $(tycb $ALTBC llama2-7b q4_0 1 128)"
  done
  left 370 && echo "7B q4_0 p512: def $(tyc llama2-7b q4_0 512 64) | alt $(tycb $ALTBC llama2-7b q4_0 512 64)"
  for s in "llama2-7b q4_k_m" "llama2-7b q8_0" "tinyllama-1.1b q4_k_m" "llama2-7b f16"; do
    left 500 && echo "$s p1: def $(tyc $s 1 128) | alt $(tycb $ALTBC $s 1 128)"
  done
  echo "elapsed ${SECONDS}s"
fi
