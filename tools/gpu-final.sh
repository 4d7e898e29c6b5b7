#!/bin/bash
# gpu-final.sh - the closing device call: build, every CUDA test, the transformers
# check, compute-sanitizer (memcheck + racecheck) on the paged-KV and model tests,
# time to first token through libringlm, single-stream engine benchmarks, and the
# 64-client load on the 7B shape. Parts (to fit the 10-minute call limit;
# the build is reused while the machine stays warm):
#   source .device/setup.sh && bash tools/gpu-final.sh [all|tests|sanitize|bench|bench-q4|ttft|load|kv|kv-load|mmw-load|attn-load]
# kv / kv-load (not in all): the fp16 and int8 KV caches side by side, engine
# steps (ringlm-bench-cuda) and the 64-client 7B load; mmw-load: the same load
# with and without rl_cu_mmw; attn-load: the block and warp decode-attention
# kernels, single stream and the 64-client load.
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}; M=/tmp/rl-models; mkdir -p $M
PART=${1:-all}
want() { [ "$PART" = all ] || [ "$PART" = "$1" ]; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
echo "== build"
[ -f $B/build.ninja ] || meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/setup.log" 2>&1 \
  || { tail -20 "$OUT/setup.log"; exit 1; }
ninja -C $B -j16 >"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head -20; exit 1; }
if want tests; then
echo "== cuda tests"
RL_SHARED_DIR=$PWD/.gpu/shared meson test -C $B --no-rebuild --suite cuda --print-errorlogs >"$OUT/cuda-tests.log" 2>&1
grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/cuda-tests.log" | tr '\n' ' '; echo
grep -E "FAIL|Failure|failed:" "$OUT/cuda-tests.log" | head -10
echo "== transformers check"
timeout 200 python3 tools/hf_check.py $B/tools/ringlm-logits >"$OUT/hf_check.txt" 2>&1; echo "hf_check rc=$?"
grep -E "PASS|FAIL" "$OUT/hf_check.txt" | head -8
fi
if want sanitize; then
echo "== compute-sanitizer"
export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
for tool in memcheck racecheck; do
  for t in tests/cuda/test_cu_paged tests/cuda/test_cu_model; do
    n=$(basename $t)
    timeout 150 compute-sanitizer --tool $tool --error-exitcode 99 $B/$t >"$OUT/$tool-$n.log" 2>&1
    echo "$tool $n: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$tool-$n.log" | tr '\n' ' ')"
  done
done
fi
mk() { [ -f $M/$1-$2.gguf ] || $B/tools/ringlm-mkmodel --shape $1 --type $2 --out $M/$1-$2.gguf --threads 16 >/dev/null 2>>"$OUT/mk.log"; }
bench() { mk $1 $2; timeout 120 $B/bench/ringlm-bench model --model $M/$1-$2.gguf --device cuda --prompt $3 --gen 128 --json 2>>"$OUT/bench.err" | tee -a "$OUT/bench.jsonl"; }
load() { # model clients requests prefix suffix max_tokens step_tokens
  sock=/tmp/rl-load.sock; rm -f $sock
  $B/daemon/ringlmd --model $1 --device cuda --socket $sock --max-clients 300 --step-tokens $7 ${LOAD_ARGS:-} 2>"$OUT/ringlmd-load.log" &
  dpid=$!
  for i in $(seq 1 600); do $B/tools/ringlm --socket $sock info >/dev/null 2>&1 && break; sleep 0.1; done
  timeout 150 $B/bench/ringlm-bench load --socket $sock --clients $2 --requests $3 --prefix $4 --suffix $5 --max-tokens $6 ${BENCH_ARGS:-} --json 2>>"$OUT/load.err" | tee -a "$OUT/load.jsonl"
  kill -TERM $dpid; wait $dpid
}
if want bench; then
echo "== engine benchmarks (ringlm-bench model --device cuda --prompt 512 --gen 128)"
for s in "tinyllama-1.1b q4_0" "tinyllama-1.1b q8_0" "tinyllama-1.1b f16" "llama2-7b q4_0" "llama2-7b q8_0"; do bench $s 512; done
fi
if [ "$PART" = bench-q4 ]; then
echo "== engine benchmarks, Q4_0 only (ringlm-bench model --device cuda --prompt 512 --gen 128)"
for s in "tinyllama-1.1b q4_0" "llama2-7b q4_0"; do bench $s 512; done
fi
if want ttft; then
echo "== time to first token, 20-token prompt: engine (median of 5 fresh prompts), then through libringlm"
echo "   (one connection, 50 requests; the daemon's spans from RINGLM_TRACE_TTFT, p50/p90 us)"
bench tinyllama-1.1b q4_0 20
RINGLM_TRACE_TTFT=1 load $M/tinyllama-1.1b-q4_0.gguf 1 50 0 20 16 512
grep "ttft trace" "$OUT/ringlmd-load.log"
RINGLM_TRACE_TTFT=1 RL_CU_ZEROCOPY=0 load $M/tinyllama-1.1b-q4_0.gguf 1 50 0 20 16 512
grep "ttft trace" "$OUT/ringlmd-load.log"
fi
if want load; then
echo "== 64 clients, TinyLlama Q4_0 and 7B Q4_0 (128-token prompts, 96 shared; 128 generated)"
mk tinyllama-1.1b q4_0; mk llama2-7b q4_0
load $M/tinyllama-1.1b-q4_0.gguf 64 2 96 32 128 512
echo "== 64 clients, 7B Q4_0 (128-token prompts, 96 shared; 128 generated)"
load $M/llama2-7b-q4_0.gguf 64 2 96 32 128 512
load $M/llama2-7b-q4_0.gguf 64 2 96 32 128 256
load $M/llama2-7b-q4_0.gguf 64 2 96 32 128 128
load $M/llama2-7b-q4_0.gguf 256 2 96 32 128 512
fi
if [ "$PART" = kv ]; then
echo "== KV cache f16 vs q8_0: 7B Q4_0 engine steps (ringlm-bench-cuda), batch 64 at ~170 and batch 1 at ~576"
for kv in f16 q8_0 f16 q8_0; do
  $B/bench/ringlm-bench-cuda --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --kv $kv --json 2>>"$OUT/bench.err" | tee -a "$OUT/kv.jsonl"
