#!/bin/bash
# gpu-s8.sh - session 8's closing device call: every CUDA test and the
# transformers check; compute-sanitizer memcheck and racecheck on the
# batch-64 products of the 7B shape (rl_cu_mmt: TMA copies, mbarriers,
# wgmma); the 7B batch-64 engine step with rl_cu_mmt off and on; the
# single-stream benchmarks. Part "load": time to first token and the
# 64-client 7B load (fp16 and int8 KV), as gpu-s7.sh load. Part "direct":
# prompt steps of more than 64 tokens on rl_cu_mmw (test, prefill by length,
# the 64-client load at several step budgets).
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s8.sh [load]
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}
T=$(dirname "$0")
if [ "${1:-}" = load ]; then exec bash $T/gpu-s7.sh load; fi
if [ "${1:-}" = direct ]; then # prompt steps of 65..256 tokens on rl_cu_mmw instead of cuBLAS
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 # (builds)
  echo "== test_cu_mmq (rl_cu_mmt)"
  CK_FORK=no timeout 300 $B/tests/cuda/test_cu_mmq >"$OUT/test_mmq.log" 2>&1; echo "rc=$? $(grep -E '^[0-9]+%' "$OUT/test_mmq.log")"
  echo "== test_cu_mixed (direct products against cuBLAS and the float64 reference)"
  CK_FORK=no timeout 200 $B/tests/cuda/test_cu_mixed >"$OUT/test_mixed.log" 2>&1; echo "rc=$? $(grep -E '^[0-9]+%' "$OUT/test_mixed.log")"
  grep -E "Q4_0 prompt|direct products|:F:|:E:" "$OUT/test_mixed.log" | head -12
  M=/tmp/rl-models; mkdir -p $M
  [ -f $M/llama2-7b-q4_0.gguf ] || $B/tools/ringlm-mkmodel --shape llama2-7b --type q4_0 --out $M/llama2-7b-q4_0.gguf --threads 16 >/dev/null
  echo "== 7B Q4_0 prefill tok/s by prompt length, RL_CU_DIRECT_MAX=0 (cuBLAS) / 512 (direct)"
  for n in ${LENS:-96 128 192 256 320 384 512}; do for v in 0 512; do
    echo "prompt $n direct_max $v $(RL_CU_DIRECT_MAX=$v timeout 120 $B/bench/ringlm-bench model --model $M/llama2-7b-q4_0.gguf --device cuda --prompt $n --gen 8 --json 2>/dev/null | grep -oE '"prefill_tok_s":[0-9.]+')"
  done; done
  STEPS="${STEPS:-128 256 512}" bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA"
  exit 0
fi
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
