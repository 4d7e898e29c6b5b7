#!/bin/bash
# gpu-s26.sh - session 26's device calls.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s26.sh PART
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, suites, ctests, cfgc, tyc, ...
PART=${1:-rope}
# san TOOL TEST CASE: compute-sanitizer TOOL over one Check case of a test.
san() {
  CK_RUN_CASE=$3 timeout ${SAN_S:-150} compute-sanitizer --tool $1 $B/tests/cuda/$2 >"$OUT/$1-$2-$3.log" 2>&1
  echo "$1 $2 ($3): rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$1-$2-$3.log" | tr '\n' ' ')"
}
#   rope     the RoPE and KV write fused into the Q|K|V products
#            (rl_cu_mvb_rope_kv): its test and the models' (default on),
#            racecheck and memcheck over its test case, then the single
#            stream and the engine with RL_CU_MVB_ROPE=0 and 1, alternating.
if [ "$PART" = rope ]; then
  build
  ctests test_cu_mvb test_cu_mixed test_cu_model test_cu_paged
  san racecheck test_cu_mvb rope
  san memcheck test_cu_mvb rope
  cfgc llama2-7b q4_0 1 128 2 330 "RL_CU_MVB_ROPE=0" "RL_CU_MVB_ROPE=1"
  cfgc llama2-7b q4_k_m 1 128 1 360 "RL_CU_MVB_ROPE=0" "RL_CU_MVB_ROPE=1"
  cfgc llama2-7b q4_0 512 64 1 380 "RL_CU_MVB_ROPE=0" "RL_CU_MVB_ROPE=1"
  left 420 && mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do for v in 0 1; do left 540 && echo "r$r ROPE=$v engine 7B Q4_0 p1: $(RL_CU_MVB_ROPE=$v benchm 7b-q4_0 1)"; done; done
  echo "elapsed ${SECONDS}s"
