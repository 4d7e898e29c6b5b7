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
OLDBC=/tmp/rl-old/bench/ringlm-bench-cuda
# oldvs "SHAPE TYPE PROMPT GEN" VAR "VALUES": tyc on the old tree's bench,
# then on this one with VAR at each value, on one line.
oldvs() {
  local spec=$1 var=$2 v line="old $(tycb $OLDBC $1)"
  for v in $3; do line="$line | $var=$v $(export $var=$v; tyc $spec)"; done
  echo "$line"
}
#   dmax     (ran with the blocks past a query's chunks leaving before the PDL
#            wait; they leave after it since dmax2) a short context's attention in one block of its head with the
#            in-block merge (RL_CU_ATTN_DMAX chunks at most; the blocks past
#            a query's chunks leave at once): the attention tests (DMAX 0, 1,
#            4), then the single stream against the commit before (.old),
#            alternating, from an empty context and after 512 tokens.
if [ "$PART" = dmax ]; then
  build_pair; wait
  ctests test_cu_paged test_cu_kernels test_cu_kvq8
  for d in 0 4; do echo "DMAX=$d: $(RL_CU_ATTN_DMAX=$d ctests test_cu_paged test_cu_kernels | tr '\n' ' ')"; done
  for r in 1 2; do
    for s in "llama2-7b q4_0" "tinyllama-1.1b q4_0"; do
      left 330 || break
      echo "r$r $s p1: $(oldvs "$s 1 128" RL_CU_ATTN_DMAX "1 2 3")"
    done
  done
  for r in 1 2; do
    for s in "llama2-7b q4_0" "tinyllama-1.1b q4_0" "llama2-7b q4_k_m"; do
      left 470 && echo "r$r $s p512: old $(tycb $OLDBC $s 512 64) | new $(tyc $s 512 64)"
    done
  done
  left 530 && echo "test_cu_model: $(ctests test_cu_model | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   dmax2    (ran with RL_CU_ATTN_EFF and RL_CU_ATTN_IDLE, switches removed after it:
#            IDLE=1 became the code) why the 7B lost in `dmax` (620-623 against 630 from an empty
#            context; the replayed step at 3 chunks 1,607 against 1,584 us
#            with DMAX 1 or 2, so the blocks that leave at once or the count
#            of 3 cost it): RL_CU_ATTN_EFF=0 (every block of the head counts
#            in, as before), RL_CU_ATTN_IDLE=1 (the blocks without chunks
#            leave after the PDL wait), alternating with the old tree.
if [ "$PART" = dmax2 ]; then
  build_pair; wait
  ctests test_cu_paged
  echo "EFF=0 IDLE=1: $(RL_CU_ATTN_EFF=0 RL_CU_ATTN_IDLE=1 ctests test_cu_paged test_cu_kernels | tr '\n' ' ')"
  for r in 1 2; do
    for s in "llama2-7b q4_0" "tinyllama-1.1b q4_0"; do
      left 420 || break
      line="r$r $s p1: old $(tycb $OLDBC $s 1 128)"
      for c in "RL_CU_ATTN_DMAX=1" "RL_CU_ATTN_DMAX=1 RL_CU_ATTN_EFF=0 RL_CU_ATTN_IDLE=1" "RL_CU_ATTN_DMAX=0 RL_CU_ATTN_EFF=0" \
               "RL_CU_ATTN_DMAX=1 RL_CU_ATTN_IDLE=1" "RL_CU_ATTN_DMAX=1 RL_CU_ATTN_EFF=0"; do
        line="$line | [$c] $(export $c; tyc $s 1 128)"
      done
      echo "$line"
    done
  done
  left 500 && echo "7B p512: old $(tycb $OLDBC llama2-7b q4_0 512 64) | [EFF=0 IDLE=1] $(RL_CU_ATTN_EFF=0 RL_CU_ATTN_IDLE=1 tyc llama2-7b q4_0 512 64)"
  echo "elapsed ${SECONDS}s"
fi
#   mvc      (needs 35a9ca2, reverted; ran before the spills were taken out) a layer's gate/up, down and the next Q|K|V (or the output) as one
#            rl_cu_mvc chain (one ring across the three): its test (bit-exact
#            against rl_cu_mvb one by one), spills in its SASS, the suites'
#            CUDA tests; the single stream with RL_CU_MVC=0|1 alternating and
#            the commit before (.old), after 512 tokens and from an empty context.
if [ "$PART" = mvc ]; then
  build_pair; wait
  echo "test_cu_mvc: $(timeout 90 $B/tests/cuda/test_cu_mvc 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  O=$(find $B -name 'rl_cu_mvc.cu.o' | head -1)
  cuobjdump -sass $O > "$OUT/mvc.sass" 2>&1
  awk '/Function : /{f=$3} /STL|LDL/{n[f]++} END{for (k in n) print "spills", k, n[k]}' "$OUT/mvc.sass"
  ctests test_cu_mvb test_cu_model test_cu_mixed
  left 200 && echo "MVC=0 test_cu_model: $(RL_CU_MVC=0 ctests test_cu_model | tr '\n' ' ')"
  for r in 1 2; do
    left 330 && echo "r$r 7B q4_0 p512: old $(tycb $OLDBC llama2-7b q4_0 512 64) | mvc0 $(RL_CU_MVC=0 tyc llama2-7b q4_0 512 64) | mvc1 $(tyc llama2-7b q4_0 512 64)"
  done
  left 370 && echo "7B q4_0 p1: old $(tycb $OLDBC llama2-7b q4_0 1 128) | mvc1 $(tyc llama2-7b q4_0 1 128)"
  for t in q4_k q8_0 q6_k; do
    left 470 && echo "7B $t p512: mvc0 $(RL_CU_MVC=0 tyc llama2-7b $t 512 64) | mvc1 $(tyc llama2-7b $t 512 64)"
  done
  left 520 && SAN_S=60 memcheck test_cu_mvc
  echo "elapsed ${SECONDS}s"
