#!/bin/bash
# gpu-s16.sh - session 16's device calls (mvb: prepared in session 15).
# The parts mvb3-mvb6 and ring set measurement switches (RL_CU_MVB_CK, _ML,
# _RING, _FORM, _WARPS, _PF) of commits 7cdff5d..647e749 and of the ring
# commit, gone with the kept form; on later code they measure the kept form.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s16.sh PART
T=$(dirname "$0")
. "$T/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
BC=$B/bench/ringlm-bench-cuda
PART=${1:-mvb}
. "$T/gpu-lib.sh" # left, build, suites, ncu_attn, eng, prof, load1, products
#   mvb      rl_cu_mvb (one-sequence Q4_0 products with the weights streamed
#            by bulk copies; RL_CU_MVB=1) against the default path: its tests
#            (test_cu_mvb, then the cuda and model suites with test_cu_mixed's
#            one-sequence steps on it), single stream alternately, and Nsight
#            Compute on its kernels in the 7B step.
if [ "$PART" = mvb ]; then
  build
  echo "test_cu_mvb: $(timeout 100 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  SUITE_S=200 suites --suite cuda --suite model
  for v in 1 0 1 0; do
    left 400 || break
    echo "mvb $v: TinyLlama b1 $(RL_CU_MVB=$v eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_MVB=$v eng llama2-7b 1 512 f16)"
  done
  if left 420; then
    RL_CU_MVB=1 timeout 150 ncu --clock-control none --kernel-name-base function --kernel-name regex:'k_mvb' --launch-skip 200 --launch-count 8 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
      -o $OUT/mvb-7b -f $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 >"$OUT/mvb-ncu.log" 2>&1; echo "ncu rc=$?"
    ncu -i $OUT/mvb-7b.ncu-rep --page details --print-details all >"$OUT/mvb-7b.txt" 2>&1
    grep -E "^  void|Duration|DRAM Throughput|Memory Throughput|Grid Size|Registers Per|Stall Long|Stall Barrier|Warp Cycles Per Issued" "$OUT/mvb-7b.txt" | tr -s ' ' | head -60
  fi
  echo "elapsed ${SECONDS}s"
fi
#   mvb2     the same after the activation's loads all went in flight at once
#            (prepare_x): test_cu_mvb, the cuda suite, single stream
#            alternately, the kernels' durations under Nsight Compute.
ncu_mvb() { # ncu_mvb NAME: k_mvb's durations and DRAM throughput in the 7B step
  RL_CU_MVB=1 timeout 150 ncu --clock-control none --kernel-name-base function --kernel-name regex:'k_mvb' --launch-skip 200 --launch-count 8 \
    --section SpeedOfLight --section WarpStateStats -o $OUT/$1 -f $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 >"$OUT/$1-ncu.log" 2>&1; echo "ncu rc=$?"
  ncu -i $OUT/$1.ncu-rep --page details --print-details all >"$OUT/$1.txt" 2>&1
  grep -E "^  void|Duration|DRAM Throughput|Warp Cycles Per Issued|Stall Long" "$OUT/$1.txt" | tr -s ' ' | sed -E 's/\(rl_cu_mat.*//' | tr '\n' ' ' | sed 's/ void/\n void/g'; echo
}
if [ "$PART" = mvb2 ]; then
  build
  echo "test_cu_mvb: $(timeout 100 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  SUITE_S=200 suites --suite cuda
  for v in 1 0 1 0; do
    left 400 || break
    echo "mvb $v: TinyLlama b1 $(RL_CU_MVB=$v eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_MVB=$v eng llama2-7b 1 512 f16)"
  done
  left 450 && ncu_mvb mvb2
  echo "elapsed ${SECONDS}s"
