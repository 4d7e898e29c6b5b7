#!/bin/bash
# gpu-s27.sh - session 27's device calls (the first session on an H200).
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s27.sh PART
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, suites, ctests, cfgc, tyc, ...
PART=${1:-h200}
# san TOOL TEST CASE: compute-sanitizer TOOL over one Check case of a test.
san() {
  CK_RUN_CASE=$3 timeout ${SAN_S:-150} compute-sanitizer --tool $1 $B/tests/cuda/$2 >"$OUT/$1-$2-$3.log" 2>&1
  echo "$1 $2 ($3): rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$1-$2-$3.log" | tr '\n' ' ')"
}
# copybw: the device's copy bandwidth (ringlm-bench cuda --copy), median GB/s into BW.
copybw() {
  local j=$($BC --copy --json)
  echo "copy: $j"
  BW=$(echo "$j" | grep -oE '"median_gb_s":[0-9.]+' | cut -d: -f2)
}
# engb NAME PROMPT: the engine's generation and prefill tok/s and roofline fraction at BW.
engb() { timeout 90 $B/bench/ringlm-bench model --model /tmp/rl-models/$1.gguf --device cuda --prompt $2 --gen 128 --bw $BW --json 2>/dev/null | grep -oE '"(gen_tok_s|prefill_tok_s|gen_roofline_frac)":[0-9.]+' | tr '\n' ' '; }
#   h200     the first call on an H200: the copy bandwidth, the batch-1
#            figures (7B Q4_0 single stream and engine, TinyLlama Q4_0), the
#            fused RoPE store (rope_prep form) against the RoPE kernel, its
#            test, racecheck and memcheck.
if [ "$PART" = h200 ]; then
  build
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader
  copybw; copybw
  cfgc llama2-7b q4_0 1 128 2 300 "RL_CU_MVB_ROPE=0" "RL_CU_MVB_ROPE=1"
  left 320 && echo "tiny q4_0 p1: $(tyc tinyllama-1.1b q4_0 1 128)"
  left 330 && mkm llama2-7b Q4_0 7b-q4_0
  left 340 && mkm tinyllama-1.1b Q4_0 tl-q4_0
  for r in 1 2; do for v in 0 1; do left 420 && echo "r$r ROPE=$v engine 7B Q4_0 p1: $(RL_CU_MVB_ROPE=$v engb 7b-q4_0 1)"; done; done
  left 440 && echo "engine TinyLlama Q4_0 p1: $(engb tl-q4_0 1)"
  left 460 && echo "engine 7B Q4_0 p512: $(engb 7b-q4_0 512)"
  left 480 && RL_CU_MVB_ROPE=1 ctests test_cu_mvb
  left 500 && SAN_S=80 san racecheck test_cu_mvb rope
  echo "elapsed ${SECONDS}s"
fi
#   tl       the step timelines on the H200: 7B Q4_0 and TinyLlama Q4_0 from
#            an empty context, 7B Q4_0 after 512 tokens, 7B Q4_K_M.
if [ "$PART" = tl ]; then
  build & build_tl; wait
  for a in "7b llama2-7b q4_0 1 128" "tiny tinyllama-1.1b q4_0 1 128" "7b512 llama2-7b q4_0 512 64" "7bkm llama2-7b q4_k_m 1 128"; do
    set -- $a; left 400 && { echo "== timeline $*"; tl "$@" | head -40; }
  done
  left 450 && echo "7B Q4_0 p1: $(tyc llama2-7b q4_0 1 128)"
  echo "elapsed ${SECONDS}s"
fi
#   ncu      Nsight Compute over three consecutive k_mvb launches of the 7B
#            Q4_0 single stream (caches flushed per kernel, no PDL overlap):
#            DRAM throughput, stalls, per-source stall samples.
ncu_mvb() {
  timeout 200 ncu --clock-control none --kernel-name-base mangled --kernel-name regex:'k_mvb' --launch-skip ${2:-300} --launch-count 3 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    --section SchedulerStats --section SourceCounters --section InstructionStats \
    -o $OUT/$1 -f $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 1 --gen 16 --kv f16 >"$OUT/$1-ncu.log" 2>&1; echo "ncu rc=$?"
  ncu -i $OUT/$1.ncu-rep --page details --print-details all >"$OUT/$1.txt" 2>&1
  ncu -i $OUT/$1.ncu-rep --page source --csv --print-source sass >"$OUT/$1-sass.csv" 2>&1
  grep -E "k_mvb|Duration|DRAM Throughput|Memory Throughput|Registers Per|Warp Cycles Per Issued|Issue Slots Busy|No Eligible|Stall" "$OUT/$1.txt" | head -60
}
if [ "$PART" = ncu ]; then
  build
  ncu_mvb mvb7b
  echo "elapsed ${SECONDS}s"
fi
#   ring     the ring on the H200: one bulk copy per plane and tile
#            (RL_CU_MVB_MERGE=1) and a 180 KB ring (a build with
#            -DRL_MVB_RMAX=184320 in /tmp/rl-v1), each against the default.
V1BC=/tmp/rl-v1/bench/ringlm-bench-cuda
build_v1() {
  [ -f /tmp/rl-v1/build.ninja ] || meson setup /tmp/rl-v1 -Dbuildtype=release -Dcuda=enabled -Dwerror=false -Dtests=false -Dcuda_args=-DRL_MVB_RMAX=${V1_RMAX:-184320} >"$OUT/build-v1.log" 2>&1 || { echo v1 setup failed; tail -20 "$OUT/build-v1.log"; return 1; }
  ninja -C /tmp/rl-v1 -j16 bench/ringlm-bench-cuda >>"$OUT/build-v1.log" 2>&1 || { echo v1 build failed; grep -E "error|FAILED" "$OUT/build-v1.log" | head; return 1; }
}
ring4() { echo "def $(tyc "$@") | merge $(RL_CU_MVB_MERGE=1 tyc "$@") | r180 $(tycb $V1BC "$@") | r180+merge $(RL_CU_MVB_MERGE=1 tycb $V1BC "$@")"; }
if [ "$PART" = ring ]; then
  build & build_v1; wait
  RL_CU_MVB_MERGE=1 ctests test_cu_mvb
  for r in 1 2; do left 400 && echo "r$r 7B q4_0 p1: $(ring4 llama2-7b q4_0 1 128)"; done
  left 440 && echo "7B q4_k_m p1: $(ring4 llama2-7b q4_k_m 1 128)"
  left 480 && echo "7B q8_0 p1: $(ring4 llama2-7b q8_0 1 128)"
  left 520 && echo "7B q4_0 p512: $(ring4 llama2-7b q4_0 512 64)"
  echo "elapsed ${SECONDS}s"
fi
