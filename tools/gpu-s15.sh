#!/bin/bash
# gpu-s15.sh - session 15's device calls.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s15.sh PART
T=$(dirname "$0")
. "$T/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
BC=$B/bench/ringlm-bench-cuda
PART=${1:-norm}
. "$T/gpu-lib.sh" # left, build, suites, ncu_attn, eng, prof, load1, products
# Engine generation tok/s of another type: engt SHAPE TYPE BATCH PROMPT KV.
engt() { timeout 60 $BC --shape $1 --type $2 --batch $3 --prompt $4 --gen 64 --kv $5 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+'; }
#   norm     the RMSNorm deferred into the residual products
#            (rl_cu_matvec_add_norm; RL_CU_NORM_DEFER=0: norm kernels): the
#            cuda and model suites, hf_check, then single-stream and 2-3 row
#            generation alternately, and other 7B types.
if [ "$PART" = norm ]; then
  build
  SUITE_S=200 suites --suite cuda --suite model
  timeout 100 python3 tools/hf_check.py $B/tools/ringlm-logits >"$OUT/hf_check.txt" 2>&1; echo "hf_check rc=$? PASS $(grep -c PASS "$OUT/hf_check.txt")"
  grep -E "FAIL" "$OUT/hf_check.txt" | head -4
  for d in 1 0 1 0; do
    left 430 || break
    echo "defer $d: TinyLlama b1 $(RL_CU_NORM_DEFER=$d eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_NORM_DEFER=$d eng llama2-7b 1 512 f16) b2 $(RL_CU_NORM_DEFER=$d eng llama2-7b 2 512 f16) b3 $(RL_CU_NORM_DEFER=$d eng llama2-7b 3 512 q8_0)"
  done
  for ty in q8_0 f16; do left 520 || break; echo "7B $ty b1: defer $(engt llama2-7b $ty 1 512 f16) off $(RL_CU_NORM_DEFER=0 engt llama2-7b $ty 1 512 f16)"; done
  echo "elapsed ${SECONDS}s"
fi
# ncu on the one-sequence 7B Q4_0 step's matvecs and attention (a layer's
# launches after the first decode step) into $OUT/$1.*: duration, DRAM
# throughput, occupancy, stall reasons per kernel.
ncu_b1() {
  timeout 200 ncu --clock-control none --kernel-name-base function --kernel-name regex:'k_matvec|k_attn|k_rope' --launch-skip 400 --launch-count 14 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    -o $OUT/$1 -f $BC --shape ${2:-llama2-7b} --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 >"$OUT/$1-ncu.log" 2>&1; echo "ncu rc=$?"
  ncu -i $OUT/$1.ncu-rep --page details --print-details all >"$OUT/$1.txt" 2>&1
  grep -E "^  k_|Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Block Size|Grid Size|Warp Cycles Per Issued|Stall Long Scoreboard" "$OUT/$1.txt" | tr -s ' ' | head -120
}
#   norm2    the deferred norm's fixed quantization offsets, one sequence
#            only: the cuda and model suites, hf_check, single stream both
#            ways, then ncu on the 7B step's kernels.
if [ "$PART" = norm2 ]; then
  build
  SUITE_S=200 suites --suite cuda --suite model
  timeout 100 python3 tools/hf_check.py $B/tools/ringlm-logits >"$OUT/hf_check.txt" 2>&1; echo "hf_check rc=$? PASS $(grep -c PASS "$OUT/hf_check.txt")"
  for d in 1 0 1 0; do
    left 330 || break
    echo "defer $d: TinyLlama b1 $(RL_CU_NORM_DEFER=$d eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_NORM_DEFER=$d eng llama2-7b 1 512 f16)"
  done
  left 400 && ncu_b1 b1-7b
  echo "elapsed ${SECONDS}s"
fi
#   close    the session's closing checks: compute-sanitizer memcheck on the
#            kernel and mixed-model tests (the deferred norm's kernels and
#            the one-sequence step), racecheck on the kernel tests, then
#            single stream with the deferred norm and without, 7B Q8_0/F16,
#            and the 7B batch-64 engine step (unchanged path).
if [ "$PART" = close ]; then
  build
  export CK_FORK=no
  for c in "memcheck test_cu_kernels 150" "memcheck test_cu_mixed 170" "racecheck test_cu_kernels 200"; do set -- $c
    left 420 || break
    timeout $3 compute-sanitizer --tool $1 --error-exitcode 99 $B/tests/cuda/$2 $B/tools/ringlm-mkmodel >"$OUT/$1-$2.log" 2>&1
    echo "$1 $2: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$1-$2.log" | tr '\n' ' ')"
  done
  for d in 1 0 1; do
    left 520 || break
    echo "defer $d: TinyLlama b1 $(RL_CU_NORM_DEFER=$d eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_NORM_DEFER=$d eng llama2-7b 1 512 f16)"
  done
  left 540 && echo "7B b1 q8_0 $(engt llama2-7b q8_0 1 512 f16) f16 $(engt llama2-7b f16 1 512 f16); b64 q4_0 $(eng llama2-7b 64 160 q8_0)"
  echo "elapsed ${SECONDS}s"