fi
#   mvb3     the producer's forms: CK = 64 or 128 blocks per chunk, lane 0
#            alone or a lane per copy (RL_CU_MVB_CK, RL_CU_MVB_ML): the test
#            in each form, single stream per form, ncu durations for two.
if [ "$PART" = mvb3 ]; then
  build
  for f in "64 0" "64 1" "128 0" "128 1"; do
    set -- $f
    echo "test_cu_mvb ck$1 ml$2: $(RL_CU_MVB_CK=$1 RL_CU_MVB_ML=$2 timeout 100 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  done
  for r in 1 2; do
    for f in "64 0" "64 1" "128 0" "128 1"; do
      set -- $f
      left 380 || break
      echo "ck$1 ml$2: TinyLlama b1 $(RL_CU_MVB_CK=$1 RL_CU_MVB_ML=$2 RL_CU_MVB=1 eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_MVB_CK=$1 RL_CU_MVB_ML=$2 RL_CU_MVB=1 eng llama2-7b 1 512 f16)"
    done
    echo "default: TinyLlama b1 $(eng tinyllama-1.1b 1 512 f16) 7B b1 $(eng llama2-7b 1 512 f16)"
  done
  left 450 && RL_CU_MVB_ML=1 ncu_mvb mvb3-ml
  left 500 && RL_CU_MVB_CK=128 RL_CU_MVB_ML=1 ncu_mvb mvb3-128ml
  echo "elapsed ${SECONDS}s"
fi
#   mvb4     CK = 128, whole tiles in one copy per plane where a row is one
#            chunk; 144 KB or 72 KB ring (RL_CU_MVB_RING): the test in each,
#            the cuda and model suites on mvb, single stream alternately, ncu.
if [ "$PART" = mvb4 ]; then
  build
  for r in 144 72; do
    echo "test_cu_mvb ring $r: $(RL_CU_MVB_RING=$r timeout 100 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  done
  RL_CU_MVB=1 SUITE_S=200 suites --suite cuda --suite model
  for r in 1 2; do
    for ring in 144 72; do
      left 400 || break
      echo "mvb ring $ring: TinyLlama b1 $(RL_CU_MVB_RING=$ring RL_CU_MVB=1 eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_MVB_RING=$ring RL_CU_MVB=1 eng llama2-7b 1 512 f16)"
    done
    echo "default: TinyLlama b1 $(eng tinyllama-1.1b 1 512 f16) 7B b1 $(eng llama2-7b 1 512 f16)"
  done
  left 470 && ncu_mvb mvb4
  echo "elapsed ${SECONDS}s"
fi
#   mvb5     test_cu_kernels again (it failed once in mvb4; fresh seeds each
#            run), then the copy forms (RL_CU_MVB_FORM: 0 a copy per row and
#            plane, 1 a tile's scales as one run, 2 form 1 without the
#            arithmetic, timing only): tests, single stream, ncu.
if [ "$PART" = mvb5 ]; then
  build
  for k in 1 2 3 4; do
    timeout 60 $B/tests/cuda/test_cu_kernels >"$OUT/kernels-$k.log" 2>&1
    echo "test_cu_kernels $k: rc=$? $(grep -E 'Checks|:F:|:E:' "$OUT/kernels-$k.log" | head -3)"
  done
  for f in 0 1; do
    echo "test_cu_mvb form $f: $(RL_CU_MVB_FORM=$f timeout 100 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  done
  for r in 1 2; do
    for f in 0 1; do
      left 380 || break
      echo "mvb form $f: TinyLlama b1 $(RL_CU_MVB_FORM=$f RL_CU_MVB=1 eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_MVB_FORM=$f RL_CU_MVB=1 eng llama2-7b 1 512 f16)"
    done
    echo "default: TinyLlama b1 $(eng tinyllama-1.1b 1 512 f16) 7B b1 $(eng llama2-7b 1 512 f16)"
  done
  echo "form 2 (no arithmetic): 7B b1 $(RL_CU_MVB_FORM=2 RL_CU_MVB=1 eng llama2-7b 1 512 f16)"
  left 450 && RL_CU_MVB_FORM=1 ncu_mvb mvb5-f1
  left 510 && RL_CU_MVB_FORM=2 ncu_mvb mvb5-f2
  echo "elapsed ${SECONDS}s"
