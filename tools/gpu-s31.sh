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
# abx VAR SHAPE TYPE PROMPT GEN: the single stream (tyc) on the old tree,
# this one with floats handed to the down product, this one with halves,
# and (VAR not empty) a build_var build both ways; one line.
abx() {
  local v=$1; shift
  local o=/tmp/rl-old/bench/ringlm-bench-cuda vb=/tmp/rl-$v/bench/ringlm-bench-cuda
  local line="$1 $2 p$3: old $(tycb $o $@) | new $(RL_CU_MVB_H16=0 tyc $@) | h16 $(RL_CU_MVB_H16=1 tyc $@)"
  [ -z "$v" ] || line="$line | $v $(RL_CU_MVB_H16=0 tycb $vb $@) | $v h16 $(RL_CU_MVB_H16=1 tycb $vb $@)"
  echo "$line"
}
# build_var NAME CUDA_ARGS: this tree's bench built with CUDA_ARGS into /tmp/rl-NAME.
build_var() {
  meson setup /tmp/rl-$1 -Dbuildtype=release -Dcuda=enabled -Dwerror=false -Dtests=false "-Dcuda_args=$2" >"$OUT/build-$1.log" 2>&1 &&
    ninja -C /tmp/rl-$1 -j16 bench/ringlm-bench-cuda >>"$OUT/build-$1.log" 2>&1 || { echo "build $1 failed"; tail -5 "$OUT/build-$1.log"; }
}
# varpart VAR CUDA_ARGS LIMIT: VAR built beside this tree and the old one
# (.old), test_cu_mvb, then abx on 7B Q4_0 twice, Q8_0 and Q4_K_M.
varpart() {
  [ -z "$1" ] || build_var $1 "$2" &
  build_pair
  wait
  ctests test_cu_mvb
  for r in 1 2; do left $3 && abx "$1" llama2-7b q4_0 1 128; done
  left $(($3 + 40)) && abx "$1" llama2-7b q8_0 1 128
  left $(($3 + 60)) && abx "$1" llama2-7b q4_k_m 1 128
}
# The parts that compared builds, each against the old tree (.old: `git
# archive 322b571`, session 30's kernels, carried) in the same call; their
# variant builds' switches are gone since (the commits named keep them):
#   ab       (2f869c0) old | new (the activation's planes) | new with the GLU
#            output handed over as halves; with RL_CU_MVB_H16=1 also
#            test_cu_model and test_cu_mixed.
#   var      (0d86925) + a build without the fp16 input's code (-DRL_MVB_NO_HIN).
#   blk      (d2dc000) + a build with the activation's whole 32-byte blocks
#            (-DRL_MVB_BLOCKS).
#   reg      (464a656) the products held to 88 registers (__maxnreg__,
#            RL_MVB_MAXNREG) + a build held to 80 (-DRL_MVB_MAXNREG=80);
#            with RL_CU_MVB_H16=1 also test_cu_model and test_cu_mixed.
case "$PART" in
ab) varpart "" "" 330; RL_CU_MVB_H16=1 ctests test_cu_model test_cu_mixed ;;
var) varpart nohin -DRL_MVB_NO_HIN 400 ;;
blk) varpart blocks -DRL_MVB_BLOCKS 420 ;;
reg) varpart r80 -DRL_MVB_MAXNREG=80 260; left 310 && RL_CU_MVB_H16=1 ctests test_cu_model test_cu_mixed ;;
esac
[ "$PART" = diag ] || [ "$PART" = xpl ] || echo "elapsed ${SECONDS}s"
