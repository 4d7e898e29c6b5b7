#!/bin/bash
# gpu-prof.sh - one device call that explains where the batched and the
# single-stream kernels lose time: per-matrix times of rl_cu_mmq at every
# batch, Nsight Compute reports of chosen launches, and the SASS of the
# batch-64 mmq kernel.
#   source .device/setup.sh && bash tools/gpu-prof.sh
# Everything goes to $OUT (or /tmp/gpu-out); a short summary is printed last.
. "$(dirname "$0")/gpu-env.sh"
B=/tmp/rl-prof
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
echo "== build"
[ -f $B/build.ninja ] || meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; exit 1; }
ninja -C $B -j16 bench/ringlm-bench-cuda >>"$OUT/build.log" 2>&1 \
  || { grep -E "error|FAILED" "$OUT/build.log" | head -30; exit 1; }
O=$(ls $B/kernels/cuda/librlcuda.a.p/*rl_cu_mmq.cu.o | head -1)
cuobjdump -sass -fun '_ZN6rl_mmq5k_mmqILi2ELi8ELb0EEEv9rl_cu_mat9rl_cu_actS2_iii' "$O" >"$OUT/mmq_q4_nt8.sass" 2>&1
echo "sass lines $(wc -l <"$OUT/mmq_q4_nt8.sass"), IMMA $(grep -c IMMA "$OUT/mmq_q4_nt8.sass")"
BC=$B/bench/ringlm-bench-cuda
NCU="ncu --clock-control none --kernel-name-base mangled --launch-count 1"
SEC="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section InstructionStats"
echo "== mmq per matrix (Q4_0, Q8_0)"
timeout 150 $BC --mm --mm-kernel mmq 2>&1 | tee "$OUT/mm_mmq.txt" | grep -E "q4_0 |step" | grep -v "q8_0 " 
echo "== ncu: mmq Q4_0 batch 64 (qkv launch), batch 64 GLU, batch 16"
timeout 120 $NCU --kernel-name regex:'k_mmqILi2ELi8ELb0' --launch-skip 3 $SEC $BC --mm --mm-kernel mmq --mm-batch 64 >"$OUT/ncu_mmq64.txt" 2>&1
timeout 120 $NCU --kernel-name regex:'k_mmqILi2ELi8ELb1' --launch-skip 3 $SEC $BC --mm --mm-kernel mmq --mm-batch 64 >"$OUT/ncu_mmq64glu.txt" 2>&1
timeout 120 $NCU --kernel-name regex:'k_mmqILi2ELi2ELb0' --launch-skip 3 $SEC $BC --mm --mm-kernel mmq --mm-batch 16 >"$OUT/ncu_mmq16.txt" 2>&1
echo "== ncu: batch-1 decode kernels, 7B Q4_0 (attention, down matvec, rmsnorm)"
timeout 150 $NCU --kernel-name regex:'k_attn' --launch-skip 200 $SEC $BC --shape llama2-7b --type q4_0 --prompt 512 --gen 16 --no-graph >"$OUT/ncu_attn.txt" 2>&1
timeout 150 $NCU --kernel-name regex:'k_rmsnorm' --launch-skip 200 $SEC $BC --shape llama2-7b --type q4_0 --prompt 512 --gen 16 --no-graph >"$OUT/ncu_norm.txt" 2>&1
for f in "$OUT"/ncu_*.txt; do
  echo "-- $(basename $f)"
  grep -E "^  [a-zA-Z_].*\(|Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Achieved Occupancy|Issued Ipc Active|No Eligible|Warp Cycles Per Issued|Block Limit|Grid Size|Cluster Size|Dynamic Shared" "$f" | head -16
done
