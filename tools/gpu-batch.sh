#!/bin/bash
# gpu-batch.sh - one device call for the GPU batching work: build, the CUDA
# tests (kernels, paged KV, model, the batching scenarios on the CUDA engine),
# the single-stream engine benchmark, and ringlm-bench load against
# ringlmd --device cuda at several client counts.
#   source .device/setup.sh && bash tools/gpu-batch.sh [quick|load7b]
. "$(dirname "$0")/gpu-env.sh"
MODE=${1:-quick}
B=/tmp/rl-batch; M=/tmp/rl-models; mkdir -p $M
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
echo "== build"
meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/setup.log" 2>&1 || { tail -20 "$OUT/setup.log"; exit 1; }
ninja -C $B -j16 >"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head -20; exit 1; }
echo "== cuda tests (meson test --suite cuda)"
RL_SHARED_DIR=$PWD/.gpu/shared meson test -C $B --no-rebuild --suite cuda --print-errorlogs >"$OUT/cuda-tests.log" 2>&1
grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$OUT/cuda-tests.log"
grep -E "Failure|failed:|Assertion" "$OUT/cuda-tests.log" | head -10
if [ "$MODE" != quick ]; then
  echo "== batched products on the 7B shapes (ringlm-bench-cuda --mm)"
  timeout 150 $B/bench/ringlm-bench-cuda --mm 2>&1 | tee "$OUT/mm.txt" | grep -E "step matmuls"
fi
mk() { [ -f $M/$1-$2.gguf ] || $B/tools/ringlm-mkmodel --shape $1 --type $2 --out $M/$1-$2.gguf --threads 16 >/dev/null 2>>"$OUT/mk.log"; }
echo "== engine benchmark (batch 1)"
mk tinyllama-1.1b q4_0
timeout 120 $B/bench/ringlm-bench model --model $M/tinyllama-1.1b-q4_0.gguf --device cuda --prompt 512 --gen 128 --json 2>>"$OUT/bench.err" | tee -a "$OUT/bench.jsonl"
echo "== time to first token, 20-token prompt (engine, then through libringlm)"
timeout 60 $B/bench/ringlm-bench model --model $M/tinyllama-1.1b-q4_0.gguf --device cuda --prompt 20 --gen 16 --json 2>>"$OUT/bench.err" | tee -a "$OUT/bench.jsonl"
sock=/tmp/rl-ttft.sock; rm -f $sock
$B/daemon/ringlmd --model $M/tinyllama-1.1b-q4_0.gguf --device cuda --socket $sock 2>"$OUT/ringlmd-ttft.log" &
dpid=$!
for i in $(seq 1 300); do $B/tools/ringlm --socket $sock info >/dev/null 2>&1 && break; sleep 0.1; done
prompt="the quick brown fox jumps over the lazy dog while a small cat sleeps near the warm fire"
for i in 1 2 3 4 5 6; do
  $B/tools/ringlm --socket $sock generate -n 16 --temp 0 --timings "$prompt" 2>&1 | grep -o "\[prompt.*\]"
done | tee "$OUT/ttft.txt"
kill -TERM $dpid; wait $dpid
load() { # model clients max_tokens requests [step_tokens]
  sock=/tmp/rl-load.sock; rm -f $sock
  $B/daemon/ringlmd --model $1 --device cuda --socket $sock --max-clients 300 --step-tokens ${5:-512} 2>"$OUT/ringlmd-$(basename $1)-$2.log" &
  dpid=$!
  for i in $(seq 1 600); do $B/tools/ringlm --socket $sock info >/dev/null 2>&1 && break; sleep 0.1; done
  timeout 150 $B/bench/ringlm-bench load --socket $sock --clients $2 --requests $4 --max-tokens $3 --prefix 96 --suffix 32 --json 2>>"$OUT/load.err" | tee -a "$OUT/load.jsonl"
  kill -TERM $dpid; wait $dpid
}
echo "== load (ringlm-bench load --socket, ringlmd --device cuda)"
for c in 1 8 64; do load $M/tinyllama-1.1b-q4_0.gguf $c 128 2; done
if [ "$MODE" = load7b ] || [ "$MODE" = profile7b ]; then
  mk llama2-7b q4_0
  echo "== profile of the batched step (ringlm-bench cuda, 7B Q4_0)"
  for bt in 1 8 64; do
    timeout 120 $B/bench/ringlm-bench-cuda --shape llama2-7b --type q4_0 --batch $bt --prompt 128 --gen 32 --profile 2>&1 | tee -a "$OUT/profile7b.txt" | grep -vE "^cuda memory plan"
  done
  for ms in 2 4; do echo "RL_CU_ATTN_MIN_SPLIT=$ms"
    RL_CU_ATTN_MIN_SPLIT=$ms timeout 120 $B/bench/ringlm-bench-cuda --shape llama2-7b --type q4_0 --batch 64 --prompt 128 --gen 32 --profile 2>&1 | grep -E "attention|gen "
  done
fi
if [ "$MODE" = load7b ]; then
  timeout 120 $B/bench/ringlm-bench model --model $M/llama2-7b-q4_0.gguf --device cuda --prompt 512 --gen 128 --json 2>>"$OUT/bench.err" | tee -a "$OUT/bench.jsonl"
  for c in 1 8 64 256; do load $M/llama2-7b-q4_0.gguf $c 128 2; done
  load $M/llama2-7b-q4_0.gguf 64 128 2 128
fi
echo "== done"