fi
#   rope2    the fused store deferred to the CTA's end (a store per tile
#            measured slower than the RoPE kernel): its test, racecheck (and
#            the racing instructions' SASS), then the session-25 tree (.old)
#            against this one with RL_CU_MVB_ROPE=0 and 1 (pairs on in all).
OLDBC=/tmp/rl-old/bench/ringlm-bench-cuda
sass_at() { # the SASS lines of k_mvb<Q8_0, plain> at the offsets given
  local o f=$(cuobjdump -sass $B/kernels/cuda/librlcuda.a.p/rl_cu_mvb.cu.o 2>/dev/null | awk '/Function : .*k_mvbILi8ELb0E/{p=1} p&&/Function : /&&!/k_mvbILi8ELb0E/{p=0} p')
  for o in "$@"; do echo "$f" | grep -E "/\*0*$o\*/" | head -1; done
}
# orr SHAPE TYPE P G: tyc on the session-25 tree (.old), then this one with
# RL_CU_MVB_ROPE=0 and 1. engr NAME: the engine on both trees, the same way.
orr() { echo "old $(tycb $OLDBC "$@") | rope0 $(RL_CU_MVB_ROPE=0 tyc "$@") | rope1 $(RL_CU_MVB_ROPE=1 tyc "$@")"; }
benchmb() { timeout 90 $1 model --model /tmp/rl-models/$2.gguf --device cuda --prompt ${3:-512} --gen 128 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+' | cut -d: -f2; }
engr() { echo "old $(benchmb /tmp/rl-old/bench/ringlm-bench $1 1) | rope0 $(RL_CU_MVB_ROPE=0 benchmb $B/bench/ringlm-bench $1 1) | rope1 $(RL_CU_MVB_ROPE=1 benchmb $B/bench/ringlm-bench $1 1)"; }
# rr SHAPE TYPE P G: tyc with RL_CU_MVB_ROPE=0 and 1.
rr() { echo "rope0 $(RL_CU_MVB_ROPE=0 tyc "$@") | rope1 $(RL_CU_MVB_ROPE=1 tyc "$@")"; }
# vsold A B C: pairs on; 7B Q4_0 from an empty context (two rounds, until A
# seconds), 7B Q4_K_M (until B) and 7B Q4_0 after 512 tokens (until C), each
# through orr.
vsold() {
  export RL_CU_ATTN_PAIR=1
  local r
  for r in 1 2; do left $1 && echo "r$r 7B q4_0 p1: $(orr llama2-7b q4_0 1 128)"; done
  left $2 && echo "7B q4_k_m p1: $(orr llama2-7b q4_k_m 1 128)"
  left $3 && echo "7B q4_0 p512: $(orr llama2-7b q4_0 512 64)"
}
if [ "$PART" = rope2 ]; then
  build_old & build; wait
  ctests test_cu_mvb
  san racecheck test_cu_mvb rope
  sass_at 8fe0 9010 9030 b2d0 b3d0 b490
  grep -oE 'k_mvb<[^>]*>[^+]*\+0x[0-9a-f]+' "$OUT/racecheck-test_cu_mvb-rope.log" | sed 's/.*+//' | sort | uniq -c | head -20
  vsold 330 380 420
  left 450 && mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do for v in 0 1; do left 540 && echo "r$r ROPE=$v engine 7B Q4_0 p1: $(RL_CU_MVB_ROPE=$v benchm 7b-q4_0 1)"; done; done
  echo "elapsed ${SECONDS}s"
fi
#   rope3    the fused store's 2 KB of shared memory on its launches only
#            (rope2 gave every product 2 KB more): the
#            session-25 tree against this one, RL_CU_MVB_ROPE=0 and 1.
if [ "$PART" = rope3 ]; then
  build_old & build; wait
  ctests test_cu_mvb test_cu_mixed
  vsold 300 340 370
  left 400 && echo "tinyllama q4_k_m p1: $(orr tinyllama-1.1b q4_k_m 1 128)"
  left 420 && mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do for v in 0 1; do left 540 && echo "r$r ROPE=$v engine 7B Q4_0 p1: $(RL_CU_MVB_ROPE=$v benchm 7b-q4_0 1)"; done; done
  echo "elapsed ${SECONDS}s"
fi
#   rope4    the fused store as its own kernel instantiation (ROPE template
#            parameter: plain products compile as before it): tests, then
#            the session-25 tree against this one (single stream and engine).
if [ "$PART" = rope4 ]; then
  build_old & build; wait
  ninja -C /tmp/rl-old -j16 bench/ringlm-bench >>"$OUT/build-old.log" 2>&1 || echo old engine bench build failed
  ctests test_cu_mvb test_cu_mixed test_cu_model
  vsold 300 330 360
  left 400 && mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2 3; do left 530 && echo "r$r engine 7B Q4_0 p1: $(engr 7b-q4_0)"; done
  echo "elapsed ${SECONDS}s"
fi
#   rope5    RoPE's angles through sincospif (no stack frame in the RoPE
#            kernel or the fused products): tests, the session-25 tree
#            against this one with RL_CU_MVB_ROPE=0 and 1, engine, TinyLlama.
if [ "$PART" = rope5 ]; then
  build_old & build; wait
  ninja -C /tmp/rl-old -j16 bench/ringlm-bench >>"$OUT/build-old.log" 2>&1 || echo old engine bench build failed
  ctests test_cu_mvb test_cu_kernels test_cu_mixed test_cu_model test_cu_paged
  vsold 270 300 0 # (it ran the p512 row as: old against the fused store only)
  left 320 && echo "7B q4_0 p512: old $(tycb $OLDBC llama2-7b q4_0 512 64) | rope1 $(tyc llama2-7b q4_0 512 64)"
  left 340 && echo "tinyllama q4_0 p1: old $(tycb $OLDBC tinyllama-1.1b q4_0 1 128) | new $(tyc tinyllama-1.1b q4_0 1 128)"
  left 360 && mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do left 480 && echo "r$r engine 7B Q4_0 p1: $(engr 7b-q4_0)"; done
  left 500 && echo "engine 7B Q4_0 p512: $(benchm 7b-q4_0 512)"
  echo "elapsed ${SECONDS}s"
fi
#   rope6    the fused store after the CTA's last tile only (at most 32
#            tiles a CTA; off by default now): its test and the models'
#            with it on, then RL_CU_MVB_ROPE=0 against 1.
if [ "$PART" = rope6 ]; then
  build
  RL_CU_MVB_ROPE=1 ctests test_cu_mvb test_cu_mixed
  for r in 1 2; do
    left 200 && echo "r$r 7B q4_0 p1: $(rr llama2-7b q4_0 1 128)"
  done
  left 220 && echo "7B q4_k_m p1: $(rr llama2-7b q4_k_m 1 128)"
  left 240 && mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do left 275 && echo "r$r engine 7B Q4_0 p1: $(engr 7b-q4_0 | cut -d'|' -f2-)"; done
  echo "elapsed ${SECONDS}s"
fi
#   rope7    (next session; not run in session 26) the fused store with its
#            lookups and angles in an 18th warp (rope_prep): its test case,
#            racecheck and memcheck over it, RL_CU_MVB_ROPE=0 against 1
#            (single stream, engine), then the timeline of both.
if [ "$PART" = rope7 ]; then
  build & build_tl; wait
  RL_CU_MVB_ROPE=1 ctests test_cu_mvb test_cu_mixed
  san racecheck test_cu_mvb rope
  san memcheck test_cu_mvb rope
  cfgc llama2-7b q4_0 1 128 2 300 "RL_CU_MVB_ROPE=0" "RL_CU_MVB_ROPE=1"
  cfgc llama2-7b q4_k_m 1 128 1 330 "RL_CU_MVB_ROPE=0" "RL_CU_MVB_ROPE=1"
  left 360 && mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do left 420 && echo "r$r engine 7B Q4_0 p1: $(engr 7b-q4_0 | cut -d'|' -f2-)"; done
  left 460 && { echo "== timeline rope0"; RL_CU_MVB_ROPE=0 tl 7b-rope0 llama2-7b q4_0 1 128 | head -30; }
  left 500 && { echo "== timeline rope1"; RL_CU_MVB_ROPE=1 tl 7b-rope1 llama2-7b q4_0 1 128 | head -30; }
  echo "elapsed ${SECONDS}s"
fi
