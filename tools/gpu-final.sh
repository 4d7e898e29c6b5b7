#!/bin/bash
# gpu-final.sh - one device call: build the tree as committed, run the CUDA tests,
# the transformers check, and the engine-level benchmarks (through rl_engine, the
# daemon's own path) on mkmodel models; then time to first token through libringlm.
#   source .device/setup.sh && bash tools/gpu-final.sh
set -u -o pipefail
# the staged .pc files name no include or library directory
export C_INCLUDE_PATH=/opt/deps/usr/include${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}
export LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
B=/tmp/rl-final
M=/tmp/rl-models
mkdir -p $M
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
echo "== build"
meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/setup.log" 2>&1 || { tail -20 "$OUT/setup.log"; exit 1; }
ninja -C $B -j16 >"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head -20; exit 1; }
echo "== cuda tests"
for t in $B/tests/cuda/test_cu_*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  RL_SHARED_DIR=$PWD/.gpu/shared "$t" >"$OUT/$(basename $t).log" 2>&1; rc=$?
  echo "$(basename $t): rc=$rc $(grep -E 'Checks' "$OUT/$(basename $t).log" | tail -1)"
done
echo "== e2e on the GPU box (CPU path), suite subset"
RL_SHARED_DIR=$PWD/.gpu/shared meson test -C $B --no-rebuild --suite e2e --suite batch >"$OUT/suite.log" 2>&1; \
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/suite.log" | tr '\n' ' '; echo
if [ -f tools/hf_check.py ]; then
  echo "== transformers check"
  timeout 240 python3 tools/hf_check.py $B/tools/ringlm-logits >"$OUT/hf_check.txt" 2>&1; echo "hf_check rc=$?"
  tail -8 "$OUT/hf_check.txt"
fi
bench() {
  [ -f $M/$1-$2.gguf ] || $B/tools/ringlm-mkmodel --shape $1 --type $2 --out $M/$1-$2.gguf --threads 16 >/dev/null 2>>"$OUT/mk.log"
  timeout 120 $B/bench/ringlm-bench model --model $M/$1-$2.gguf --device cuda --prompt 512 --gen 128 --json 2>>"$OUT/bench.err" | tee -a "$OUT/bench.jsonl"
}
echo "== engine benchmark (ringlm-bench model --device cuda, prompt 512, gen 128)"
bench tinyllama-1.1b q4_0
echo "== time to first token through libringlm (20-token prompt, tinyllama q4_0)"
sock=/tmp/rl-final.sock
$B/daemon/ringlmd --model $M/tinyllama-1.1b-q4_0.gguf --device cuda --socket $sock 2>"$OUT/ringlmd.log" &
dpid=$!
for i in $(seq 1 300); do $B/tools/ringlm --socket $sock info >/dev/null 2>&1 && break; sleep 0.1; done
prompt="the quick brown fox jumps over the lazy dog while a small cat sleeps near the warm fire"
for i in 1 2 3 4 5 6; do
  $B/tools/ringlm --socket $sock generate -n 16 --temp 0 --timings "$prompt" 2>&1 | grep -o "\[prompt.*\]"
done | tee "$OUT/ttft.txt"
kill -TERM $dpid; wait $dpid
echo "== engine benchmark, 7B"
bench llama2-7b q4_0
echo "== done"
