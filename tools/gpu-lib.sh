#!/bin/bash
# gpu-lib.sh - helpers of the session scripts (tools/gpu-s*.sh). Sourcing it
# sets what a script has not: T (tools folder), the environment of
# gpu-env.sh, B (build folder: RL_GPU_BUILD, else /tmp/rl-b) and BC
# (ringlm-bench-cuda).
T=${T:-$(dirname "${BASH_SOURCE[0]}")}
[ -n "${RL_GPU_ENV:-}" ] || . "$T/gpu-env.sh"
B=${B:-${RL_GPU_BUILD:-/tmp/rl-b}}
BC=${BC:-$B/bench/ringlm-bench-cuda}
left() { [ $SECONDS -lt ${1} ]; } # stages skip themselves past a time budget (10-minute calls)
# Build (tools/gpu-steps.sh build-only), then the test data for the suites.
build() {
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  export RL_SHARED_DIR=$PWD/.gpu/shared
}
# meson test with the given --suite arguments: the summary line and failures.
suites() {
  timeout ${SUITE_S:-240} meson test -C $B --no-rebuild "$@" --print-errorlogs >"$OUT/tests.log" 2>&1
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/tests.log" | tr '\n' ' '; echo
  grep -E "FAIL|Failure|failed:" "$OUT/tests.log" | head -10
}
# Nsight Compute on one launch of k_attn_warp in the 7B batch-64 step (int8
# or fp16 KV: $2) into $OUT/$1.*: details, raw metrics, SASS with stall samples.
ncu_attn() {
  timeout 150 ncu --clock-control none --kernel-name-base mangled --kernel-name regex:'k_attn_warp' --launch-skip 40 --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    --section InstructionStats --section ComputeWorkloadAnalysis --section SourceCounters --section SchedulerStats \
    -o $OUT/$1 -f $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --kv $2 >"$OUT/$1-ncu.log" 2>&1; echo "ncu rc=$?"
  ncu -i $OUT/$1.ncu-rep --page details --print-details all >"$OUT/$1.txt" 2>&1
  ncu -i $OUT/$1.ncu-rep --page raw --csv >"$OUT/$1-raw.csv" 2>&1
  ncu -i $OUT/$1.ncu-rep --page source --csv --print-source sass >"$OUT/$1-sass.csv" 2>&1
  grep -E "k_attn|Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Issue Slots Busy|Executed Ipc|No Eligible|Executed Instructions  " "$OUT/$1.txt" | head -16
}
# Engine generation tok/s: eng SHAPE BATCH PROMPT KV (ringlm-bench-cuda --gen 64).
eng() { timeout 60 $BC --shape $1 --type q4_0 --batch $2 --prompt $3 --gen 64 --kv $4 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+'; }
# ty SHAPE TYPE: single stream (512-token prompt, 64 generated, fp16 KV): the
# step's path and tok/s (session 17).
ty() { timeout 90 $BC --shape $1 --type $2 --batch 1 --prompt 512 --gen 64 --kv f16 --json 2>/dev/null | grep -oE '"step":"[a-z]+"|"gen_tok_s":[0-9.]+' | tr '\n' ' '; }
# memcheck TEST: compute-sanitizer memcheck over one CUDA test, its summary
# line (log in $OUT/san-TEST.log).
memcheck() {
  timeout ${SAN_S:-150} compute-sanitizer --tool memcheck $B/tests/cuda/$1 >"$OUT/san-$1.log" 2>&1
  echo "memcheck $1: rc=$? $(grep -E 'ERROR SUMMARY|Checks' "$OUT/san-$1.log" | tr '\n' ' ')"
}
# mkm SHAPE TYPE NAME: a ringlm-mkmodel file /tmp/rl-models/NAME.gguf (kept
# between calls on a warm machine).
mkm() { mkdir -p /tmp/rl-models; [ -f /tmp/rl-models/$3.gguf ] || timeout 150 $B/tools/ringlm-mkmodel --shape $1 --type $2 --out /tmp/rl-models/$3.gguf --threads 16 >/dev/null; }
# benchm NAME [PROMPT]: the engine (ringlm-bench model --device cuda, a
# PROMPT-token prompt, default 512, 128 generated) on
# /tmp/rl-models/NAME.gguf: prefill and generation tok/s.
benchm() { timeout 90 $B/bench/ringlm-bench model --model /tmp/rl-models/$1.gguf --device cuda --prompt ${2:-512} --gen 128 --json 2>/dev/null | grep -oE '"(gen_tok_s|prefill_tok_s)":[0-9.]+' | tr '\n' ' '; }
# Per-op profile lines matching PATTERN: prof SHAPE BATCH PROMPT KV PATTERN.
prof() { timeout 60 $BC --shape $1 --type q4_0 --batch $2 --prompt $3 --gen 16 --kv $4 --profile 2>&1 | grep -E "$5|sum" | tr -s ' ' | tr '\n' ' '; }
# The 64-client 7B load (int8 KV, STEPS-token steps, default 512) on one
# line, with the daemon's step statistics and (since session 14) the worker's
# zero-copy and time counters.
load1() {
  STEPS=${STEPS:-512} bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA|^-- step" | tr '\n' ' '
  grep -oE "(zero copy|worker):.*" "$OUT/ringlmd-load.log" | tr '\n' ' '
}
# The 7B step's products alone at 64 rows (rl_cu_mmw), us per matrix.
products() {
  timeout 60 $BC --mm --mm-kernel mmw --mm-batch 64 --json 2>/dev/null | python3 -c '
import sys, json
out = []
for l in sys.stdin:
    try: d = json.loads(l)
    except Exception: continue
    if d.get("type") != "Q4_0": continue
    out.append("%s %s" % (d["matrix"], d["us"]) if "matrix" in d else "step %s ms" % d["step_ms"])
print(" | ".join(out))'
}
# ctests TEST...: each CUDA test program's summary line (session 18).
ctests() { local t; for t in "$@"; do echo "$t: $(timeout 240 $B/tests/cuda/$t 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"; done; }
# alt VAR "VALUES" ROUNDS LIMIT FUNC: ROUNDS rounds of VAR=value (d: unset)
# for each value in turn, FUNC's line after each, until LIMIT seconds.
alt() {
  local var=$1 vals=$2 rounds=$3 lim=$4 fn=$5 r v
  for r in $(seq $rounds); do
    for v in $vals; do
      left $lim || break 2
      if [ $v = d ]; then unset $var; else export $var=$v; fi
      echo "r$r $var=$v: $($fn)"
    done
  done
  unset $var
}
# prof1 PATTERN: the 7B Q4_0 single stream's per-op profile lines matching PATTERN.
prof1() { timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E "$1|sum" | tr -s ' ' | tr '\n' ' '; }
# build_old: the tree in .old (a `git archive` of the commit before the
# change, carried as an ignored path) built into /tmp/rl-old: its bench only.
build_old() {
  [ -f /tmp/rl-old/build.ninja ] || (cd .old && meson setup /tmp/rl-old -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/build-old.log" 2>&1) || { echo old setup failed; tail -20 "$OUT/build-old.log"; return 1; }
  ninja -C /tmp/rl-old -j16 bench/ringlm-bench-cuda >>"$OUT/build-old.log" 2>&1 || { echo old build failed; grep -E "error|FAILED" "$OUT/build-old.log" | head; return 1; }
}
# tps BENCH SHAPE TYPE [ARGS]: one bench run's generation tok/s (default
# ARGS: the single stream, 512-token prompt, 64 generated).
tps() {
  local bin=$1 sh=$2 ty=$3; shift 3
  timeout 90 $bin --shape $sh --type $ty --kv f16 --json ${@:---batch 1 --prompt 512 --gen 64} 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+' | cut -d: -f2
}
# ab LIMIT SHAPE TYPE [ARGS]: the single stream on the old tree's bench and
# the new one's, one after the other (tok/s).
ab() {
  local lim=$1 sh=$2 ty=$3; shift 3
  left $lim || return 0
  local bo=$(tps /tmp/rl-old/bench/ringlm-bench-cuda $sh $ty "$@") bn=$(tps $BC $sh $ty "$@")
  echo "$sh $ty ${*:-}: old $bo new $bn"
}
# build_pair: this tree (build) and, in the background, the old one (wait for it).
build_pair() { rm -rf /tmp/rl-old; build; build_old & }
# profT SHAPE TYPE: the single stream's per-op profile (us per op, sum).
profT() { timeout 90 $BC --shape $1 --type $2 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E "us x|sum" | sed -E 's/ +/ /g; s/ us x +[0-9]+ = +[0-9.]+ us \( *[0-9.]+%\)//' | tr '\n' '|'; }
# cfgf "CMD" ROUNDS LIMIT "VAR=V ..." ...: CMD's line under each setting in
# turn, ROUNDS rounds, until LIMIT seconds.
cfgf() {
  local cmd=$1 rounds=$2 lim=$3 r c; shift 3
  for r in $(seq $rounds); do
    for c in "$@"; do
      left $lim || return 0
      echo "r$r $cmd [$c]: $(export $c; $cmd)"
    done
  done
}
# cfgs SHAPE TYPE ROUNDS LIMIT "VAR=V ..." ...: the single stream (ty) under each setting.
cfgs() { local sh=$1 tp=$2; shift 2; cfgf "ty $sh $tp" "$@"; }
# cfgc SHAPE TYPE PROMPT GEN ROUNDS LIMIT "VAR=V ..." ...: tyc under each setting (session 23).
cfgc() { local a="tyc $1 $2 $3 $4"; shift 4; cfgf "$a" "$@"; }
# tyc SHAPE TYPE PROMPT GEN: the single stream (fp16 KV) after a PROMPT-token
# prompt, GEN generated: tok/s and the replayed step's us (session 23).
tyc() { timeout 90 $BC --shape $1 --type $2 --batch 1 --prompt $3 --gen $4 --kv f16 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+|"replay_step_us":[0-9.]+' | cut -d: -f2 | tr '\n' ' '; }
# alltypes LIMIT: every 7B and TinyLlama type's single stream (tyc) from an
# empty context (128 generated) and after 512 tokens (64), until LIMIT
# seconds (sessions 23 and 24's final parts).
alltypes() {
  local sh
  for sh in "llama2-7b q4_0" "llama2-7b q4_k_m" "llama2-7b q4_k" "llama2-7b q5_k_m" "llama2-7b q6_k" "llama2-7b q8_0" \
            "llama2-7b f16" "tinyllama-1.1b q4_0" "tinyllama-1.1b q4_k_m" "tinyllama-1.1b q8_0" "tinyllama-1.1b f16"; do
    left $1 && echo "final $sh: p1 $(tyc $sh 1 128) | p512 $(tyc $sh 512 64)"
  done
}
# tycb BIN SHAPE TYPE PROMPT GEN: tyc on another build's bench.
tycb() { local b=$1; shift; BC=$b tyc "$@"; }
# build_tl: the tree built again into /tmp/rl-tl with the step timeline
# (-Dgpu_timeline=true): its bench only.
TLBC=/tmp/rl-tl/bench/ringlm-bench-cuda
build_tl() {
  [ -f /tmp/rl-tl/build.ninja ] || meson setup /tmp/rl-tl -Dbuildtype=release -Dcuda=enabled -Dwerror=false -Dtests=false -Dgpu_timeline=true >"$OUT/build-tl.log" 2>&1 || { echo tl setup failed; tail -20 "$OUT/build-tl.log"; return 1; }
  ninja -C /tmp/rl-tl -j16 bench/ringlm-bench-cuda >>"$OUT/build-tl.log" 2>&1 || { echo tl build failed; grep -E "error|FAILED" "$OUT/build-tl.log" | head; return 1; }
}
# tl NAME SHAPE TYPE PROMPT GEN: the step's timeline (summary on stdout, every
# launch in $OUT/tl-NAME.csv).
tl() { timeout 120 $TLBC --shape $2 --type $3 --batch 1 --prompt $4 --gen $5 --kv f16 --timeline-csv $OUT/tl-$1.csv 2>&1 | grep -vE '^cuda '; }
