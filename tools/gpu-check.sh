#!/bin/bash
# gpu-check.sh - build, check and benchmark the CUDA backend on the GPU machine.
#   source .device/setup.sh && cd .gpu/src && bash tools/gpu-check.sh [quick]
# Logs go to $OUT (or /tmp/gpu-out); a short table is printed last.
. "$(dirname "$0")/gpu-env.sh"
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
B=/tmp/rl-build
MODE=${1:-full}
log() { echo "== $*"; }
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv | tee "$OUT/gpu.txt"

log build
if [ ! -f $B/build.ninja ]; then
  meson setup $B -Dbuildtype=release -Dcuda=enabled >"$OUT/setup.log" 2>&1 || { tail -30 "$OUT/setup.log"; exit 1; }
fi
meson configure $B -Dwerror=false >/dev/null  # others' -O3 warnings must not stop the GPU check
touch kernels/cuda/*.cu  # nvcc gives meson no header dependencies
ninja -C $B -j16 tests/cuda/test_cu_kernels tests/cuda/test_cu_model tests/cuda/test_cu_mixed tools/ringlm-mkmodel bench/ringlm-bench-cuda tools/ringlm-logits >"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head -30; exit 1; }

log tests
# Run the test binaries directly: meson test would rebuild every other target.
TEST_RC=0
for t in $B/tests/cuda/test_cu_*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  RL_SHARED_DIR=${RL_SHARED_DIR:-$PWD/../shared} "$t" >"$OUT/$(basename $t).log" 2>&1
  rc=$?; echo "$(basename $t): rc=$rc"; [ $rc -eq 0 ] || TEST_RC=$rc
  grep -E "^[0-9]+%|Checks|Failures|Errors|rel err|^cuda: |skipping" "$OUT/$(basename $t).log" | head -12
  [ $rc -eq 0 ] || grep -vE "seed [0-9]+$" "$OUT/$(basename $t).log" | head -40
done
log hf_check
# Independent check: random transformers Llama models -> GGUF -> ringlm-logits (cpu, cuda) vs transformers in float64.
python3 tools/hf_check.py $B/tools/ringlm-logits >"$OUT/hf_check.txt" 2>&1; HF_RC=$?
grep -E "^hf_check|^python" "$OUT/hf_check.txt"; echo "hf_check rc=$HF_RC"

BENCH=$B/bench/ringlm-bench-cuda
log kernels
$BENCH --kernels >"$OUT/kernels.txt" 2>&1; grep -E "Q4_0|Q8_0|F16" "$OUT/kernels.txt"
$BENCH --kernels --batch 8 >"$OUT/kernels_b8.txt" 2>&1

log models
: >"$OUT/bench.txt"
run() { $BENCH "$@" 2>>"$OUT/bench.err" | tee -a "$OUT/bench.txt"; }
run --shape tinyllama-1.1b --type q4_0
RL_CU_PDL=0 $BENCH --shape tinyllama-1.1b --type q4_0 2>>"$OUT/bench.err" | sed 's/batch 1/batch 1 (no PDL)/' | tee -a "$OUT/bench.txt"
run --shape tinyllama-1.1b --type q4_0 --no-graph
$BENCH --shape tinyllama-1.1b --type q4_0 --profile 2>/dev/null | tee "$OUT/profile.txt" | grep -v "^cuda"
[ "$MODE" = full ] && $BENCH --shape llama2-7b --type q4_0 --profile 2>/dev/null | tee -a "$OUT/profile.txt" | grep -v "^cuda"
if [ "$MODE" = full ]; then
  run --shape tinyllama-1.1b --type q8_0
  run --shape tinyllama-1.1b --type f16
  run --shape llama2-7b --type q4_0
  RL_CU_PDL=0 $BENCH --shape llama2-7b --type q4_0 2>>"$OUT/bench.err" | sed 's/batch 1/batch 1 (no PDL)/' | tee -a "$OUT/bench.txt"
  run --shape llama2-7b --type q8_0
  run --shape llama2-7b --type f16
  run --shape llama2-7b --type q4_0 --batch 8
fi
tail -5 "$OUT/bench.err"

log summary
echo "tests rc=$TEST_RC"
echo "hf_check rc=$HF_RC ($(tail -1 "$OUT/hf_check.txt"))"
sed -E 's/^cuda +//' "$OUT/bench.txt"
