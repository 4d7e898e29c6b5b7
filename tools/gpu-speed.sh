#!/bin/bash
# gpu-speed.sh - build, test, profile and benchmark the single-sequence CUDA
# speed work in one device call (logs under $OUT, short table last).
#   source .device/setup.sh && cd .wt/speed && bash tools/gpu-speed.sh [quick]
set -u -o pipefail
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
B=/tmp/b; MODE=${1:-full}
export C_INCLUDE_PATH=/opt/deps/usr/include${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}
export LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}
L=$OUT/log.txt; S=$OUT/summary.txt
: >"$L"; : >"$S"
say() { echo "$*" | tee -a "$S"; }
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv,noheader | tee -a "$S"
T0=$(date +%s)
if [ ! -f $B/build.ninja ]; then
  meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >>"$L" 2>&1 || { tail -30 "$L"; exit 1; }
fi
ninja -C $B -j16 tests/cuda/test_cu_kernels tests/cuda/test_cu_prefill tests/cuda/test_cu_model bench/ringlm-bench-cuda \
  >"$OUT/build.txt" 2>&1 || { grep -E "error|FAILED" -A3 "$OUT/build.txt" | head -40; exit 1; }
say "build $(( $(date +%s) - T0 )) s"
for t in test_cu_prefill test_cu_kernels test_cu_model; do
  timeout 150 $B/tests/cuda/$t >"$OUT/$t.txt" 2>&1; rc=$?
  say "$t rc=$rc: $(grep -E '^[0-9]+%' "$OUT/$t.txt" | tail -1)"
  [ $rc -eq 0 ] || grep -vE "seed [0-9]+$" "$OUT/$t.txt" | grep -E "fail|err|Error" | head -12 | tee -a "$S"
done
BE=$B/bench/ringlm-bench-cuda
bench() { # label, env..., args
  local label=$1; shift
  local line
  line=$(timeout 90 env "$@" 2>>"$L" | grep '^cuda' | tail -1)
  say "$label: ${line#cuda }"
}
# Prefill: per-op profile of one layer, then whole-model A/B (old path vs new).
for sh in llama2-7b tinyllama-1.1b; do
  timeout 60 $BE --shape $sh --type q4_0 --prompt 512 --prefill-profile 2>>"$L" | tee -a "$OUT/profile.txt" >>"$L"
done
say "--- whole model, 512-token prefill + 128 generated (H100 as above)"
for sh in llama2-7b tinyllama-1.1b; do
  bench "$sh OLD" RL_CU_PREFILL_OLD=1 RL_CU_MV_NORM=0 $BE --shape $sh --type q4_0 --prompt 512 --gen 128
  bench "$sh NEW" $BE --shape $sh --type q4_0 --prompt 512 --gen 128
  bench "$sh NEW no-mv-norm" RL_CU_MV_NORM=0 $BE --shape $sh --type q4_0 --prompt 512 --gen 128
done
if [ "$MODE" = full ]; then
  bench "llama2-7b NEW q8_0" $BE --shape llama2-7b --type q8_0 --prompt 512 --gen 128
  bench "llama2-7b NEW prompt 2048" $BE --shape llama2-7b --type q4_0 --prompt 2048 --gen 32
  bench "llama2-7b OLD prompt 2048" RL_CU_PREFILL_OLD=1 $BE --shape llama2-7b --type q4_0 --prompt 2048 --gen 32
fi
# Decode per-op profile (each op alone; the fused norm is not in this table).
for sh in llama2-7b tinyllama-1.1b; do
  timeout 60 $BE --shape $sh --type q4_0 --prompt 512 --gen 64 --profile 2>>"$L" | grep -v '^cuda' | tee -a "$OUT/profile.txt" >>"$L"
done
# Matrix-vector bandwidth, Q4_0, plain and GLU.
RL_BENCH_MV_ONLY=q4_0 timeout 60 $BE --kernels 2>>"$L" | tee -a "$OUT/profile.txt" >>"$L"
RL_BENCH_MV_ONLY=q4_0 RL_BENCH_MV_GLU=1 timeout 60 $BE --kernels 2>>"$L" | tee -a "$OUT/profile.txt" >>"$L"
grep -E "Q4_0" "$OUT/profile.txt" | tee -a "$S" >/dev/null
if [ "$MODE" = full ] && command -v ncu >/dev/null; then
  # One GLU gate/up (22016x4096) and one down (4096x11008) launch: occupancy and DRAM throughput.
  RL_BENCH_MV_ONLY=q4_0 RL_BENCH_MV_GLU=1 timeout 60 ncu --clock-control none -k regex:k_matvec --launch-skip 953 --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section LaunchStats $BE --kernels >"$OUT/ncu.txt" 2>&1
  RL_BENCH_MV_ONLY=q4_0 timeout 60 ncu --clock-control none -k regex:k_matvec --launch-skip 1171 --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section LaunchStats $BE --kernels >>"$OUT/ncu.txt" 2>&1
  grep -E "k_matvec|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Theoretical Occ|Grid Size|Duration" "$OUT/ncu.txt" | head -24 >>"$S"
fi
say "total $(( $(date +%s) - T0 )) s"
echo "================ summary"
cat "$S"
grep -E "per layer|^prefill profile|^  [a-z]" "$OUT/profile.txt" | head -80