fi
#   mvb6     16 consumer warps (two per output: RL_CU_MVB_WARPS=16) and the
#            L2 prefetch of the next product's first ring (RL_CU_MVB_PF, on
#            unless 0): tests per form, the suites on mvb, single stream.
mvbrun() { # mvbrun FORM WARPS PF: TinyLlama and 7B single stream on rl_cu_mvb
  echo "form $1 warps $2 pf $3: TinyLlama b1 $(RL_CU_MVB_FORM=$1 RL_CU_MVB_WARPS=$2 RL_CU_MVB_PF=$3 RL_CU_MVB=1 eng tinyllama-1.1b 1 512 f16) 7B b1 $(RL_CU_MVB_FORM=$1 RL_CU_MVB_WARPS=$2 RL_CU_MVB_PF=$3 RL_CU_MVB=1 eng llama2-7b 1 512 f16)"
}
if [ "$PART" = mvb6 ]; then
  build
  for f in "0 8" "0 16" "1 16"; do
    set -- $f
    echo "test_cu_mvb form $1 warps $2: $(RL_CU_MVB_FORM=$1 RL_CU_MVB_WARPS=$2 timeout 100 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  done
  RL_CU_MVB=1 RL_CU_MVB_WARPS=16 SUITE_S=200 suites --suite cuda --suite model
  for r in 1 2; do
    left 420 || break
    mvbrun 0 8 0; mvbrun 0 8 1; mvbrun 0 16 0; mvbrun 0 16 1; mvbrun 1 16 1
    echo "default: TinyLlama b1 $(eng tinyllama-1.1b 1 512 f16) 7B b1 $(eng llama2-7b 1 512 f16)"
  done
  left 480 && { mvbrun 2 16 1; mvbrun 2 8 0; }
  echo "elapsed ${SECONDS}s"
fi
#   final    the kept form (16 consumer warps, a copy per row, on by default
#            for models at least 4,096 wide): tests, suites, compute-sanitizer
#            on test_cu_mvb, single stream default against RL_CU_MVB=0, the
#            per-op profile on both paths.
if [ "$PART" = final ]; then
  build
  echo "test_cu_mvb: $(timeout 100 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  SUITE_S=220 suites --suite cuda --suite model
  for tool in memcheck racecheck synccheck; do
    left 200 || break
    timeout 120 compute-sanitizer --tool $tool $B/tests/cuda/test_cu_mvb >"$OUT/san-$tool.log" 2>&1
    echo "compute-sanitizer $tool: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/san-$tool.log" | tr '\n' ' ')"
  done
  for r in 1 2; do
    left 420 || break
    echo "7B q4_0 b1: default $(timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 64 --kv f16 --json | grep -oE '"step":"[a-z]+"|"gen_tok_s":[0-9.]+' | tr '\n' ' ') RL_CU_MVB=0 $(RL_CU_MVB=0 eng llama2-7b 1 512 f16)"
  done
  echo "TinyLlama q4_0 b1 default: $(timeout 60 $BC --shape tinyllama-1.1b --type q4_0 --batch 1 --prompt 512 --gen 64 --kv f16 --json | grep -oE '"step":"[a-z]+"|"gen_tok_s":[0-9.]+' | tr '\n' ' ')"
  left 470 && echo "7B profile mvb: $(prof llama2-7b 1 512 f16 'matvec|glu|attention|rope|rmsnorm|output')"
  left 500 && echo "7B profile matvec: $(RL_CU_MVB=0 prof llama2-7b 1 512 f16 'matvec|glu|attention|rope|rmsnorm|output')"
  left 530 && echo "7B q8_0 b1: $(timeout 60 $BC --shape llama2-7b --type q8_0 --batch 1 --prompt 512 --gen 64 --kv f16 --json | grep -oE '"step":"[a-z]+"|"gen_tok_s":[0-9.]+' | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   splits   the one-sequence attention's split count (RL_CU_ATTN_SPLITS; the
#            default is 9 for 32 heads on 132 SMs) on the 7B mvb step: tok/s
#            and the attention's us in the profile, f16 and q8_0 KV.
if [ "$PART" = splits ]; then
  build
  for kv in f16 q8_0; do
    for sp in 0 4 16 32; do
      left 400 || break
      e=""; [ $sp -gt 0 ] && e="RL_CU_ATTN_SPLITS=$sp"
      echo "kv $kv splits ${sp/#0/default}: $(env $e eng llama2-7b 1 512 $kv) attention $(env $e timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 16 --kv $kv --profile 2>&1 | grep -E 'attention' | tr -s ' ')"
    done
  done
  left 480 && echo "7B q4_0 b1 prompt 2048: default $(eng llama2-7b 1 2048 f16) splits 32 $(RL_CU_ATTN_SPLITS=32 eng llama2-7b 1 2048 f16)"
  echo "elapsed ${SECONDS}s"
