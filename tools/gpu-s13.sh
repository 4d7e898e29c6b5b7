#!/bin/bash
# gpu-s13.sh - session 13's device calls.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s13.sh PART
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
T=$(dirname "$0")
BC=$B/bench/ringlm-bench-cuda
PART=${1:-first}
. "$T/gpu-lib.sh" # left, build, suites, ncu_attn, eng, prof, load1, products
#   first    session 12's untested work (gpu-s12.sh first: build, the cuda,
#            batch and model suites, a SmolLM-shaped Q4_K_M model on both
#            devices), then where time goes: per-op profiles of the 7B Q4_0
#            batch-64 step (int8 KV) and of batch 1 (7B, TinyLlama), Nsight
#            Compute on the batch-64 int8 decode attention, and one 64-client
#            load with the engine's step statistics.
if [ "$PART" = first ]; then
  bash $T/gpu-s12.sh first
  for c in "llama2-7b 64 160 q8_0" "llama2-7b 1 512 f16" "tinyllama-1.1b 1 512 f16"; do set -- $c
    left 420 || break
    echo "== profile $1 b$2 p$3 kv $4"
    timeout 60 $BC --shape $1 --type q4_0 --batch $2 --prompt $3 --gen 16 --kv $4 --profile 2>&1 | grep -vE "^cuda memory plan" | tail -13
  done
  if left 450; then
    echo "== ncu: decode attention 7B batch 64 position ~160 int8 KV"
    timeout 100 ncu --clock-control none --kernel-name-base mangled --kernel-name regex:'attn' --launch-skip 40 --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
      -o $OUT/attn-64-q8 -f $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --kv q8_0 >"$OUT/ncu-attn.log" 2>&1; echo "ncu rc=$?"
    ncu -i $OUT/attn-64-q8.ncu-rep --page details >"$OUT/attn-64-q8.txt" 2>&1
    grep -E "attn|Duration|DRAM Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Warp Cycles Per Issued|Stall|Grid Size|Waves" "$OUT/attn-64-q8.txt" | head -24
  fi
  if left 500; then
    echo "== 64 clients, 7B Q4_0, int8 KV, 512-token steps"
    STEPS=512 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA"
  fi
  echo "elapsed ${SECONDS}s"
fi
#   ncu      Nsight Compute on the warp decode-attention kernel, 7B batch 64,
#            int8 and fp16 KV: speed of light, warp states, instruction mix,
#            and the per-instruction stall samples (SASS csv).
if [ "$PART" = ncu ]; then
  build
  for kv in q8_0 f16; do
    echo "== ncu: k_attn_warp 7B batch 64 position ~160 KV $kv"
    ncu_attn attnw-$kv $kv
  done
  echo "elapsed ${SECONDS}s"
fi
#   rows     the warp decode-attention kernel addressing each warp's rows of a
#            chunk from one block-table lookup, every row load issued before
#            any is waited for: the cuda suite, then per-op attention at
#            batch 64 (int8, fp16 KV) and batch 1, engine steps, the 64-client
#            load (int8 KV), and Nsight Compute on the int8 kernel again.
if [ "$PART" = rows ]; then
  build
  SUITE_S=240 suites --suite cuda
  for c in "llama2-7b 64 160 q8_0" "llama2-7b 64 160 f16" "llama2-7b 1 512 f16" "llama2-7b 1 512 q8_0" "tinyllama-1.1b 1 512 f16"; do
    left 330 || break; echo "$c: $(prof $c "^ *attention")"
  done
  for c in "llama2-7b 64 160 q8_0" "llama2-7b 64 160 f16" "llama2-7b 1 512 f16" "tinyllama-1.1b 1 512 f16"; do set -- $c
    left 380 || break
    echo "engine $c: $(eng $1 $2 $3 $4)"
  done
  if left 430; then
    echo "== 64 clients, 7B Q4_0, int8 KV, 512-token steps"
    STEPS=512 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA"
  fi
  if left 480; then
    timeout 100 ncu --clock-control none --kernel-name-base mangled --kernel-name regex:'k_attn_warp' --launch-skip 40 --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section WarpStateStats --section InstructionStats --section SourceCounters \
      -o $OUT/attnw2 -f $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --kv q8_0 >"$OUT/ncu.log" 2>&1; echo "ncu rc=$?"
    ncu -i $OUT/attnw2.ncu-rep --page details >"$OUT/attnw2.txt" 2>&1
    ncu -i $OUT/attnw2.ncu-rep --page source --csv --print-source sass >"$OUT/attnw2-sass.csv" 2>&1
    grep -E "Duration|DRAM Throughput|Issue Slots Busy|Warp Cycles Per Issued|Executed Instructions  " "$OUT/attnw2.txt" | head -8
  fi
  echo "elapsed ${SECONDS}s"
