#!/bin/bash
# gpu-speed.sh - build, test, profile and benchmark the single-sequence CUDA
# speed work in one device call (logs under $OUT, short table last).
#   source .device/setup.sh && cd .wt/speed && bash tools/gpu-speed.sh [quick]
. "$(dirname "$0")/gpu-env.sh"
B=/tmp/b; MODE=${1:-full}
L=$OUT/log.txt; S=$OUT/summary.txt
: >"$L"; : >"$S"; : >"$OUT/tests.txt"
say() { echo "$*" | tee -a "$S"; }
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv,noheader | tee -a "$S"
T0=$(date +%s)
if [ ! -f $B/build.ninja ]; then
  meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >>"$L" 2>&1 || { tail -30 "$L"; exit 1; }
fi
ninja -C $B -j16 tests/cuda/test_cu_kernels tests/cuda/test_cu_prefill tests/cuda/test_cu_model bench/ringlm-bench-cuda \
  tools/ringlm-logits >"$OUT/build.txt" 2>&1 || { grep -E "error|FAILED" -A3 "$OUT/build.txt" | head -40; exit 1; }
say "build $(( $(date +%s) - T0 )) s"
# The read-only test data (stories260K, tokenizer vectors) travels in .rl-shared when copied there.
[ -d .rl-shared ] && export RL_SHARED_DIR=$PWD/.rl-shared
runtest() { # label, env..., binary
  local label=$1; shift
  local f=/tmp/test-$label.txt
  timeout 150 env "$@" >$f 2>&1; local rc=$?
  say "$label rc=$rc: $(grep -E '^[0-9]+%' $f | tail -1) $(grep -c skipping $f) skips"
  [ $rc -eq 0 ] || grep -vE "seed [0-9]+$" $f | grep -iE "fail|err|abort" | head -12 | tee -a "$S"
  { echo "=== $label rc=$rc"; cat $f; } >>"$OUT/tests.txt"
}
runtest prefill_tc $B/tests/cuda/test_cu_prefill
runtest prefill_fp32 RL_CU_ATTN_TC=0 $B/tests/cuda/test_cu_prefill
runtest kernels $B/tests/cuda/test_cu_kernels
runtest kernels_glu_u1 RL_CU_MV_GLU_U=1 $B/tests/cuda/test_cu_kernels
runtest model $B/tests/cuda/test_cu_model
if [ "$MODE" = full ]; then
  timeout 100 python3 tools/hf_check.py $B/tools/ringlm-logits >"$OUT/hf_check.txt" 2>&1; say "hf_check rc=$?"
  grep -E "PASS|FAIL" "$OUT/hf_check.txt" | head -8 | tee -a "$S"
fi
BE=$B/bench/ringlm-bench-cuda
bench() { # label, env..., args
  local label=$1; shift
  local line
  line=$(timeout 90 env "$@" 2>>"$L" | grep '^cuda' | tail -1)
  say "$label: ${line#cuda }"
}
# Prefill: per-op profile of one layer (old and new kernels side by side), then whole models.
for sh in llama2-7b; do
  timeout 60 $BE --shape $sh --type q4_0 --prompt 512 --prefill-profile 2>>"$L" | tee -a "$OUT/profile.txt" >>"$L"
done
say "--- whole model, 512-token prefill + 128 generated"
# (The pre-change baseline needs a build of commit ccc5b7f: the old prefill path is gone.)
for sh in llama2-7b tinyllama-1.1b; do
  bench "$sh" $BE --shape $sh --type q4_0 --prompt 512 --gen 128
  bench "$sh glu-u0" RL_CU_MV_GLU_U=0 $BE --shape $sh --type q4_0 --prompt 512 --gen 128
  bench "$sh fp32-attn" RL_CU_ATTN_TC=0 $BE --shape $sh --type q4_0 --prompt 512 --gen 128
done
if [ "$MODE" = full ]; then
  bench "llama2-7b q8_0" $BE --shape llama2-7b --type q8_0 --prompt 512 --gen 128
  bench "llama2-7b prompt 2048" $BE --shape llama2-7b --type q4_0 --prompt 2048 --gen 32
  bench "tinyllama-1.1b prompt 20" $BE --shape tinyllama-1.1b --type q4_0 --prompt 20 --gen 32
fi
# Decode per-op profile (each op alone; the fused norm is not in this table).
for sh in llama2-7b tinyllama-1.1b; do
  timeout 60 $BE --shape $sh --type q4_0 --prompt 512 --gen 64 --profile 2>>"$L" | grep -v '^cuda' | tee -a "$OUT/profile.txt" >>"$L"
done
say "total $(( $(date +%s) - T0 )) s"
echo "================ summary"
cat "$S"
grep -E "per layer|^prefill profile|^  [a-z]" "$OUT/profile.txt" | head -80