fi
#   shape    the deferred norm's residual products in other shapes
#            (RL_CU_MV_NORM_SHAPE=1|2: 4|6 units per round, 3: 8 warps x 4
#            rows; 0: 16 warps x 2 rows, 8 units): the kernel tests with 2 and
#            3, then single stream for each, twice.
if [ "$PART" = shape ]; then
  build
  for sh in 2 3; do echo "kernels shape $sh: $(RL_CU_MV_NORM_SHAPE=$sh timeout 60 $B/tests/cuda/test_cu_kernels 2>&1 | grep -E 'Checks|:F:' | head -3)"; done
  for r in 1 2; do
    for sh in 0 1 2 3; do
      left 520 || break
      echo "shape $sh: TinyLlama b1 $(RL_CU_MV_NORM_SHAPE=$sh eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_MV_NORM_SHAPE=$sh eng llama2-7b 1 512 f16) 7B q8_0 $(RL_CU_MV_NORM_SHAPE=$sh engt llama2-7b q8_0 1 512 f16)"
    done
  done
  echo "elapsed ${SECONDS}s"
fi
#   u6       Q4_0's deferred-norm products at 6 units per round (the new
#            default) and the plain one-sequence Q4_0 matvec (Q|K|V, output)
#            at 6 (RL_CU_MV_U=6) against 8: the cuda and model suites, the
#            kernel tests with RL_CU_MV_U=6, then single stream alternately.
if [ "$PART" = u6 ]; then
  build
  SUITE_S=200 suites --suite cuda --suite model
  echo "kernels u6: $(RL_CU_MV_U=6 timeout 60 $B/tests/cuda/test_cu_kernels 2>&1 | grep -E 'Checks|:F:' | head -3)"
  for r in 1 2; do
    for u in 0 6; do
      left 520 || break
      echo "u $u: TinyLlama b1 $(RL_CU_MV_U=$u eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_MV_U=$u eng llama2-7b 1 512 f16)"
    done
  done
  left 540 && echo "norm shape 0 (old): 7B b1 $(RL_CU_MV_NORM_SHAPE=0 eng llama2-7b 1 512 f16); 7B q8_0 $(engt llama2-7b q8_0 1 512 f16)"
  echo "elapsed ${SECONDS}s"
fi
#   prof     the per-op profile of the one-sequence step as it runs now
#            (deferred norms; RL_CU_NORM_DEFER=0: norm kernels), TinyLlama and
#            7B Q4_0, after the cuda suite.
if [ "$PART" = prof ]; then
  build
  SUITE_S=150 suites --suite cuda
  for sh in tinyllama-1.1b llama2-7b; do
    for d in 1 0; do
      left 520 || break
      echo "== $sh defer $d: $(RL_CU_NORM_DEFER=$d eng $sh 1 512 f16)"
      RL_CU_NORM_DEFER=$d timeout 60 $BC --shape $sh --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E "profile|us x|sum" | tr -s ' '
    done
  done
  echo "elapsed ${SECONDS}s"
fi
#   ssv      the deferred norm's sums loaded into registers without waiting
#            (the products that read a deferred norm were 0.5-1 us slower):
#            the cuda and model suites, single stream with and without the
#            deferred norms alternately, the 7B per-op profile.
if [ "$PART" = ssv ]; then
  build
  SUITE_S=200 suites --suite cuda --suite model
  for d in 1 0 1 0; do
    left 420 || break
    echo "defer $d: TinyLlama b1 $(RL_CU_NORM_DEFER=$d eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_NORM_DEFER=$d eng llama2-7b 1 512 f16)"
  done
  left 440 && timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E "us x|sum" | tr -s ' '
  echo "elapsed ${SECONDS}s"
fi
