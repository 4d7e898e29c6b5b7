#!/bin/bash
# gpu-s8.sh - session 8's closing device call: every CUDA test and the
# transformers check; compute-sanitizer memcheck and racecheck on the
# batch-64 products of the 7B shape (rl_cu_mmt: TMA copies, mbarriers,
# wgmma); the 7B batch-64 engine step with rl_cu_mmt off and on; the
# single-stream benchmarks. Part "load": time to first token and the
# 64-client 7B load (fp16 and int8 KV), as gpu-s7.sh load.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s8.sh [load]
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}
T=$(dirname "$0")
if [ "${1:-}" = load ]; then exec bash $T/gpu-s7.sh load; fi
bash $T/gpu-final.sh tests || exit 1
BC=$B/bench/ringlm-bench-cuda
echo "== compute-sanitizer on ringlm-bench-cuda --mm --mm-kernel mmw --mm-batch 64 (rl_cu_mmt)"
for tool in memcheck racecheck; do
  timeout 200 compute-sanitizer --tool $tool --error-exitcode 99 $BC --mm --mm-kernel mmw --mm-batch 64 >"$OUT/$tool-mmt.log" 2>&1
  echo "$tool: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool-mmt.log" | tr '\n' ' ')"
done
echo "== 7B Q4_0 engine step at batch 64 (positions 160..224), RL_CU_MMT=0 / default, twice, per KV type"
for kv in f16 q8_0; do for v in 0 auto 0 auto; do
  echo "kv $kv RL_CU_MMT=$v $(RL_CU_MMT=$v timeout 150 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 64 --kv $kv --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+')"
done; done
bash $T/gpu-final.sh bench-q4 | grep -oE '"model":"[^"]*"|"gen_tok_s":[0-9.]+|"prefill_tok_s":[0-9.]+' | paste - - -