done
for kv in f16 q8_0; do
  $B/bench/ringlm-bench-cuda --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --kv $kv --profile 2>>"$OUT/bench.err" >"$OUT/kv-prof64-$kv.txt"
  grep -iE "attention|rope|sum" "$OUT/kv-prof64-$kv.txt" | sed "s/^/$kv b64: /"
  $B/bench/ringlm-bench-cuda --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 128 --kv $kv --profile 2>>"$OUT/bench.err" >"$OUT/kv-prof1-$kv.txt"
  grep -iE "attention|rope|sum|gen" "$OUT/kv-prof1-$kv.txt" | sed "s/^/$kv b1: /"
  $B/bench/ringlm-bench-cuda --shape tinyllama-1.1b --type q4_0 --batch 64 --prompt 160 --gen 16 --kv $kv --json 2>>"$OUT/bench.err" | tee -a "$OUT/kv.jsonl"
done
fi
if [ "$PART" = kv-load ]; then
echo "== 64 clients, 7B Q4_0, KV f16 vs q8_0 (128-token prompts, 96 shared; 128 generated; 512-token steps)"
mk llama2-7b q4_0
for kv in q8_0 f16 q8_0; do
  echo "-- kv $kv"; LOAD_ARGS="--kv-type $kv" load $M/llama2-7b-q4_0.gguf 64 2 96 32 128 512
  grep "memory plan" "$OUT/ringlmd-load.log"
done
echo "-- kv q8_0, 256 clients"; LOAD_ARGS="--kv-type q8_0" load $M/llama2-7b-q4_0.gguf 256 2 96 32 128 512
fi
if [ "$PART" = mmw-load ]; then
echo "== 64 clients, 7B Q4_0, int8 KV, RL_CU_MMW=0 / default (rl_cu_mmw for steps of 33..64 rows)"
mk llama2-7b q4_0
for v in 0 auto 0 auto; do
  echo "-- RL_CU_MMW=$v"; RL_CU_MMW=$v LOAD_ARGS="--kv-type q8_0" load $M/llama2-7b-q4_0.gguf 64 2 96 32 128 512
done
fi
if [ "$PART" = attn-load-one ]; then # one 64-client 7B load, LOAD_ARGS as given
mk llama2-7b q4_0
load $M/llama2-7b-q4_0.gguf 64 2 96 32 128 512
fi
if [ "$PART" = load-steps ]; then # the 64-client 7B load (int8 KV) at per-step token budgets STEPS (default 128 256 512)
mk llama2-7b q4_0
for st in ${STEPS:-128 256 512}; do echo "-- step tokens $st"
  LOAD_ARGS="--kv-type q8_0 ${LOAD_ARGS:-}" load $M/llama2-7b-q4_0.gguf ${CLIENTS:-64} 2 96 32 128 $st | grep -oE '"(gen_tok_s|itl_ms|ttft_ms|steps|gen_tokens|sampling)":(\{[^}]*\}|[0-9.]+|"[a-z]+")' | tr '\n' ' '; echo
  grep -o "engine:.*" "$OUT/ringlmd-load.log" # steps, forward time, host time around it (session 12)
done
fi
if [ "$PART" = attn-load ]; then
echo "== the decode attention kernels (RL_CU_ATTN_KERNEL=block|warp): single stream, then 64 clients on 7B Q4_0"
for k in block warp; do
  echo "-- RL_CU_ATTN_KERNEL=$k"; export RL_CU_ATTN_KERNEL=$k
  for s in "tinyllama-1.1b q4_0" "llama2-7b q4_0"; do bench $s 512; done
done
for c in "block q8_0" "warp q8_0" "warp f16" "block f16" "warp q8_0"; do set -- $c
  echo "-- RL_CU_ATTN_KERNEL=$1 kv $2"; export RL_CU_ATTN_KERNEL=$1
  LOAD_ARGS="--kv-type $2" load $M/llama2-7b-q4_0.gguf 64 2 96 32 128 512
done
unset RL_CU_ATTN_KERNEL
fi
echo "== done"
