#!/bin/bash
# gpu-s9.sh - session 9's device calls.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s9.sh PART
# Parts:
#   verify   every CUDA test and the transformers check (gpu-final.sh tests), then
#            the per-op prefill profile of the 7B Q4_0 shape (512 tokens) and the
#            single-stream Q4_0 benchmarks.
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}
T=$(dirname "$0")
BC=$B/bench/ringlm-bench-cuda
PART=${1:-verify}
if [ "$PART" = verify ]; then
  bash $T/gpu-final.sh tests || exit 1
  echo "== prefill profile, 7B Q4_0, 512 tokens"
  timeout 120 $BC --shape llama2-7b --type q4_0 --prompt 512 --prefill-profile 2>&1 | tail -30
  bash $T/gpu-final.sh bench-q4 | grep -oE '"model":"[^"]*"|"gen_tok_s":[0-9.]+|"prefill_tok_s":[0-9.]+' | paste - - -
fi
#   w16      the fp16 weight copies for prompt steps (RL_CU_W16=0|1) and the
#            rope kernel's head groups: the tests that cover them, the
#            prefill profile, 7B Q4_0 prefill by prompt length with the copies
#            off and on (and with the direct products of 65..192-token steps
#            on and off). w16-load: the 64-client 7B load (int8 KV) off and on.
if [ "$PART" = w16 ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1
  export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
  for t in test_cu_kernels test_cu_kvq8 test_cu_paged test_cu_prefill test_cu_mixed test_cu_model; do
    timeout 200 $B/tests/cuda/$t >"$OUT/$t.log" 2>&1; echo "$t rc=$? $(grep -E '^[0-9]+%' "$OUT/$t.log")"
    grep -E ":F:|:E:" "$OUT/$t.log" | head -5
  done
  grep -E "fp16 copies" "$OUT/test_cu_mixed.log" | head -6
  echo "== prefill profile, 7B Q4_0, 512 tokens (rope)"
  timeout 120 $BC --shape llama2-7b --type q4_0 --prompt 512 --prefill-profile 2>&1 | grep -E "rope|per layer"
  M=/tmp/rl-models; mkdir -p $M
  [ -f $M/llama2-7b-q4_0.gguf ] || $B/tools/ringlm-mkmodel --shape llama2-7b --type q4_0 --out $M/llama2-7b-q4_0.gguf --threads 16 >/dev/null
  echo "== 7B Q4_0 prefill tok/s by prompt length: RL_CU_W16 x RL_CU_DIRECT_MAX"
  for n in ${LENS:-96 128 192 256 512}; do for w in 0 1; do for d in 0 512; do
    [ $n -gt 192 ] && [ $d = 512 ] && continue
    echo "prompt $n w16 $w direct_max $d $(RL_CU_W16=$w RL_CU_DIRECT_MAX=$d timeout 120 $B/bench/ringlm-bench model --model $M/llama2-7b-q4_0.gguf --device cuda --prompt $n --gen 8 --json 2>/dev/null | grep -oE '"prefill_tok_s":[0-9.]+')"
  done; done; done
fi
if [ "$PART" = w16-load ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1
  for w in ${LOADW:-0 1 1}; do
    echo "== 64-client load, int8 KV, 512-token steps, RL_CU_W16=$w"
    RL_CU_W16=$w STEPS=512 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA"
    grep -m1 "memory plan" "$OUT/ringlmd-load.log"
  done
fi
#   mv       double-buffered matrix-vector rounds (RL_CU_MV_DB=0|1): the CUDA
#            tests, matvec bandwidth (--kernels), the 7B batch-1 per-op
#            profile and single-stream generation (Q4_0, Q8_0) off and on.
if [ "$PART" = mv ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1
  echo "== cuda tests"
  RL_SHARED_DIR=$PWD/.gpu/shared timeout 400 meson test -C $B --no-rebuild --suite cuda --print-errorlogs >"$OUT/cuda-tests.log" 2>&1
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/cuda-tests.log" | tr '\n' ' '; echo
  grep -E "FAIL|Failure|failed:" "$OUT/cuda-tests.log" | head -10
  for db in 0 1; do echo "== RL_CU_MV_DB=$db --kernels"; RL_CU_MV_DB=$db timeout 120 $BC --kernels 2>&1 | grep -iE "q4_0|q8_0|f16" | head -12; done
  for db in 0 1; do echo "== RL_CU_MV_DB=$db profile 7B Q4_0 batch 1"; RL_CU_MV_DB=$db timeout 120 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --profile 2>&1 | grep -vE "^cuda memory plan" | tail -12; done
  for db in 0 1 0 1; do
    echo "RL_CU_MV_DB=$db $(RL_CU_MV_DB=$db bash $T/gpu-final.sh bench-q4 | grep -oE '"model":"[^"]*"|"gen_tok_s":[0-9.]+' | paste - - | tr '\n' ' ')"
  done
  M=/tmp/rl-models
  for t in q8_0; do [ -f $M/llama2-7b-$t.gguf ] || $B/tools/ringlm-mkmodel --shape llama2-7b --type $t --out $M/llama2-7b-$t.gguf --threads 16 >/dev/null
    for db in 0 1; do echo "7B $t RL_CU_MV_DB=$db $(RL_CU_MV_DB=$db timeout 120 $B/bench/ringlm-bench model --model $M/llama2-7b-$t.gguf --device cuda --prompt 512 --gen 128 --json 2>/dev/null | grep -oE '"(gen_tok_s|prefill_tok_s)":[0-9.]+' | tr '\n' ' ')"; done
  done
fi
#   final    the closing checks: every CUDA test and the transformers check;
#            compute-sanitizer memcheck and racecheck on test_cu_kvq8 (the
#            RoPE kernel's named barriers); the 7B batch-64 engine step (both
#            KV types, twice); single-stream generation and 512-token prefill
#            for TinyLlama Q4_0 and 7B Q4_0, Q8_0, F16.
#   final-load  time to first token and the 64-client 7B load (gpu-s8.sh load).
if [ "$PART" = final ]; then
  bash $T/gpu-final.sh tests || exit 1
  export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
  for tool in memcheck racecheck; do
    timeout 150 compute-sanitizer --tool $tool --error-exitcode 99 $B/tests/cuda/test_cu_kvq8 >"$OUT/$tool-kvq8.log" 2>&1
    echo "$tool test_cu_kvq8: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$tool-kvq8.log" | tr '\n' ' ')"
  done
  for kv in q8_0 f16 q8_0 f16; do
    echo "engine 7B Q4_0 b64 kv $kv $(timeout 150 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 64 --kv $kv --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+')"
  done
  M=/tmp/rl-models; mkdir -p $M
  for st in "tinyllama-1.1b q4_0" "llama2-7b q4_0" "llama2-7b q8_0" "llama2-7b f16"; do set -- $st
    [ -f $M/$1-$2.gguf ] || timeout 200 $B/tools/ringlm-mkmodel --shape $1 --type $2 --out $M/$1-$2.gguf --threads 16 >/dev/null 2>&1
    echo "$1 $2 $(timeout 150 $B/bench/ringlm-bench model --model $M/$1-$2.gguf --device cuda --prompt 512 --gen 128 --json 2>/dev/null | grep -oE '"(gen_tok_s|prefill_tok_s)":[0-9.]+' | tr '\n' ' ')"
  done
fi
if [ "$PART" = final-load ]; then exec bash $T/gpu-s8.sh load; fi
#   plumb    ringlmd --prefill-weights quantized|f16 on the GPU (the memory plan and
#            the 64-client 7B load with each), then 7B Q4_K_M single stream.
if [ "$PART" = plumb ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1
  M=/tmp/rl-models; mkdir -p $M
  [ -f $M/llama2-7b-q4_0.gguf ] || $B/tools/ringlm-mkmodel --shape llama2-7b --type q4_0 --out $M/llama2-7b-q4_0.gguf --threads 16 >/dev/null
  for pw in quantized f16; do
    echo "== --prefill-weights $pw"
    LOAD_ARGS="--prefill-weights $pw" STEPS=512 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA"
    grep -m1 "memory plan" "$OUT/ringlmd-load.log"
  done
  [ -f $M/llama2-7b-q4_k_m.gguf ] || timeout 300 $B/tools/ringlm-mkmodel --shape llama2-7b --type Q4_K_M --out $M/llama2-7b-q4_k_m.gguf --threads 16 >/dev/null
  echo "7B Q4_K_M $(timeout 150 $B/bench/ringlm-bench model --model $M/llama2-7b-q4_k_m.gguf --device cuda --prompt 512 --gen 128 --json 2>/dev/null | grep -oE '"(gen_tok_s|prefill_tok_s|weight_bytes)":[0-9.]+' | tr '\n' ' ')"
fi
#   q6k      Q6_K in 224-byte device slots (aligned 16-byte loads): the tests
#            that cover Q6_K, the matvec bandwidth, 7B Q4_K_M single stream.
if [ "$PART" = q6k ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1
  export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
  for t in test_cu_kernels test_cu_mm test_cu_mmq test_cu_mixed test_cu_model; do
    timeout 200 $B/tests/cuda/$t >"$OUT/$t.log" 2>&1; echo "$t rc=$? $(grep -E '^[0-9]+%' "$OUT/$t.log")"
    grep -E ":F:|:E:" "$OUT/$t.log" | head -5
  done
  timeout 120 $BC --kernels 2>&1 | grep -iE "q4_k|q6_k" | head -8
  M=/tmp/rl-models; mkdir -p $M
  [ -f $M/llama2-7b-q4_k_m.gguf ] || timeout 300 $B/tools/ringlm-mkmodel --shape llama2-7b --type Q4_K_M --out $M/llama2-7b-q4_k_m.gguf --threads 16 >/dev/null
  for i in 1 2; do echo "7B Q4_K_M $(timeout 150 $B/bench/ringlm-bench model --model $M/llama2-7b-q4_k_m.gguf --device cuda --prompt 512 --gen 128 --json 2>/dev/null | grep -oE '"(gen_tok_s|prefill_tok_s)":[0-9.]+' | tr '\n' ' ')"; done
fi
