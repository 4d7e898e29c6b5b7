#!/bin/bash
# gpu-s31.sh - session 31's device calls (an H200).
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s31.sh PART
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, build_tl, ctests, cfgc, tyc, mkm, ...
PART=${1:-diag}
# tlraw NAME SHAPE TYPE PROMPT GEN: the timeline's summary, and every block's
# record of its replays gzipped into $OUT/raw-NAME.csv.gz (tools/tl_blocks.py reads it).
tlraw() {
  timeout 120 $TLBC --shape $2 --type $3 --batch 1 --prompt $4 --gen $5 --kv f16 --timeline-raw $OUT/raw-$1.csv 2>&1 | grep -vE '^cuda ' | head -30
  gzip -f $OUT/raw-$1.csv
}
# sass: rl_cu_mvb's SASS (every instantiation) gzipped into $OUT/mvb.sass.gz.
sass() { cuobjdump -sass $B/kernels/cuda/librlcuda.a.p/rl_cu_mvb.cu.o 2>&1 | gzip > $OUT/mvb.sass.gz; }
# Each part says at which commit it ran; the measurement switches of the
# earlier parts (RL_CU_MVB_PRE, RL_CU_MVB_XPL, RL_MVB_NO_HIN, RL_MVB_BLOCKS)
# are gone since (docs/PERFORMANCE.md, "Batch 1: the down product's
# activation, and registers that let the next kernel in (session 31)").
#   diag     (ran at 5939a1f) where a product's time goes per CTA (the timeline's block
#            records: start, PDL wait, activation ready, first tile, end),
#            with the producer's copies all issued before the wait (default)
#            and only RL_CU_MVB_PRE stages before the activation is ready;
#            then the plain build's single streams under PRE.
P=("RL_CU_MVB_PRE=-1" "RL_CU_MVB_PRE=0" "RL_CU_MVB_PRE=2" "RL_CU_MVB_PRE=4")
if [ "$PART" = diag ]; then
  build_tl &
  build
  wait
  sass
  RL_CU_MVB_PRE=2 ctests test_cu_mvb
  RL_CU_MVB_PRE=0 ctests test_cu_mvb
  cfgc llama2-7b q4_0 1 128 2 360 "${P[@]}"
  cfgc tinyllama-1.1b q4_0 1 128 1 400 "${P[@]}"
  left 420 && tlraw q4_0 llama2-7b q4_0 1 128
  left 470 && RL_CU_MVB_PRE=2 tlraw q4_0-pre2 llama2-7b q4_0 1 128
  left 520 && tlraw tl-q4_0 tinyllama-1.1b q4_0 1 128
  echo "elapsed ${SECONDS}s"
fi
#   xpl      (ran at 37c7cf7, where the layout was a runtime choice)
#            the int8 activation in two planes of 16-byte halves in shared
#            memory (default now; RL_CU_MVB_XPL=0 the whole 32-byte blocks)
#            and the GLU output handed to the down product as halves
#            (RL_CU_MVB_H16=1): tests under each, the single streams, and
#            the timeline's blocks under each.
X=("RL_CU_MVB_XPL=1" "RL_CU_MVB_XPL=0" "RL_CU_MVB_H16=1")
if [ "$PART" = xpl ]; then
  build_tl &
  build
  wait
  ctests test_cu_mvb
  RL_CU_MVB_XPL=0 ctests test_cu_mvb
  RL_CU_MVB_H16=1 ctests test_cu_model test_cu_mixed
  cfgc llama2-7b q4_0 1 128 2 330 "${X[@]}"
  cfgc llama2-7b q4_k_m 1 128 1 360 "${X[@]}"
  cfgc llama2-7b q8_0 1 128 1 390 "${X[@]}"
  cfgc llama2-7b q4_0 512 64 1 410 "${X[@]}"
  cfgc tinyllama-1.1b q4_k_m 1 128 1 430 "${X[@]}"
  left 480 && tlraw q4_0 llama2-7b q4_0 1 128
  left 530 && RL_CU_MVB_H16=1 tlraw q4_0-h16 llama2-7b q4_0 1 128
  echo "elapsed ${SECONDS}s"
fi
#   ab       (ran at 2f869c0) this tree against the old one (.old: `git archive 322b571`,
#            session 30's kernels) in the same call: the single streams on
#            old, new (the activation's planes) and new with the GLU output
#            handed over as halves (RL_CU_MVB_H16=1).
abc() { # SHAPE TYPE PROMPT GEN: old | new | new H16
  echo "$1 $2 p$3: old $(tycb /tmp/rl-old/bench/ringlm-bench-cuda $@) | new $(tyc $@) | h16 $(RL_CU_MVB_H16=1 tyc $@)"
}
if [ "$PART" = ab ]; then
  build_pair
  wait
  ctests test_cu_mvb
  RL_CU_MVB_H16=1 ctests test_cu_model test_cu_mixed
  for r in 1 2 3; do left 330 && abc llama2-7b q4_0 1 128; done
  left 370 && abc llama2-7b q4_k_m 1 128
  left 410 && abc llama2-7b q8_0 1 128
  left 440 && abc llama2-7b q4_0 512 64
  left 470 && abc tinyllama-1.1b q4_k_m 1 128
  left 500 && abc llama2-7b q6_k 1 128
  left 530 && abc llama2-7b q4_0 1 128
  echo "elapsed ${SECONDS}s"
