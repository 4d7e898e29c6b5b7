#!/bin/bash
# gpu-s11.sh - session 11's device calls.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s11.sh PART
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}
T=$(dirname "$0")
PART=${1:-topk}
# Build, then test_cu_kernels and the meson suites named ("--suite X ...").
build_and_test() {
  bash $T/gpu-steps.sh build-only >/dev/null 2>&1 || { echo build failed; tail -30 "$OUT/build.log"; exit 1; }
  export RL_SHARED_DIR=$PWD/.gpu/shared
  CK_FORK=no timeout 200 $B/tests/cuda/test_cu_kernels >"$OUT/test_cu_kernels.log" 2>&1
  echo "test_cu_kernels rc=$? $(grep -E '^[0-9]+%' "$OUT/test_cu_kernels.log")"
  grep -E ":F:|:E:" "$OUT/test_cu_kernels.log" | head -5
  timeout 240 meson test -C $B --no-rebuild "$@" --print-errorlogs >"$OUT/tests.log" 2>&1
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/tests.log" | tr '\n' ' '; echo
  grep -E "FAIL|Failure|failed:" "$OUT/tests.log" | head -10
}
#   topk     sampled rows send their k best logits from the device
#            (rl_cu_topk) instead of the row: the kernel test, the sampler and
#            batch suites on the CUDA engine, then the 64-client 7B load with
#            the library's default sampling, candidates on (default) and off
#            (RL_CU_TOPK=0) alternately, and greedy for reference.
if [ "$PART" = topk ]; then
  build_and_test --suite batch --suite model
  for a in "0 --sample" "1 --sample" "0 --sample" "1 --sample" "1 "; do set -- $a
    echo "clients 64 RL_CU_TOPK=$1 ${2:-greedy}: $(RL_CU_TOPK=$1 BENCH_ARGS="${2:-}" STEPS=512 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA|^-- step")"
  done
fi
#   lp       log-probabilities from the device (rl_cu_topk's normalizer with
#            the candidates): the kernel and batch/model suites, then the
#            64-client 7B load sampled with and without --logprobs 5, and
#            greedy with them.
if [ "$PART" = lp ]; then
  build_and_test --suite batch --suite model --suite e2e
  for a in "--sample" "--sample --logprobs 5" "--sample" "--sample --logprobs 5" "--logprobs 5"; do
    echo "clients 64 $a: $(BENCH_ARGS="$a" STEPS=512 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA|^-- step")"
  done
fi
#   closing  the final code: every CUDA test and the transformers check
#            (gpu-final.sh tests), the batch/model/e2e suites, the 64-client
#            7B load greedy with zero copy on and off alternately (the run
#            recorded in docs/PERFORMANCE.md used a worker switch of dd724fa,
#            RL_ZERO_COPY=0; RL_CU_ZEROCOPY=0 has the same effect: no client
#            region is registered), sampled, sampled with --logprobs 5; then
#            compute-sanitizer memcheck and racecheck on the top-k test.
if [ "$PART" = closing ]; then
  bash $T/gpu-final.sh tests || exit 1
  export RL_SHARED_DIR=$PWD/.gpu/shared
  timeout 200 meson test -C $B --no-rebuild --suite batch --suite model --suite e2e --print-errorlogs >"$OUT/tests2.log" 2>&1
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/tests2.log" | tr '\n' ' '; echo
  grep -E "FAIL|Failure|failed:" "$OUT/tests2.log" | head -10
  for a in "1 " "0 " "1 " "0 " "1 --sample" "1 --sample --logprobs 5"; do set -- $a; shift; z=${a%% *}
    echo "clients 64 RL_CU_ZEROCOPY=$z ${*:-greedy}: $(RL_CU_ZEROCOPY=$z BENCH_ARGS="$*" STEPS=512 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA|^-- step")"
  done
  for tool in memcheck racecheck; do
    CK_FORK=no CK_RUN_CASE=topk timeout 120 compute-sanitizer --tool $tool --error-exitcode 99 $B/tests/cuda/test_cu_kernels >"$OUT/$tool-topk.log" 2>&1
    echo "$tool topk: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$tool-topk.log" | tr '\n' ' ')"
  done
fi
