#!/bin/bash
# gpu-s10.sh - session 10's device calls.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s10.sh PART
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}
T=$(dirname "$0")
BC=$B/bench/ringlm-bench-cuda
PART=${1:-ab}
gen() { grep -oE '"gen_tok_s":[0-9.]+' | head -1; }
#   ab       RMSNorm folded into the matvecs (RL_CU_NORM_FOLD=0|1) and the
#            attention's in-block merge at one block per head
#            (RL_CU_ATTN_DIRECT=0|1): the tests that cover them, single-stream
#            generation and per-op profiles (TinyLlama and 7B Q4_0), the 7B
#            batch-64 engine step and its profile with both KV types.
if [ "$PART" = ab ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
  for t in ${TESTS:-test_cu_kernels test_cu_kvq8 test_cu_paged test_cu_model}; do
    timeout 200 $B/tests/cuda/$t >"$OUT/$t.log" 2>&1; echo "$t rc=$? $(grep -E '^[0-9]+%' "$OUT/$t.log")"
    grep -E ":F:|:E:" "$OUT/$t.log" | head -5
  done
  for sh in tinyllama-1.1b llama2-7b; do
    for f in 0 1 0 1; do
      echo "$sh q4_0 b1 RL_CU_NORM_FOLD=$f $(RL_CU_NORM_FOLD=$f timeout 100 $BC --shape $sh --type q4_0 --batch 1 --prompt 512 --gen 128 --json 2>/dev/null | gen)"
    done
    echo "== profile $sh b1, folded"
    timeout 100 $BC --shape $sh --type q4_0 --batch 1 --prompt 512 --gen 16 --profile 2>&1 | grep -vE "^cuda memory plan" | tail -12
  done
  for kv in q8_0 f16; do
    for d in 0 1 0 1; do
      echo "7B b64 kv $kv RL_CU_ATTN_DIRECT=$d $(RL_CU_ATTN_DIRECT=$d timeout 150 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 64 --kv $kv --json 2>/dev/null | gen)"
    done
    for d in 0 1; do
      echo "== attention profile 7B b64 kv $kv RL_CU_ATTN_DIRECT=$d: $(RL_CU_ATTN_DIRECT=$d timeout 100 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --kv $kv --profile 2>&1 | grep -E "attention|sum" | tr -s ' ' | tr '\n' ' ')"
    done
  done
fi
#   probe    rl_cu_mmt's copies with the weight planes viewed chunk-major
#            (RL_CU_MMT_PROBE=3: copies alone, 4: the whole kernel; wrong
#            results, timing only) against the row-major planes (1, 0) and the
#            products alone (2): the 7B step products at 64 rows. Then the
#            single-stream baselines after the norm fold's revert.
if [ "$PART" = probe ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  for v in 0 1 2 3 4 0 3 4; do echo "RL_CU_MMT_PROBE=$v $(RL_CU_MMT_PROBE=$v timeout 100 $BC --mm --mm-kernel mmw --mm-batch 64 2>&1 | grep -E "^Q4_0 |step matmuls" | tr '\n' ' ')"; done
  for sh in tinyllama-1.1b llama2-7b; do
    echo "$sh q4_0 b1 $(timeout 100 $BC --shape $sh --type q4_0 --batch 1 --prompt 512 --gen 128 --json 2>/dev/null | gen)"
  done
fi
#   dist     rl_cu_mmt's K splits reduced by every rank (RL_CU_MMT_DIST=1)
#            against the last CTA of each tile (0): test_cu_mmq, the 7B step
#            products at 64 rows, the 7B batch-64 engine step with both KV
#            types.
if [ "$PART" = dist ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
  for t in ${TESTS:-test_cu_mmq}; do
    timeout 300 $B/tests/cuda/$t >"$OUT/$t.log" 2>&1; echo "$t rc=$? $(grep -E '^[0-9]+%' "$OUT/$t.log")"
    grep -E ":F:|:E:" "$OUT/$t.log" | head -5
  done
  grep -E "mmt dist" "$OUT/test_cu_mmq.log" | head -4
  for v in 0 1 0 1; do echo "RL_CU_MMT_DIST=$v $(RL_CU_MMT_DIST=$v timeout 100 $BC --mm --mm-kernel mmw --mm-batch 64 2>&1 | grep -E "^Q4_0 |step matmuls" | tr -s ' ' | tr '\n' ' ')"; done
  for kv in q8_0 f16; do for v in 0 1 0 1; do
    echo "7B b64 kv $kv RL_CU_MMT_DIST=$v $(RL_CU_MMT_DIST=$v timeout 150 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 64 --kv $kv --json 2>/dev/null | gen)"
  done; done
fi
#   verify   every CUDA test and the transformers check (gpu-final.sh tests);
#            compute-sanitizer memcheck on test_cu_paged and test_cu_kvq8
#            (the attention's in-block merge).
if [ "$PART" = verify ]; then
  bash $T/gpu-final.sh tests || exit 1
  export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
  for t in test_cu_paged test_cu_kvq8; do
    timeout 150 compute-sanitizer --tool memcheck --error-exitcode 99 $B/tests/cuda/$t >"$OUT/memcheck-$t.log" 2>&1
    echo "memcheck $t: rc=$? $(grep -E 'ERROR SUMMARY|Checks' "$OUT/memcheck-$t.log" | tr '\n' ' ')"
  done
fi
#   prof     per-op profiles of the batch-64 step (7B Q4_0, both KV types).
if [ "$PART" = prof ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  for kv in q8_0 f16; do echo "== profile 7B b64 kv $kv"
    timeout 100 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --kv $kv --profile 2>&1 | grep -vE "^cuda memory plan" | tail -12
  done
fi
#   bar      the warp attention kernel's alternating shared sets (one barrier
#            a chunk; RL_CU_ATTN_BAR2=1 puts the second back): the attention
#            tests and racecheck on them, the batch-64 step (both KV types),
#            single stream.
if [ "$PART" = bar ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
  for t in test_cu_kernels test_cu_kvq8 test_cu_paged; do
    timeout 200 $B/tests/cuda/$t >"$OUT/$t.log" 2>&1; echo "$t rc=$? $(grep -E '^[0-9]+%' "$OUT/$t.log")"
    grep -E ":F:|:E:" "$OUT/$t.log" | head -5
  done
  for t in test_cu_paged test_cu_kvq8; do
    timeout 150 compute-sanitizer --tool racecheck --error-exitcode 99 $B/tests/cuda/$t >"$OUT/racecheck-$t.log" 2>&1
    echo "racecheck $t: rc=$? $(grep -E 'RACECHECK SUMMARY|Checks' "$OUT/racecheck-$t.log" | tr '\n' ' ')"
  done
  for kv in q8_0 f16; do for v in 1 0 1 0; do
    echo "7B b64 kv $kv RL_CU_ATTN_BAR2=$v $(RL_CU_ATTN_BAR2=$v timeout 150 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 64 --kv $kv --json 2>/dev/null | gen)"
  done; done
  for sh in tinyllama-1.1b llama2-7b; do for v in 1 0; do
    echo "$sh q4_0 b1 RL_CU_ATTN_BAR2=$v $(RL_CU_ATTN_BAR2=$v timeout 100 $BC --shape $sh --type q4_0 --batch 1 --prompt 512 --gen 128 --json 2>/dev/null | gen)"
  done; done
fi
#   final    the closing checks: every CUDA test and the transformers check
#            (gpu-final.sh tests), then time to first token and the 64-client
#            7B load with each KV type twice (gpu-s8.sh load), then 256 clients
#            (int8 KV).
if [ "$PART" = final ]; then
  bash $T/gpu-final.sh tests || exit 1
  bash $T/gpu-s8.sh load
  echo "== 256 clients, int8 KV"
  STEPS=512 CLIENTS=256 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA"
fi
#   sample   sampled requests (the library's default sampling: top-k 40 by heap,
#            rows sampled on several threads): the batch and model CUDA suites,
#            then the 7B load (int8 KV, 512-token steps) greedy and sampled, with
#            64 clients and with 1.
if [ "$PART" = sample ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  RL_SHARED_DIR=$PWD/.gpu/shared timeout 300 meson test -C $B --no-rebuild --suite batch --suite model --suite cuda --print-errorlogs >"$OUT/tests.log" 2>&1
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/tests.log" | tr '\n' ' '; echo
  grep -E "FAIL|Failure|failed:" "$OUT/tests.log" | head -10
  for c in 64 1; do for a in "" --sample "" --sample; do
    echo "clients $c ${a:-greedy}: $(BENCH_ARGS="$a" STEPS=512 CLIENTS=$c bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA|^-- step")"
  done; done
fi
#   closing  the final code: every CUDA test and the transformers check, the
#            batch and model suites (sampled requests alone and batched on the
#            CUDA engine), the 64-client 7B load greedy and sampled.
if [ "$PART" = closing ]; then
  bash $T/gpu-final.sh tests || exit 1
  RL_SHARED_DIR=$PWD/.gpu/shared timeout 200 meson test -C $B --no-rebuild --suite batch --suite model --print-errorlogs >"$OUT/tests2.log" 2>&1
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/tests2.log" | tr '\n' ' '; echo
  grep -E "FAIL|Failure|failed:" "$OUT/tests2.log" | head -10
  for a in "" --sample; do
    echo "clients 64 ${a:-greedy}: $(BENCH_ARGS="$a" STEPS=512 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA|^-- step")"
  done
fi
#   review   after the closing review's refactors (the matvec's shared round
#            lambdas, rl_cu_mmt's shared_red, the attention's env switches):
#            the kernel tests that cover them, single-stream and batch-64 steps.
if [ "$PART" = review ]; then
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  export RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no
  for t in test_cu_kernels test_cu_mmq test_cu_paged test_cu_kvq8 test_cu_model; do
    timeout 300 $B/tests/cuda/$t >"$OUT/$t.log" 2>&1; echo "$t rc=$? $(grep -E '^[0-9]+%' "$OUT/$t.log")"
    grep -E ":F:|:E:" "$OUT/$t.log" | head -5
  done
  for sh in tinyllama-1.1b llama2-7b; do
    echo "$sh q4_0 b1 $(timeout 100 $BC --shape $sh --type q4_0 --batch 1 --prompt 512 --gen 128 --json 2>/dev/null | gen)"
  done
  echo "7B q8_0 b1 $(timeout 100 $BC --shape llama2-7b --type q8_0 --batch 1 --prompt 512 --gen 128 --json 2>/dev/null | gen)"
  for kv in q8_0 f16; do
    echo "7B b64 kv $kv $(timeout 150 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 64 --kv $kv --json 2>/dev/null | gen)"
  done
fi