fi
#   mvcb     (needs 35a9ca2, reverted; ran twice: with spills, then DBG 0|1
#            without them) why the chain lost 13 us a layer in `mvc` (7B Q4_0 468 against
#            585 tok/s): ringlm-bench-cuda --mvc (a layer's products on
#            rl_cu_mvb one by one against rl_cu_mvc chains of 1, 2, 3), with
#            RL_CU_MVC_DBG 1 (no counter wait: timing only), 2 (activation
#            units from shared memory), 3.
if [ "$PART" = mvcb ]; then
  build
  for d in 0 1 2 3; do
    for t in q4_0 q8_0; do left 300 && echo "DBG=$d $t: $(RL_CU_MVC_DBG=$d timeout 120 $BC --mvc --shape llama2-7b --type $t | tr '\n' ' ')"; done
  done
  left 360 && echo "TL q4_0: $(timeout 120 $BC --mvc --shape tinyllama-1.1b --type q4_0 | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   final    the final code: memcheck over the attention tests, every type's
#            single stream from an empty context (128 generated) and after
#            512 tokens (64), the cuda and model suites.
if [ "$PART" = final ]; then
  build
  SAN_S=90 memcheck test_cu_paged
  alltypes 330
  left 380 && SUITE_S=$((585 - SECONDS)) suites --suite cuda --suite model
  echo "elapsed ${SECONDS}s"
fi
#   engine   ringlm-bench model (the engine) on a ringlm-mkmodel 7B Q4_0 file:
#            generation from a 1-token prompt and after a 512-token one.
if [ "$PART" = engine ]; then
  build
  mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do
    echo "r$r p1: $(benchm 7b-q4_0 1) | p512: $(benchm 7b-q4_0)"
  done
  echo "elapsed ${SECONDS}s"
fi
#   p1sw     the final code's switches from an empty context (tg128): attention
#            splits, two chunks in one block, O on rl_cu_mvb, early rows.
if [ "$PART" = p1sw ]; then
  build
  cfgc llama2-7b q4_0 1 128 2 330 "RL_CU_X=0" "RL_CU_ATTN_SPLITS=3" "RL_CU_ATTN_SPLITS=5" "RL_CU_ATTN_DMAX=2" "RL_CU_MVB_O=1" "RL_CU_ATTN_SPLITS=13"
  cfgc tinyllama-1.1b q4_0 1 128 1 420 "RL_CU_X=0" "RL_CU_ATTN_SPLITS=3" "RL_CU_ATTN_SPLITS=5" "RL_CU_ATTN_DMAX=2" "RL_CU_ATTN_SPLITS=13"
  cfgc llama2-7b q4_0 512 64 1 500 "RL_CU_X=0" "RL_CU_ATTN_SPLITS=5" "RL_CU_ATTN_SPLITS=13"
  echo "elapsed ${SECONDS}s"
fi
#   long     longer contexts: the default 9 attention blocks a head (one
#            chunk of 64 positions each up to 576) against enough blocks for
#            one chunk each (RL_CU_ATTN_SPLITS), after 1,024 and 2,000 tokens.
if [ "$PART" = long ]; then
  build
  cfgc llama2-7b q4_0 1024 64 1 200 "RL_CU_X=0" "RL_CU_ATTN_SPLITS=17" "RL_CU_ATTN_SPLITS=32"
  cfgc llama2-7b q4_0 2000 64 1 300 "RL_CU_X=0" "RL_CU_ATTN_SPLITS=32"
  cfgc tinyllama-1.1b q4_0 2000 64 1 360 "RL_CU_X=0" "RL_CU_ATTN_SPLITS=32"
  cfgc llama2-7b q4_0 512 128 2 480 "RL_CU_X=0" "RL_CU_ATTN_SPLITS=11" "RL_CU_ATTN_SPLITS=16"
  echo "elapsed ${SECONDS}s"
fi
#   mvpre    (needs 2f4b01a, reverted) does the matvec's early start
#            (L2 prefetch and first-round loads before the PDL wait) slow the
#            attention before it? PRE 2 (default), 1 (prefetch only), 0
#            (nothing early), against the old tree.
if [ "$PART" = mvpre ]; then
  build_pair; wait
  for r in 1 2; do
    for s in "llama2-7b q4_0 1 128" "tinyllama-1.1b q4_0 1 128" "tinyllama-1.1b q4_0 512 64" "llama2-7b q4_0 512 64"; do
      left 420 || break
      echo "r$r $s: $(oldvs "$s" RL_CU_MV_PRE "2 1 0")"
    done
  done
  left 480 && echo "PRE=0 kernels: $(RL_CU_MV_PRE=0 ctests test_cu_kernels | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   review   the closing review's mends (the early-row condition from nch):
#            the attention tests and the model test, one single stream.
if [ "$PART" = review ]; then
  build
  ctests test_cu_paged test_cu_kernels test_cu_kvq8 test_cu_model
  left 300 && echo "7B q4_0 p1: $(tyc llama2-7b q4_0 1 128)"
  echo "elapsed ${SECONDS}s"
fi
