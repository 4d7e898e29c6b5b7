#!/bin/bash
# gpu-s21.sh - session 21's device calls; parts marked "needs" ran code that
# was removed after them.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s21.sh PART
# The old tree (.old, carried) is `git archive` of the commit before the change.
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, suites, ctests, alt, ty, build_pair, ab, ...
PART=${1:-first}
#   first    (old tree: f3134fb) Q6_K rows packed in groups of 8 blocks behind
#            a 16-byte header of their d's (210 bytes a block, the 224-byte
#            slots before) and Q|K in one matrix where only V has another type
#            (Q4_K_M / Q5_K_M layers with a Q6_K V): the CUDA tests that read
#            Q6_K or split layers, then old tree against new, alternating;
#            Q|K fused against not (RL_CU_QK_FUSE=0), alternating.
if [ "$PART" = first ]; then
  build_pair
  ctests test_cu_kernels test_cu_mvb test_cu_mixed
  wait
  for r in 1 2; do
    ab 300 llama2-7b q6_k
    ab 330 llama2-7b q4_k_m
    ab 350 llama2-7b q5_k_m
    ab 370 tinyllama-1.1b q4_k_m
  done
  ab 390 llama2-7b q4_0
  alt RL_CU_QK_FUSE "1 0" 2 430 "ty llama2-7b q4_k_m"
  echo "QK_FUSE=0: $(RL_CU_QK_FUSE=0 ctests test_cu_mixed | tr '\n' ' ')"
  left 470 && ctests test_cu_mm test_cu_mmq test_cu_model test_cu_prefill
  left 520 && ab 540 llama2-7b q4_k_m --batch 4 --prompt 128 --gen 32
  echo "elapsed ${SECONDS}s"
fi
# ncu_mvb NAME TYPE: Nsight Compute on four consecutive rl_cu_mvb launches
# (Q|K|V, O, gate/up, down of one layer, generation) of the 7B single stream
# into $OUT/NAME.*: duration, DRAM throughput, issue and stall figures.
ncu_mvb() {
  timeout 200 ncu --clock-control none --kernel-name-base mangled --kernel-name regex:'k_mvb' --launch-skip 200 --launch-count 4 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
    --section InstructionStats --section SchedulerStats --section SourceCounters \
    -o $OUT/$1 -f $BC --shape llama2-7b --type $2 --batch 1 --prompt 512 --gen 8 --kv f16 >"$OUT/$1-ncu.log" 2>&1; echo "ncu rc=$?"
  ncu -i $OUT/$1.ncu-rep --page details --print-details all >"$OUT/$1.txt" 2>&1
  ncu -i $OUT/$1.ncu-rep --page source --csv --print-source sass >"$OUT/$1-sass.csv" 2>&1
  grep -E "k_mvb|^ +Duration|DRAM Throughput|Warp Cycles Per Issued|Issue Slots Busy|No Eligible|Registers Per" "$OUT/$1.txt" | tr -s ' ' | head -40
}
#   prof     (c0102e2) memcheck on test_cu_mvb (the packed Q6_K rows);
#            per-op profiles of 7B Q4_0, Q4_K, Q6_K, Q4_K_M; Nsight Compute
#            on one layer's rl_cu_mvb products for Q4_0, Q4_K and Q6_K; the
#            batch-4 7B Q4_K_M step with Q|K fused and not.
if [ "$PART" = prof ]; then
  build
  SAN_S=150 memcheck test_cu_mvb
  for t in q4_0 q4_k q6_k q4_k_m; do left 250 && echo "profile 7B $t: $(profT llama2-7b $t)"; done
  alt RL_CU_QK_FUSE "1 0" 2 330 "tps $BC llama2-7b q4_k_m --batch 4 --prompt 128 --gen 32"
  for t in q4_0 q4_k q6_k; do left 480 && ncu_mvb mvb-$t $t; done
  echo "elapsed ${SECONDS}s"