fi
#   closing  the final code: every CUDA test and the transformers check
#            (gpu-final.sh tests), the batch/model/e2e suites, compute-sanitizer
#            memcheck and racecheck on the paged and int8 KV attention tests,
#            then the 64-client 7B load (int8 KV) greedy with zero copy on and
#            off alternately, and sampled.
if [ "$PART" = closing ]; then
  bash $T/gpu-final.sh tests || exit 1
  export RL_SHARED_DIR=$PWD/.gpu/shared
  SUITE_S=200 suites --suite batch --suite model --suite e2e
  for t in test_cu_paged test_cu_kvq8; do for tool in memcheck racecheck; do
    left 330 || break
    CK_FORK=no timeout 120 compute-sanitizer --tool $tool --error-exitcode 99 $B/tests/cuda/$t >"$OUT/$tool-$t.log" 2>&1
    echo "$tool $t: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$tool-$t.log" | tr '\n' ' ')"
  done; done
  for a in "1 " "0 " "1 " "1 --sample"; do set -- $a; shift; z=${a%% *}
    left 520 || break
    echo "clients 64 RL_CU_ZEROCOPY=$z ${*:-greedy}: $(RL_CU_ZEROCOPY=$z BENCH_ARGS="$*" STEPS=512 bash $T/gpu-final.sh load-steps | grep -vE "^==|NVIDIA|^-- step")"
  done
  echo "elapsed ${SECONDS}s"
fi
#   tc       int8 decode attention on tensor cores (rl_cu_attn_tc.cuh; run
#            when it was the default: RL_CU_ATTN_TC=0 gave the CUDA-core
#            kernel; now opt-in, so TC=0 and TC=1 still compare them): the attention tests, the
#            cuda suite, per-op attention and engine steps both ways, the
#            64-client load (int8 KV) both ways.
if [ "$PART" = tc ]; then
  build
  ok=1
  for t in test_cu_kvq8 test_cu_kernels test_cu_paged; do
    CK_FORK=no timeout 100 $B/tests/cuda/$t >"$OUT/$t.log" 2>&1; rc=$?
    echo "$t rc=$rc $(grep -E '^[0-9]+%' "$OUT/$t.log")"; [ $rc = 0 ] || ok=0
    grep -E "Failure|failed|:F:|:E:" "$OUT/$t.log" | head -5
  done
  [ $ok = 1 ] || exit 1
  SUITE_S=200 suites --suite cuda --suite batch
  for tc in 1 0; do
    for c in "llama2-7b 64 160 q8_0" "llama2-7b 1 512 q8_0"; do
      left 330 || break; echo "RL_CU_ATTN_TC=$tc $c: $(RL_CU_ATTN_TC=$tc prof $c "^ *attention")"
    done
    left 360 || break
    echo "engine RL_CU_ATTN_TC=$tc 7B b64 q8_0: $(RL_CU_ATTN_TC=$tc eng llama2-7b 64 160 q8_0)"
  done
  for tc in 1 0 1; do
    left 480 || break
    echo "load RL_CU_ATTN_TC=$tc: $(RL_CU_ATTN_TC=$tc load1)"
  done
  echo "elapsed ${SECONDS}s"
fi
#   tcncu    Nsight Compute on both int8 decode-attention kernels (7B batch
#            64): warp states, instruction counts, memory.
if [ "$PART" = tcncu ]; then
  build
  for tc in 1 0; do
    echo "== ncu RL_CU_ATTN_TC=$tc"
    RL_CU_ATTN_TC=$tc ncu_attn tc$tc q8_0
  done
  echo "elapsed ${SECONDS}s"
