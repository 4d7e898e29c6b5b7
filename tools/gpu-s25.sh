#!/bin/bash
# gpu-s25.sh - session 25's device calls; parts marked "needs" ran code that
# was removed after them.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s25.sh PART
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, suites, ctests, cfgc, tyc, ...
PART=${1:-tl}
# offon4 VAR D: VAR=0 against VAR=1, alternating: 7B Q4_0 from an empty
# context (three rounds), TinyLlama Q4_0 (two), 7B Q4_0 after 512 tokens and
# 7B Q4_K_M (one each), until 380, 430 + D, 460 + D and 490 + D seconds;
# then test_cu_model.
offon4() {
  local v=$1 d=$2
  cfgc llama2-7b q4_0 1 128 3 380 "$v=0" "$v=1"
  cfgc tinyllama-1.1b q4_0 1 128 2 $((430 + d)) "$v=0" "$v=1"
  cfgc llama2-7b q4_0 512 64 1 $((460 + d)) "$v=0" "$v=1"
  cfgc llama2-7b q4_k_m 1 128 1 $((490 + d)) "$v=0" "$v=1"
  left 530 && echo "test_cu_model: $(ctests test_cu_model | tr '\n' ' ')"
}
#   tl       the step timeline (rl_cu_tl.cuh) of the single stream: the
#            timeline build against the plain one (what recording costs),
#            then 7B Q4_0 from an empty context and after 512 tokens,
#            TinyLlama Q4_0 and 7B Q4_K_M from an empty context.
if [ "$PART" = tl ]; then
  build_tl & build; wait
  [ -x $TLBC ] || exit 1
  echo "7B q4_0 p1: plain $(tyc llama2-7b q4_0 1 128) | timeline build $(tycb $TLBC llama2-7b q4_0 1 128)"
  echo "== 7B q4_0 p1"; tl 7b-p1 llama2-7b q4_0 1 128
  left 330 && { echo "== 7B q4_0 p512"; tl 7b-p512 llama2-7b q4_0 512 64; }
  left 400 && { echo "== TinyLlama q4_0 p1"; tl tiny-p1 tinyllama-1.1b q4_0 1 128; }
  left 450 && { echo "== 7B q4_k_m p1"; tl 7bkm-p1 llama2-7b q4_k_m 1 128; }
  echo "elapsed ${SECONDS}s"
fi
#   tl2      the same timelines, each replay recorded on its own (`tl` merged
#            the four replays of one graph: its kernels keep their %gridid).
if [ "$PART" = tl2 ]; then
  build_tl || exit 1
  echo "== 7B q4_0 p1"; tl 7b-p1 llama2-7b q4_0 1 128
  left 330 && { echo "== 7B q4_0 p512"; tl 7b-p512 llama2-7b q4_0 512 64; }
  left 400 && { echo "== TinyLlama q4_0 p1"; tl tiny-p1 tinyllama-1.1b q4_0 1 128; }
  left 450 && { echo "== 7B q4_k_m p1"; tl 7bkm-p1 llama2-7b q4_k_m 1 128; }
  echo "elapsed ${SECONDS}s"
fi
#   tl3      timelines with the kernels' marks (the attention's stages, the
#            rl_cu_mvb activation and first tile) at a context of one chunk
#            (57 positions), two (109) and ten (584): 7B Q4_0, TinyLlama Q4_0.
if [ "$PART" = tl3 ]; then
  build_tl || exit 1
  for a in "7b-c57 llama2-7b q4_0 1 48" "7b-c109 llama2-7b q4_0 1 100" "7b-c584 llama2-7b q4_0 512 64" \
           "tiny-c57 tinyllama-1.1b q4_0 1 48" "tiny-c109 tinyllama-1.1b q4_0 1 100"; do
    left 400 && { echo "== $a"; tl $a; }
  done
  echo "elapsed ${SECONDS}s"
fi
#   runs     the attention's first KV block kept from before the PDL wait
#            (RL_CU_ATTN_RUNS, default on) against looked up again: the
#            attention's tests, the timeline at 57 and 109 positions, then
#            the single stream off and on, alternating.
if [ "$PART" = runs ]; then
  build_tl & build; wait
  ctests test_cu_paged test_cu_kernels test_cu_kvq8
  for v in 0 1; do
    for a in "7b-c57-r$v llama2-7b q4_0 1 48" "7b-c109-r$v llama2-7b q4_0 1 100"; do
      echo "== RUNS=$v $a"; RL_CU_ATTN_RUNS=$v tl $a | grep -E "^timeline|^attn|^matvec \(attn"
    done
  done
  offon4 RL_CU_ATTN_RUNS 10
  echo "elapsed ${SECONDS}s"