fi
#   krow     (c0102e2 + K-quant rows on 128-byte lines) K-quant rows padded
#            to 128 bytes (RL_CU_KROW128=1, default) against packed rows,
#            alternating; the down product's per-op time either way; the cuda
#            and model suites.
if [ "$PART" = krow ]; then
  build
  ctests test_cu_kernels test_cu_mvb test_cu_mixed
  echo "KROW128=0: $(RL_CU_KROW128=0 ctests test_cu_kernels test_cu_mvb | tr '\n' ' ')"
  alt RL_CU_KROW128 "1 0" 2 300 "ty llama2-7b q4_k"
  alt RL_CU_KROW128 "1 0" 2 360 "ty llama2-7b q4_k_m"
  alt RL_CU_KROW128 "1 0" 1 390 "ty llama2-7b q6_k"
  alt RL_CU_KROW128 "1 0" 1 410 "ty llama2-7b q5_k_m"
  alt RL_CU_KROW128 "1 0" 1 425 "ty tinyllama-1.1b q4_k_m"
  for v in 1 0; do left 445 && echo "KROW128=$v profile 7B q4_k: $(RL_CU_KROW128=$v profT llama2-7b q4_k)"; done
  left 460 && SUITE_S=$((585 - SECONDS)) suites --suite cuda --suite model
  echo "elapsed ${SECONDS}s"
fi
#   krow2    (the same, Q6_K rows packed again) Q4_K and Q5_K rows on
#            128-byte lines against packed, alternating; the down product's
#            per-op time for Q5_K; test_cu_mixed with packed rows.
if [ "$PART" = krow2 ]; then
  build
  ctests test_cu_kernels test_cu_mvb
  echo "KROW128=0: $(RL_CU_KROW128=0 ctests test_cu_mixed | tr '\n' ' ')"
  alt RL_CU_KROW128 "1 0" 3 330 "ty llama2-7b q4_k_m"
  alt RL_CU_KROW128 "1 0" 2 430 "ty llama2-7b q5_k_m"
  alt RL_CU_KROW128 "1 0" 2 480 "ty tinyllama-1.1b q4_k_m"
  for v in 1 0; do left 530 && echo "KROW128=$v profile 7B q5_k: $(RL_CU_KROW128=$v profT llama2-7b q5_k)"; done
  echo "elapsed ${SECONDS}s"
fi
#   final    (old tree: f3134fb) the cuda and model suites; memcheck on
#            test_cu_mvb; every type's single stream on the final code;
#            batch 4 7B Q4_K_M, old tree against new.
if [ "$PART" = final ]; then
  build_pair
  SUITE_S=220 suites --suite cuda --suite model
  SAN_S=100 memcheck test_cu_mvb
  wait
  for s in "llama2-7b q4_0" "llama2-7b q4_k_m" "llama2-7b q4_k" "llama2-7b q5_k_m" "llama2-7b q6_k" "llama2-7b q8_0" \
           "tinyllama-1.1b q4_0" "tinyllama-1.1b q4_k_m"; do
    left 500 || break
    echo "final $s: $(ty $s)"
  done
  for r in 1 2; do ab 560 llama2-7b q4_k_m --batch 4 --prompt 128 --gen 32; done
  echo "elapsed ${SECONDS}s"
fi
#   ab       (old tree: f3134fb) the session's whole change, old tree against
#            new, alternating, per K-quant type.
if [ "$PART" = ab ]; then
  build_pair
  wait
  for r in 1 2 3; do ab 400 llama2-7b q6_k; done
  for r in 1 2; do
    ab 470 llama2-7b q4_k
    ab 490 llama2-7b q5_k_m
    ab 510 llama2-7b q4_k_m
    ab 530 tinyllama-1.1b q4_k_m
  done
  ab 550 tinyllama-1.1b q6_k
  echo "elapsed ${SECONDS}s"
fi
#   q6d      (needs e0399a0, reverted in 32f04d9; old tree: 6e92903) Q6_K's d in a plane of its own and its
#            208-byte blocks in 128-byte-line rows (1,664-byte chunks: whole
#            lines) against the groups of 8 behind a d header; the CUDA
#            tests that read Q6_K; old tree against new.
if [ "$PART" = q6d ]; then
  build_pair
  ctests test_cu_kernels test_cu_mvb test_cu_mixed test_cu_mm
  wait
  ab 215 llama2-7b q6_k
  ab 240 llama2-7b q4_k_m
  ab 255 tinyllama-1.1b q6_k
  ab 280 llama2-7b q6_k
  ab 295 llama2-7b q4_k_m
  echo "elapsed ${SECONDS}s"
fi