fi
# mvb_checks SECONDS: build, test_cu_mvb, the cuda and model suites,
# compute-sanitizer memcheck on test_cu_mvb (each test run within SECONDS).
mvb_checks() {
  build
  echo "test_cu_mvb: $(timeout $1 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:|skipping' | head -4)"
  SUITE_S=220 suites --suite cuda --suite model
  timeout $(($1 + 20)) compute-sanitizer --tool memcheck $B/tests/cuda/test_cu_mvb >"$OUT/san-memcheck.log" 2>&1
  echo "compute-sanitizer memcheck: rc=$? $(grep -E 'ERROR SUMMARY|Checks' "$OUT/san-memcheck.log" | tr '\n' ' ')"
}
#   q8       rl_cu_mvb for Q8_0 too (64 blocks per chunk: 2 KB copies): the
#            tests, the suites, memcheck, 7B Q8_0 single stream against
#            RL_CU_MVB=0 alternately, its per-op profile, 7B Q4_0 again.
if [ "$PART" = q8 ]; then
  mvb_checks 100
  q8() { timeout 80 $BC --shape llama2-7b --type q8_0 --batch 1 --prompt 512 --gen 64 --kv f16 --json 2>/dev/null | grep -oE '"step":"[a-z]+"|"gen_tok_s":[0-9.]+|"gen_roofline":[0-9.]+' | tr '\n' ' '; }
  for r in 1 2; do
    left 400 || break
    echo "7B q8_0 b1: default $(q8) RL_CU_MVB=0 $(RL_CU_MVB=0 q8)"
  done
  left 440 && echo "7B q4_0 b1 default: $(timeout 60 $BC --shape llama2-7b --type q4_0 --batch 1 --prompt 512 --gen 64 --kv f16 --json | grep -oE '"step":"[a-z]+"|"gen_tok_s":[0-9.]+' | tr '\n' ' ')"
  left 470 && echo "7B q8_0 profile: $(timeout 60 $BC --shape llama2-7b --type q8_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E 'matvec|glu|attention|sum' | tr -s ' ' | tr '\n' ' ')"
  echo "elapsed ${SECONDS}s"
fi
#   f16      rl_cu_mvb for F16 and BF16 too (fp32 x in shared memory, units of
#            8 values): tests, suites, memcheck, 7B F16 / BF16 single stream
#            against RL_CU_MVB=0, Q8_0 and Q4_0 once more.
if [ "$PART" = f16 ]; then
  mvb_checks 150
  ty() { timeout 90 $BC --shape llama2-7b --type $1 --batch 1 --prompt 512 --gen 64 --kv f16 --json 2>/dev/null | grep -oE '"step":"[a-z]+"|"gen_tok_s":[0-9.]+|"gen_roofline":[0-9.]+' | tr '\n' ' '; }
  for r in 1 2; do
    left 380 || break
    echo "7B f16 b1: default $(ty f16) RL_CU_MVB=0 $(RL_CU_MVB=0 ty f16)"
  done
  left 430 && echo "7B bf16 b1: default $(ty bf16) RL_CU_MVB=0 $(RL_CU_MVB=0 ty bf16)"
  left 470 && echo "7B q8_0 b1: $(ty q8_0) q4_0: $(ty q4_0)"
  echo "elapsed ${SECONDS}s"
fi
#   ring     the quantized types' ring at 180 KB (RL_CU_MVB_RING=180: 10
#            stages, GLU 5) against 144 KB: test_cu_mvb and test_cu_mixed
#            both ways, 7B Q4_0 and Q8_0 single stream alternately.
if [ "$PART" = ring ]; then
  build
  for r in 180 144; do
    echo "ring $r: test_cu_mvb $(RL_CU_MVB_RING=$r timeout 100 $B/tests/cuda/test_cu_mvb 2>&1 | grep -E 'Checks|:F:|:E:' | head -3) test_cu_mixed $(RL_CU_MVB_RING=$r timeout 100 $B/tests/cuda/test_cu_mixed 2>&1 | grep -E 'Checks|:F:|:E:' | head -3)"
  done
  ty() { timeout 60 $BC --shape llama2-7b --type $1 --batch 1 --prompt 512 --gen 64 --kv f16 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+' | tr '\n' ' '; }
  for r in 1 2; do
    left 200 || break
    echo "7B q4_0: ring 180 $(RL_CU_MVB_RING=180 ty q4_0) 144 $(ty q4_0)"
  done
  left 220 && echo "7B q8_0: ring 180 $(RL_CU_MVB_RING=180 ty q8_0) 144 $(ty q8_0)"
  echo "elapsed ${SECONDS}s"
fi
