#!/bin/bash
# gpu-bench.sh - engine-level benchmarks only (after tools/gpu-final.sh built /tmp/rl-final):
#   source .device/setup.sh && bash tools/gpu-bench.sh
. "$(dirname "$0")/gpu-env.sh"
B=/tmp/rl-final; M=/tmp/rl-models; mkdir -p $M
[ -f $B/build.ninja ] || meson setup $B -Dbuildtype=release -Dcuda=enabled -Dwerror=false >"$OUT/setup.log" 2>&1
ninja -C $B -j16 bench/ringlm-bench tools/ringlm-mkmodel >"$OUT/build.log" 2>&1 || { grep -E "error|FAILED" "$OUT/build.log" | head; exit 1; }
for s in "tinyllama-1.1b q4_0" "tinyllama-1.1b q8_0" "tinyllama-1.1b f16" "llama2-7b q4_0" "llama2-7b q8_0"; do
  set -- $s
  [ -f $M/$1-$2.gguf ] || $B/tools/ringlm-mkmodel --shape $1 --type $2 --out $M/$1-$2.gguf --threads 16 >/dev/null 2>>"$OUT/mk.log"
  for p in 512 20; do
    timeout 120 $B/bench/ringlm-bench model --model $M/$1-$2.gguf --device cuda --prompt $p --gen 128 --json 2>>"$OUT/bench.err"
  done
  rm -f $M/llama2-7b-q4_0.gguf.unused
done | tee "$OUT/bench.jsonl"
