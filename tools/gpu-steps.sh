#!/bin/bash
# gpu-steps.sh - where a GPU step spends its time, per op, at the batch sizes
# that matter: 1 (single stream), 20 (a 20-token prompt: time to first token),
# 64 (64 clients). Each op timed alone as a graph of 64 launches
# (ringlm-bench-cuda --profile). Optionally the CUDA test suite first.
# Part "split": rl_cu_mmh's K split through the workspace against clusters.
# Part "mms": the small-batch kernel rl_cu_mms against rl_cu_mmh.
# Part "mmw": the wgmma kernel rl_cu_mmw against rl_cu_mmh at 33..64 rows.
# Part "attn": Nsight Compute on the decode attention at batch 64 and 1.
# Part "attnw": the warp decode-attention kernel against the block kernel.
# Part "mmt": rl_cu_mmw's TMA pipeline (rl_cu_mmt) against its register one;
# "mmt-probe" (copies or products alone), "mmt-mc" (multicast pairs),
# "mmt-stall" (Nsight Compute on it).
#   source .device/setup.sh && bash tools/gpu-steps.sh [tests|split|profile]...
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-steps}
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
echo "== build"
[ -f $B/build.ninja ] || meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; exit 1; }
ninja -C $B -j16 >>"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head -30; exit 1; }
want() { for a in "${ARGS[@]}"; do [ "$a" = "$1" ] && return 0; done; return 1; }
ARGS=("$@"); [ $# -eq 0 ] && ARGS=(profile)
if want tests; then
  echo "== cuda tests"
  RL_SHARED_DIR=$PWD/.gpu/shared timeout 400 meson test -C $B --no-rebuild --suite cuda --print-errorlogs >"$OUT/cuda-tests.log" 2>&1
  grep -E "^(Ok|Fail|Skipped|Timeout):" "$OUT/cuda-tests.log" | tr '\n' ' '; echo
  grep -E "FAIL|Failure|failed:" "$OUT/cuda-tests.log" | head -10
fi
BC=$B/bench/ringlm-bench-cuda
prof() { # shape type batch prompt
  echo "== profile $1 $2 batch $3 (position ~$4)"
  timeout 150 $BC --shape $1 --type $2 --batch $3 --prompt $4 --gen 16 --profile 2>&1 | grep -vE "^cuda memory plan" | tail -14
}
if want split; then
  echo "== test_cu_mmq"
  timeout 200 $B/tests/cuda/test_cu_mmq >"$OUT/test_mmq.log" 2>&1; echo "rc=$? $(grep -E '^[0-9]+%' "$OUT/test_mmq.log")"
  grep -E "mmh split" "$OUT/test_mmq.log" | head -4
  M=/tmp/rl-models; mkdir -p $M
  [ -f $M/tl-q4_0.gguf ] || $B/tools/ringlm-mkmodel --shape tinyllama-1.1b --type q4_0 --out $M/tl-q4_0.gguf --threads 16 >/dev/null
  for red in default cluster workspace; do
    echo "-- reduce $red"
    export RL_CU_MMH_REDUCE=$red
    timeout 120 $BC --mm --mm-kernel mmh 2>&1 | grep step
    timeout 100 $BC --shape tinyllama-1.1b --type q4_0 --batch 20 --prompt 20 --gen 16 --profile 2>&1 | grep -E "matvec|glu|sum"
    timeout 100 $B/bench/ringlm-bench model --model $M/tl-q4_0.gguf --device cuda --prompt 20 --gen 16 --json 2>/dev/null | grep -oE '"ttft_ms":[0-9.]+'
  done
  unset RL_CU_MMH_REDUCE
fi
if want stall; then # where the batch-64 mmh kernel waits, per SASS instruction (Nsight Compute source counters)
  echo "== ncu source counters: mmh Q4_0 batch 64"
  timeout 200 ncu --clock-control none --kernel-name-base mangled --kernel-name regex:'k_mmhILi2ELi6ELi8ELb0E' \
    --launch-skip 3 --launch-count 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight \
    -o $OUT/mmh64 -f $BC --mm --mm-kernel mmh --mm-batch 64 >"$OUT/ncu-run.log" 2>&1; echo "ncu rc=$?"
  ncu -i $OUT/mmh64.ncu-rep --page details >"$OUT/mmh64-details.txt" 2>&1
  grep -E "Duration|Warp Cycles Per Issued|Stall|Issued Ipc" "$OUT/mmh64-details.txt" | head -20
  ncu -i $OUT/mmh64.ncu-rep --page source --csv --print-source sass >"$OUT/mmh64-sass.csv" 2>&1; echo "sass csv rc=$? lines $(wc -l <"$OUT/mmh64-sass.csv")"
  head -2 "$OUT/mmh64-sass.csv" | cut -c1-600
fi
if want mmw; then # the wgmma kernel (rl_cu_mmw) against rl_cu_mmh at 40..64 rows
  echo "== test_cu_mmq (rl_cu_mmw vs rl_cu_mmh)"
  CK_FORK=no timeout 150 $B/tests/cuda/test_cu_mmq 2>&1 | grep -E "mmw vs mmh.*vs|Checks|:F:|:E:" | head -12
  echo "== 7B Q4_0 step products (ringlm-bench-cuda --mm)"
  for k in mmh mmw; do timeout 150 $BC --mm --mm-kernel $k 2>&1 | grep -E "^Q4_0 .* (48|64) |step matmuls.*batch (48|64)"; done
  for c in "3 1" "4 1" "3 2"; do set -- $c; echo "RL_CU_MMW_WG=$1 RL_CU_MMW_MT=$2"
    RL_CU_MMW_WG=$1 RL_CU_MMW_MT=$2 timeout 150 $BC --mm --mm-kernel mmw --mm-batch 64 2>&1 | grep -E "^Q4_0 |step matmuls"; done
  echo "== 7B Q4_0 engine step at batch 64, RL_CU_MMW=0 / default, twice"
  for v in 0 auto 0 auto; do
    echo "RL_CU_MMW=$v $(RL_CU_MMW=$v timeout 150 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+')"
  done

  prof llama2-7b q4_0 64 160
fi
if want mmt; then # rl_cu_mmw's TMA pipeline (rl_cu_mmt) against its register pipeline (RL_CU_MMT=0)
  echo "== test_cu_mmq (rl_cu_mmt and rl_cu_mmw vs rl_cu_mmh)"
  CK_FORK=no timeout 240 $B/tests/cuda/test_cu_mmq >"$OUT/test_mmq.log" 2>&1; echo "rc=$?"
  grep -E "mmt wg.*vs|Checks|:F:|:E:" "$OUT/test_mmq.log" | head -40
  echo "== 7B Q4_0 step products at 64 rows (ringlm-bench-cuda --mm --mm-kernel mmw), RL_CU_MMT=0|auto|3|4"
  for v in 0 auto 3 4; do echo "RL_CU_MMT=$v"
    RL_CU_MMT=$v timeout 100 $BC --mm --mm-kernel mmw --mm-batch 64 2>&1 | grep -E "^Q4_0 |step matmuls"; done
  echo "== 7B Q4_0 engine step at batch 64, RL_CU_MMT=0 / default, twice"
  for v in 0 auto 0 auto; do
    echo "RL_CU_MMT=$v $(RL_CU_MMT=$v timeout 150 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 16 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+')"
  done
fi
if want mmt-probe; then # the copies alone (1), the products alone (2), both (0): the 7B step products at 64 rows
  for v in 0 1 2; do echo "RL_CU_MMT_PROBE=$v"
    RL_CU_MMT_PROBE=$v timeout 100 $BC --mm --mm-kernel mmw --mm-batch 64 2>&1 | grep -E "^Q4_0 |step matmuls"; done
fi
if want mmt-mc; then # clusters of two sharing the activation copies (TMA multicast): checked and timed
  echo "== test_cu_mmq"
  CK_FORK=no timeout 300 $B/tests/cuda/test_cu_mmq >"$OUT/test_mmq.log" 2>&1; echo "rc=$? $(grep -E '^[0-9]+%' "$OUT/test_mmq.log")"
  grep -E "mmt wg.* mc2 vs.*float64|:F:|:E:" "$OUT/test_mmq.log" | head -12
  for v in 1 2 1 2; do echo "RL_CU_MMT_MC=$v"
    RL_CU_MMT_MC=$v timeout 100 $BC --mm --mm-kernel mmw --mm-batch 64 2>&1 | grep -E "^Q4_0 |step matmuls"; done
  for p in 1 2; do echo "RL_CU_MMT_MC=2 RL_CU_MMT_PROBE=$p $(RL_CU_MMT_MC=2 RL_CU_MMT_PROBE=$p timeout 100 $BC --mm --mm-kernel mmw --mm-batch 64 2>&1 | grep -E "step matmuls")"; done
  for v in 1 2 1 2; do
    echo "RL_CU_MMT_MC=$v $(RL_CU_MMT_MC=$v timeout 150 $BC --shape llama2-7b --type q4_0 --batch 64 --prompt 160 --gen 64 --kv q8_0 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+')"
  done
fi
if want mmt-stall; then # where rl_cu_mmt waits (Nsight Compute), the 7B QKV product at 64 rows
  echo "== ncu: mmt Q4_0 batch 64, the QKV product"
  timeout 200 ncu --clock-control none --kernel-name-base mangled --kernel-name regex:'k_mmt' \
    --launch-skip 2 --launch-count 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight \
    --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy \
    -o $OUT/mmt64 -f $BC --mm --mm-kernel mmw --mm-batch 64 >"$OUT/ncu-run.log" 2>&1; echo "ncu rc=$?"
  ncu -i $OUT/mmt64.ncu-rep --page details >"$OUT/mmt64-details.txt" 2>&1
  grep -E "Duration|Warp Cycles Per Issued|Stall|Issued Ipc|Throughput|Pipe|Grid Size|Registers|Active" "$OUT/mmt64-details.txt" | head -50
  ncu -i $OUT/mmt64.ncu-rep --page source --csv --print-source sass >"$OUT/mmt64-sass.csv" 2>&1; echo "sass csv rc=$? lines $(wc -l <"$OUT/mmt64-sass.csv")"
fi
if want mmw-stall; then # where the batch-64 mmw kernel waits (Nsight Compute)
  echo "== ncu: mmw Q4_0 batch 64, the QKV product"
  timeout 200 ncu --clock-control none --kernel-name-base mangled --kernel-name regex:'k_mmw' \
    --launch-skip 2 --launch-count 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight \
    --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
    -o $OUT/mmw64 -f $BC --mm --mm-kernel mmw --mm-batch 64 >"$OUT/ncu-run.log" 2>&1; echo "ncu rc=$?"
  ncu -i $OUT/mmw64.ncu-rep --page details >"$OUT/mmw64-details.txt" 2>&1
  grep -E "Duration|Warp Cycles Per Issued|Stall|Issued Ipc|Throughput|Pipe|Grid Size|Registers" "$OUT/mmw64-details.txt" | head -40
  ncu -i $OUT/mmw64.ncu-rep --page source --csv --print-source sass >"$OUT/mmw64-sass.csv" 2>&1; echo "sass csv rc=$? lines $(wc -l <"$OUT/mmw64-sass.csv")"
fi
if want attn; then # where the decode attention waits (Nsight Compute), batch 64 (int8 and fp16 KV) and batch 1
  for c in "64 160 q8_0" "64 160 f16" "1 512 f16"; do set -- $c
    echo "== ncu: k_attn 7B Q4_0 batch $1 position ~$2 KV $3"
    timeout 200 ncu --clock-control none --kernel-name-base mangled --kernel-name regex:'6k_attnI' --launch-skip 40 --launch-count 1 \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
      -o $OUT/attn-$1-$3 -f $BC --shape llama2-7b --type q4_0 --batch $1 --prompt $2 --gen 16 --kv $3 >"$OUT/ncu-attn.log" 2>&1; echo "ncu rc=$?"
    ncu -i $OUT/attn-$1-$3.ncu-rep --page details >"$OUT/attn-$1-$3.txt" 2>&1
    grep -E "Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Warp Cycles Per Issued|Stall|Grid Size|Waves" "$OUT/attn-$1-$3.txt" | head -24
  done
fi
if want attnw; then # the warp decode-attention kernel against the block kernel (RL_CU_ATTN_KERNEL)
  echo "== attention tests"
  for t in test_cu_kernels test_cu_kvq8 test_cu_paged; do
    RL_SHARED_DIR=$PWD/.gpu/shared timeout 200 $B/tests/cuda/$t >"$OUT/$t.log" 2>&1; echo "$t rc=$? $(grep -E '^[0-9]+%' "$OUT/$t.log")"
    grep -E "Failure|failed|:F:|:E:" "$OUT/$t.log" | head -5
  done
  for kern in ${ATTN_KERNELS:-block warp}; do
    export RL_CU_ATTN_KERNEL=$kern; echo "-- RL_CU_ATTN_KERNEL=$kern"
    IFS=, read -ra CASES <<<"${ATTN_CASES:-llama2-7b 64 160 q8_0,llama2-7b 64 160 f16,llama2-7b 1 512 f16,tinyllama-1.1b 1 512 f16}"
    for c in "${CASES[@]}"; do set -- $c
      a=$(timeout 150 $BC --shape $1 --type q4_0 --batch $2 --prompt $3 --gen 16 --kv $4 --profile 2>&1 | grep -E "^ *attention" | head -1)
      g=$(timeout 150 $BC --shape $1 --type q4_0 --batch $2 --prompt $3 --gen 64 --kv $4 --json 2>/dev/null | grep -oE '"gen_tok_s":[0-9.]+')
      echo "$1 b$2 p$3 $4: $g | $a"
    done
  done
  unset RL_CU_ATTN_KERNEL
fi
if want mms; then # the small-batch kernel (rl_cu_mms) against rl_cu_mmh at 9..32 rows
  echo "== test_cu_mmq"
  RL_SHARED_DIR=$PWD/.gpu/shared timeout 300 $B/tests/cuda/test_cu_mmq >"$OUT/test_mmq.log" 2>&1; echo "rc=$? $(grep -E '^[0-9]+%' "$OUT/test_mmq.log")"
  grep -E "Failure|failed" "$OUT/test_mmq.log" | head -5; grep -E "mms vs mmh" "$OUT/test_mmq.log" | head -12
  echo "== 7B products, mmh then mms (us per product; step = one decode step's products)"
  for k in mmh mms; do timeout 150 $BC --mm --mm-kernel $k >"$OUT/mm-$k.txt" 2>&1; done
  # type matrix batch: mmh us (plan) | mms us
  awk 'FNR==NR && $4=="mmh" {u[$1" "$2" "$5]=$6; p[$1" "$2" "$5]=$10; next} $4=="mms" && $5<=32 {k=$1" "$2" "$5; printf "%-22s mmh %7.2f (%s) mms %7.2f\n", k, u[k], p[k], $6}' \
    "$OUT/mm-mmh.txt" "$OUT/mm-mms.txt"
  grep -h "step matmuls" "$OUT/mm-mmh.txt" "$OUT/mm-mms.txt" | grep -v "batch 64"
  M=/tmp/rl-models; mkdir -p $M
  [ -f $M/tl-q4_0.gguf ] || $B/tools/ringlm-mkmodel --shape tinyllama-1.1b --type q4_0 --out $M/tl-q4_0.gguf --threads 16 >/dev/null
  for v in 0 1 auto; do
    echo "-- RL_CU_MMS=$v"
    export RL_CU_MMS=$v
    timeout 100 $BC --shape tinyllama-1.1b --type q4_0 --batch 20 --prompt 20 --gen 16 --profile 2>&1 | grep -E "matvec|glu|sum"
    for r in 1 2; do timeout 100 $B/bench/ringlm-bench model --model $M/tl-q4_0.gguf --device cuda --prompt 20 --gen 16 --json 2>/dev/null | grep -oE '"ttft_ms":[0-9.]+'; done
    for b in 9 16 32; do timeout 100 $BC --shape llama2-7b --type q4_0 --batch $b --prompt 160 --gen 16 2>&1 | grep -E "gen" | head -1; done
  done
  unset RL_CU_MMS
fi
want profile || exit 0
prof tinyllama-1.1b q4_0 20 20
prof tinyllama-1.1b q4_0 1 20
prof llama2-7b q4_0 1 512
prof llama2-7b q4_0 64 160
echo "== mmh per matrix, batch 20 and 64"
timeout 120 $BC --mm --mm-kernel mmh --mm-batch 64 2>&1 | grep -E "q4_0|step" | grep -v "q8_0"