fi
#   pair     two-chunk queries merged in a cluster of two attention blocks
#            (RL_CU_ATTN_PAIR, default on) against the counted merge: the
#            attention's tests both ways, the timeline at 109 positions
#            both ways, then the single stream off and on, alternating.
if [ "$PART" = pair ]; then
  build_tl & build; wait
  for v in 0 1; do echo "PAIR=$v: $(RL_CU_ATTN_PAIR=$v ctests test_cu_paged test_cu_kernels test_cu_kvq8 | tr '\n' ' ')"; done
  for v in 0 1; do
    echo "== PAIR=$v c109"; RL_CU_ATTN_PAIR=$v tl 7b-c109-p$v llama2-7b q4_0 1 100 | grep -E "^timeline|^attn|^matvec \(attn"
  done
  offon4 RL_CU_ATTN_PAIR 0
  echo "elapsed ${SECONDS}s"
fi
#   final    the final code: the engine on a 7B Q4_0 file (the issue's
#            measure: a 1-token prompt, 128 generated; then 512 tokens),
#            then every type's single stream from an empty context and
#            after 512 tokens.
if [ "$PART" = final ]; then
  build
  mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do echo "engine 7B Q4_0 p1 r$r: $(benchm 7b-q4_0 1)"; done
  echo "engine 7B Q4_0 p512: $(benchm 7b-q4_0 512)"
  alltypes 560
  echo "elapsed ${SECONDS}s"
fi
#   checks   the cuda and model suites, memcheck and racecheck over the
#            paged attention's test (the cluster merge).
if [ "$PART" = checks ]; then
  build
  suites --suite cuda --suite model
  memcheck test_cu_paged
  timeout 200 compute-sanitizer --tool racecheck $B/tests/cuda/test_cu_paged >"$OUT/race.log" 2>&1
  echo "racecheck test_cu_paged: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|hazard' "$OUT/race.log" | head -3 | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   rows     the embedding row gathered four values a thread (RL_CU_ROWS_VEC,
#            default on) against a 32-block a thread: the kernels' and
#            paged attention's tests, the timeline's step start both ways,
#            the engine on the 7B Q4_0 file both ways, alternating.
if [ "$PART" = rows ]; then
  build_tl & build; wait
  ctests test_cu_kernels test_cu_paged
  for v in 0 1; do echo "ROWS_VEC=$v: $(RL_CU_ROWS_VEC=$v tl 7b-c57-v$v llama2-7b q4_0 1 48 | grep -E '^timeline|get_rows')"; done
  mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do for v in 0 1; do left 450 && echo "r$r ROWS_VEC=$v engine 7B Q4_0 p1: $(RL_CU_ROWS_VEC=$v benchm 7b-q4_0 1)"; done; done
  cfgc tinyllama-1.1b q4_0 1 128 1 520 "RL_CU_ROWS_VEC=0" "RL_CU_ROWS_VEC=1"
  echo "elapsed ${SECONDS}s"
fi
#   knobs    (no code change) the single stream's attention blocks a head
#            (RL_CU_ATTN_SPLITS; pairs round it up to even) and two chunks
#            in one block (RL_CU_ATTN_DMAX=2) against the defaults, 7B Q4_0
#            from an empty context, then TinyLlama with the best ones.
if [ "$PART" = knobs ]; then
  build
  cfgc llama2-7b q4_0 1 128 2 200 "RL_CU_ATTN_PAIR=1" "RL_CU_ATTN_SPLITS=4" "RL_CU_ATTN_SPLITS=6" "RL_CU_ATTN_SPLITS=8" \
    "RL_CU_ATTN_SPLITS=12" "RL_CU_ATTN_SPLITS=16" "RL_CU_ATTN_DMAX=2"
  cfgc tinyllama-1.1b q4_0 1 128 1 240 "RL_CU_ATTN_PAIR=1" "RL_CU_ATTN_SPLITS=6" "RL_CU_ATTN_SPLITS=12" "RL_CU_ATTN_SPLITS=16"
  echo "elapsed ${SECONDS}s"
fi
#   verify   (not run in session 25: no device time left) the attention pairs
#            as committed last (a cluster barrier before the write into the
#            first block; off by default): test_cu_paged (forces them on),
#            racecheck over it, then the single stream and the engine with
#            RL_CU_ATTN_PAIR=0 and 1, alternating; if all hold, turn them on.
if [ "$PART" = verify ]; then
  build
  ctests test_cu_paged test_cu_kernels
  timeout 200 compute-sanitizer --tool racecheck $B/tests/cuda/test_cu_paged >"$OUT/race.log" 2>&1
  echo "racecheck test_cu_paged: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/race.log" | head -3 | tr '\n' ' ')"
  RL_CU_ATTN_PAIR=1 memcheck test_cu_paged
  cfgc llama2-7b q4_0 1 128 2 300 "RL_CU_ATTN_PAIR=0" "RL_CU_ATTN_PAIR=1"
  cfgc tinyllama-1.1b q4_0 1 128 2 340 "RL_CU_ATTN_PAIR=0" "RL_CU_ATTN_PAIR=1"
  mkm llama2-7b Q4_0 7b-q4_0
  for r in 1 2; do for v in 0 1; do left 520 && echo "r$r PAIR=$v engine 7B Q4_0 p1: $(RL_CU_ATTN_PAIR=$v benchm 7b-q4_0 1)"; done; done
  left 560 && echo "test_cu_model PAIR=1: $(RL_CU_ATTN_PAIR=1 ctests test_cu_model | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
