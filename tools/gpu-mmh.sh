#!/bin/bash
# gpu-mmh.sh - one device call for rl_cu_mmh (fp16 tensor-core batched
# products): build, the CUDA test suite, the per-matrix benchmark against
# rl_cu_mmq, an Nsight Compute report of the batch-64 kernel, and the 7B
# batch-64 step with and without it.
#   source .device/setup.sh && bash tools/gpu-mmh.sh [full]
. "$(dirname "$0")/gpu-env.sh"
B=/tmp/rl-mmh
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
echo "== build"
[ -f $B/build.ninja ] || meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; exit 1; }
ninja -C $B -j16 >>"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head -30; exit 1; }
echo "== test_cu_mmq (mmq and mmh)"
timeout 120 $B/tests/cuda/test_cu_mmq >"$OUT/test_mmq.log" 2>&1; rc=$?
echo "test_cu_mmq: rc=$rc $(grep -E '^[0-9]+%' "$OUT/test_mmq.log")"
[ $rc -eq 0 ] || grep -vE "rel err .*\)$" "$OUT/test_mmq.log" | head -20
for k in mmq mmh; do
  grep -E "^$k .*rel err" "$OUT/test_mmq.log" | awk '{print $(NF-3)}' | sort -g | tail -1 | sed "s/^/$k max rel err vs float64: /"
  grep -oE "^$k .*vs matvec [0-9.e+-]+" "$OUT/test_mmq.log" | awk '{print $NF}' | sort -g | tail -1 | sed "s/^/$k max rel diff vs matvec: /"
done
timeout 90 $B/tests/cuda/test_cu_mm >"$OUT/test_mm.log" 2>&1; echo "test_cu_mm: rc=$? $(grep -E '^[0-9]+%' "$OUT/test_mm.log")"
echo "== bench: ringlm-bench-cuda --mm --mm-kernel mmh"
BC=$B/bench/ringlm-bench-cuda
timeout 120 $BC --mm --mm-kernel mmh 2>&1 | tee "$OUT/mm_mmh.txt" | grep -E "step|mmh +64"
for w in 4 6 8; do
  RL_CU_MMH_WARPS=$w timeout 60 $BC --mm --mm-kernel mmh --mm-batch 64 2>&1 | grep step | sed "s/^/warps $w: /"
done
echo "== 7B Q4_0 step, batch 64 (mmh, then RL_CU_MMH=0)"
timeout 120 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 128 --gen 32 2>&1 | grep -vE "^cuda memory plan" | tail -3
RL_CU_MMH=0 timeout 120 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 128 --gen 32 2>&1 | grep -vE "^cuda memory plan" | tail -2
echo "== ncu: mmh Q4_0 batch 64 (qkv launch)"
SEC="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section InstructionStats"
timeout 100 ncu --clock-control none --kernel-name-base mangled --launch-count 1 --kernel-name regex:'k_mmhILi2E' --launch-skip 3 $SEC $BC --mm --mm-kernel mmh --mm-batch 64 >"$OUT/ncu_mmh64.txt" 2>&1
grep -E "^  [a-zA-Z_].*\(|Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Issued Ipc Active|No Eligible|Warp Cycles Per Issued|Grid Size|Cluster Size|Dynamic Shared" "$OUT/ncu_mmh64.txt" | head -14
STALL="--metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__inst_executed.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"
for w in 6 4; do
  RL_CU_MMH_WARPS=$w timeout 100 ncu --clock-control none --kernel-name-base mangled --launch-count 1 --kernel-name regex:'k_mmhILi2E' --launch-skip 3 $STALL $BC --mm --mm-kernel mmh --mm-batch 64 >"$OUT/ncu_stall_w$w.txt" 2>&1
  echo "-- stalls per issued instruction, warps $w (qkv, batch 64):"
  grep -E "stalled|inst_executed|tensor" "$OUT/ncu_stall_w$w.txt" | awk '$NF+0 > 0.05 {sub("smsp__average_warps_issue_stalled_",""); sub("_per_issue_active.ratio",""); print "   ", $1, $NF}'
done
O=$(ls $B/kernels/cuda/librlcuda.a.p/*rl_cu_mmh.cu.o | head -1)
cuobjdump -sass -fun '_ZN6rl_mmh5k_mmhILi2ELi6ELi8ELb0EEEv9rl_cu_mat9rl_cu_actS2_iii' "$O" >"$OUT/mmh_q4_w6_nt8.sass" 2>&1
if [ "${1:-}" = full ]; then
  echo "== cuda tests (meson test --suite cuda)"
  RL_SHARED_DIR=$PWD/.gpu/shared meson test -C $B --no-rebuild --suite cuda --print-errorlogs >"$OUT/cuda-tests.log" 2>&1
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$OUT/cuda-tests.log"
  grep -E "Failure|failed:|Assertion" "$OUT/cuda-tests.log" | head -10
fi
