#!/bin/bash
# gpu-s7.sh - session 7's closing device call: every CUDA test and the
# transformers check, compute-sanitizer (memcheck, racecheck) on the paged-KV
# test (which runs the warp decode-attention kernel), the warp kernel against
# the block kernel per op, and the single-stream benchmarks.
# Part "load": time to first token through libringlm and the 64-client 7B
# load with the fp16 and int8 KV caches (two runs each).
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s7.sh [load]
. "$(dirname "$0")/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-final}
T=$(dirname "$0")
if [ "$1" = load ]; then
  bash $T/gpu-final.sh ttft | grep -E "ttft|==" | cut -c1-300
  python3 - "$OUT/load.jsonl" <<'PY' 2>/dev/null
import json, sys
for l in open(sys.argv[1]):
    d = json.loads(l); print("ttft through libringlm:", d["ttft_ms"], "itl", d["itl_ms"])
PY
  rm -f "$OUT/load.jsonl"
  for kv in f16 q8_0 f16 q8_0; do LOAD_ARGS="--kv-type $kv" bash $T/gpu-final.sh attn-load-one >/dev/null 2>&1; done
  python3 - "$OUT/load.jsonl" <<'PY'
import json, sys
for kv, l in zip(["f16", "q8_0", "f16", "q8_0"], open(sys.argv[1])):
    d = json.loads(l)
    print(kv, "gen_tok_s", d["gen_tok_s"], "itl", d["itl_ms"], "ttft", d["ttft_ms"], "spread", d["client_itl_p99_spread"], "kv_peak_bytes", d["kv_peak_bytes"], "steps", d["steps"], "mean_batch", d["mean_batch"])
PY
  exit 0
fi
bash $T/gpu-final.sh tests || exit 1
echo "== compute-sanitizer on test_cu_paged and test_cu_kernels"
for tool in memcheck racecheck; do
  for t in test_cu_paged test_cu_kernels; do
    RL_SHARED_DIR=$PWD/.gpu/shared CK_FORK=no timeout 120 compute-sanitizer --tool $tool --error-exitcode 99 $B/tests/cuda/$t >"$OUT/$tool-$t.log" 2>&1
    echo "$tool $t: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$tool-$t.log" | tr '\n' ' ')"
  done
done
ATTN_KERNELS="block warp" bash $T/gpu-steps.sh attnw | grep -vE "^(==|test_cu|100%)"
bash $T/gpu-final.sh bench-q4 | grep -oE '"model":"[^"]*"|"gen_tok_s":[0-9.]+|"prefill_tok_s":[0-9.]+' | paste - - -