fi
#   final    the committed code: the attention tests (the tensor-core chunk
#            among them, forced), the cuda and batch suites, per-op attention,
#            the engine step, three 64-client loads (int8 KV).
if [ "$PART" = final ]; then
  build
  SUITE_S=200 suites --suite cuda --suite batch
  grep -E "test_cu_kvq8" "$OUT/tests.log" | head -2
  echo "b64 q8_0: $(prof llama2-7b 64 160 q8_0 "^ *attention")"
  echo "engine 7B b64 q8_0: $(eng llama2-7b 64 160 q8_0)"
  for i in 1 2 3; do
    left 480 || break
    echo "load: $(load1)"
  done
  echo "elapsed ${SECONDS}s"
fi
#   live     client regions mapped at connect (rl_worker_conn_live): the cuda,
#            batch and e2e suites, then the 64-client load (int8 KV) with zero
#            copy on, off, on, on.
if [ "$PART" = live ]; then
  build
  SUITE_S=240 suites --suite cuda --suite batch --suite e2e --suite transport
  for z in 1 0 1 1; do
    left 500 || break
    echo "load RL_CU_ZEROCOPY=$z: $(RL_CU_ZEROCOPY=$z load1)"
  done
  echo "elapsed ${SECONDS}s"
fi
#   lazy     the 64-client load with CUDA's lazy module loading (the default)
#            against CUDA_MODULE_LOADING=EAGER, alternately: do the slow runs
#            (ITL p99 ~41 ms, TTFT p99 ~200 ms) come from kernels loaded on
#            first use inside the load?
if [ "$PART" = lazy ]; then
  build
  for ml in LAZY EAGER LAZY EAGER; do
    left 500 || break
    echo "load CUDA_MODULE_LOADING=$ml: $(CUDA_MODULE_LOADING=$ml load1)"
    grep -E "cuda memory plan|warm|ready" "$OUT/ringlmd-load.log" | head -3
  done
  echo "elapsed ${SECONDS}s"
fi
#   plan     rl_cu_mmt's plans at 64 rows: products alone (--mm, per matrix)
#            for warpgroups 2/3/4 (RL_CU_MMT) x K splits (RL_CU_MMT_SPLIT).
if [ "$PART" = plan ]; then
  build
  for v in "auto 0" "4 8" "4 4" "4 2" "3 8" "3 4" "3 2" "2 8" "2 4" "2 2" "3 6" "4 6"; do set -- $v
    left 400 || break
    mt=$1; [ $mt = auto ] && mt=
    echo "wg $1 split $2: $(RL_CU_MMT=$mt RL_CU_MMT_SPLIT=$2 products)"
  done
  echo "elapsed ${SECONDS}s"
fi
#   plan2    rl_cu_mmt's refit plan (RL_CU_MMT_PLAN=13: 2 warpgroups allowed,
#            activations weighed at 8 K, the shared reduction half a chunk
#            per rank) against session 8's (the default; =8): test_cu_mmq and
#            the cuda suite, products alone, per-op profile, engine steps (7B
#            and TinyLlama at batch 64), and the 64-client 7B load. (Its one
#            run so far measured a first refit that still picked session 8's
#            plans for 7B: the same kernels both ways. The refit as it is now
#            has not run.)
if [ "$PART" = plan2 ]; then
  build
  SUITE_S=200 suites --suite cuda --suite batch
  for pl in 13 8; do
    left 250 || break
    echo "plan $pl products: $(RL_CU_MMT_PLAN=$pl products)"
    echo "plan $pl profile: $(RL_CU_MMT_PLAN=$pl timeout 60 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --kv q8_0 --profile 2>&1 | grep -E "matvec|glu|sum" | tr -s ' ' | tr '\n' ' ')"
    for sh in llama2-7b tinyllama-1.1b; do
      echo "plan $pl engine $sh b64: $(RL_CU_MMT_PLAN=$pl eng $sh 64 160 q8_0)"
    done
  done
  for pl in 13 8 13; do
    left 500 || break
    echo "load plan $pl: $(RL_CU_MMT_PLAN=$pl load1)"
  done
  echo "elapsed ${SECONDS}s"
fi