fi
#   var      (ran at 0d86925) old (322b571), new, and new built without the fp16 input's
#            path (-DRL_MVB_NO_HIN): which part of the change costs the
#            Q4_0 step its 5% (part ab); then new with RL_CU_MVB_H16=1.
build_var() { # NAME CUDA_ARGS: this tree's bench into /tmp/rl-NAME
  meson setup /tmp/rl-$1 -Dbuildtype=release -Dcuda=enabled -Dwerror=false -Dtests=false "-Dcuda_args=$2" >"$OUT/build-$1.log" 2>&1 &&
    ninja -C /tmp/rl-$1 -j16 bench/ringlm-bench-cuda >>"$OUT/build-$1.log" 2>&1 || { echo "build $1 failed"; tail -5 "$OUT/build-$1.log"; }
}
abv() { # SHAPE TYPE PROMPT GEN
  echo "$1 $2 p$3: old $(tycb /tmp/rl-old/bench/ringlm-bench-cuda $@) | new $(tyc $@) | nohin $(tycb /tmp/rl-nohin/bench/ringlm-bench-cuda $@) | h16 $(RL_CU_MVB_H16=1 tyc $@)"
}
if [ "$PART" = var ]; then
  build_var nohin -DRL_MVB_NO_HIN &
  build_pair
  wait
  cuobjdump -sass $B/kernels/cuda/librlcuda.a.p/rl_cu_mvb.cu.o 2>&1 | gzip > $OUT/mvb-new.sass.gz
  cuobjdump -sass /tmp/rl-old/kernels/cuda/librlcuda.a.p/rl_cu_mvb.cu.o 2>&1 | gzip > $OUT/mvb-old.sass.gz
  for r in 1 2 3; do left 400 && abv llama2-7b q4_0 1 128; done
  left 450 && abv llama2-7b q4_0 512 64
  left 500 && abv llama2-7b q4_k_m 1 128
  left 540 && abv llama2-7b q8_0 1 128
  echo "elapsed ${SECONDS}s"
fi
#   blk      (ran at d2dc000) old (322b571) | this tree | this tree with RL_CU_MVB_H16=1 |
#            this tree built with -DRL_MVB_BLOCKS (the activation's whole
#            32-byte blocks, as old) | that with H16: which of the planes and
#            the hand-off's code costs the Q4_0 step (parts ab, var).
abk() { # SHAPE TYPE PROMPT GEN
  local bk=/tmp/rl-blocks/bench/ringlm-bench-cuda
  echo "$1 $2 p$3: old $(tycb /tmp/rl-old/bench/ringlm-bench-cuda $@) | new $(tyc $@) | h16 $(RL_CU_MVB_H16=1 tyc $@) | blocks $(tycb $bk $@) | blocks h16 $(RL_CU_MVB_H16=1 tycb $bk $@)"
}
if [ "$PART" = blk ]; then
  build_var blocks -DRL_MVB_BLOCKS &
  build_pair
  wait
  ctests test_cu_mvb
  for r in 1 2; do left 420 && abk llama2-7b q4_0 1 128; done
  left 480 && abk llama2-7b q8_0 1 128
  left 530 && abk llama2-7b q4_k_m 1 128
  echo "elapsed ${SECONDS}s"
fi
#   reg      (ran at 464a656, where RL_CU_MVB_H16=1 was still needed; the
#            default since) the products held to 88 registers (__maxnreg__, RL_MVB_MAXNREG;
#            the hand-offs compiled apart): old | new | new H16 | held to
#            80 (spills a few words) | that with H16.
abr() { # SHAPE TYPE PROMPT GEN
  local r8=/tmp/rl-r80/bench/ringlm-bench-cuda
  echo "$1 $2 p$3: old $(tycb /tmp/rl-old/bench/ringlm-bench-cuda $@) | new $(tyc $@) | h16 $(RL_CU_MVB_H16=1 tyc $@) | r80 $(tycb $r8 $@) | r80 h16 $(RL_CU_MVB_H16=1 tycb $r8 $@)"
}
if [ "$PART" = reg ]; then
  build_var r80 -DRL_MVB_MAXNREG=80 &
  build_pair
  wait
  ctests test_cu_mvb
  for r in 1 2; do left 260 && abr llama2-7b q4_0 1 128; done
  left 280 && abr llama2-7b q4_k_m 1 128
  left 300 && abr llama2-7b q8_0 1 128
  left 310 && RL_CU_MVB_H16=1 ctests test_cu_model test_cu_mixed
  echo "elapsed ${SECONDS}s"
fi
