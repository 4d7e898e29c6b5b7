#!/bin/bash
# gpu-s14.sh - session 14's device calls.
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s14.sh PART
T=$(dirname "$0")
. "$T/gpu-env.sh"
B=${RL_GPU_BUILD:-/tmp/rl-b}
BC=$B/bench/ringlm-bench-cuda
PART=${1:-first}
. "$T/gpu-lib.sh" # left, build, suites, ncu_attn, eng, prof, load1, products
#   first    rl_cu_mmt's refit plan as the default: the cuda and batch suites,
#            products alone, engine steps (7B, TinyLlama, batch 64), three
#            64-client loads with the time spent mapping client regions, one
#            with zero copy off.
if [ "$PART" = first ]; then
  build
  SUITE_S=200 suites --suite cuda --suite batch
  echo "products: $(products)"
  for sh in llama2-7b tinyllama-1.1b; do echo "engine $sh b64: $(eng $sh 64 160 q8_0)"; done
  for i in 1 2 3; do left 430 || break; echo "load: $(load1)"; done
  left 500 && echo "load zero copy off: $(RL_CU_ZEROCOPY=0 load1)"
  echo "elapsed ${SECONDS}s"
fi
#   gaps     where the 64-client load's wall time goes (the worker's and the
#            engine's new counters: passes that stepped, waits, prompt steps),
#            at 512-token steps (twice), then 384 and 256.
if [ "$PART" = gaps ]; then
  build
  for st in 512 512 384 256; do left 480 || break; echo "load $st: $(STEPS=$st load1)"; done
  echo "elapsed ${SECONDS}s"
fi
#   bells    clients woken on rl_bells' thread (the default) against inline
#            (RINGLM_BELL_THREAD=0): the transport and batch suites, then the
#            64-client load alternately.
if [ "$PART" = bells ]; then
  build
  SUITE_S=150 suites --suite transport --suite batch
  for b in 1 0 1 0 1; do left 470 || break; echo "load bells $b: $(RINGLM_BELL_THREAD=$b load1)"; done
  echo "elapsed ${SECONDS}s"
fi
#   timeline batch 1 (TinyLlama, 7B; fp16 KV) and 7B batch 64 (int8 KV): the
#            per-op profile (each op alone) against the step's rate. (Nsight
#            Systems is not installed on the GPU machine.)
if [ "$PART" = timeline ]; then
  build
  for c in "tinyllama-1.1b 1 512 f16" "llama2-7b 1 512 f16" "llama2-7b 64 160 q8_0"; do set -- $c
    echo "== $1 b$2 kv $4: $(eng $1 $2 $3 $4)"
    timeout 60 $BC --shape $1 --type q4_0 --batch $2 --prompt $3 --gen 16 --kv $4 --profile 2>&1 | grep -E "us x|sum" | tr -s ' '
  done
  echo "elapsed ${SECONDS}s"
fi
#   tail     (measures eec9532, reverted: docs/PERFORMANCE.md) the RMSNorm in
#            the last CTA of the one-sequence O and down products
#            (rl_cu_matvec_norm; RL_CU_NORM_TAIL=0: separate launches): the cuda, batch and model suites, hf_check, then
#            single-stream generation alternately, and its per-op profile.
if [ "$PART" = tail ]; then
  build
  SUITE_S=260 suites --suite cuda --suite batch --suite model
  timeout 150 python3 tools/hf_check.py $B/tools/ringlm-logits >"$OUT/hf_check.txt" 2>&1; echo "hf_check rc=$?"
  grep -cE "PASS" "$OUT/hf_check.txt"; grep -E "FAIL" "$OUT/hf_check.txt" | head -4
  for t in 1 0 1 0; do
    left 470 || break
    echo "tail $t: TinyLlama $(RL_CU_NORM_TAIL=$t eng tinyllama-1.1b 1 512 f16) 7B $(RL_CU_NORM_TAIL=$t eng llama2-7b 1 512 f16)"
  done
  echo "elapsed ${SECONDS}s"
fi
#   splits   the decode attention at batch 1 with the chunk count forced
#            (RL_CU_ATTN_SPLITS=N; the default picks ~2 CTAs per SM: 9 for 32
#            heads): per-op attention and generation, TinyLlama and 7B.
if [ "$PART" = splits ]; then
  build
  for sp in 0 1 2 3 4 6 9 16; do
    left 500 || break
    for sh in tinyllama-1.1b llama2-7b; do
      a=$(RL_CU_ATTN_SPLITS=$sp timeout 60 $BC --shape $sh --type q4_0 --batch 1 --prompt 512 --gen 16 --kv f16 --profile 2>&1 | grep -E "attention" | tr -s ' ')
      echo "splits $sp $sh: $a | $(RL_CU_ATTN_SPLITS=$sp eng $sh 1 512 f16)"
    done
  done
  for sp in 0 2 4; do left 540 || break; echo "splits $sp 7B b1 int8 KV: $(RL_CU_ATTN_SPLITS=$sp eng llama2-7b 1 512 q8_0)"; done
  echo "elapsed ${SECONDS}s"
fi
#   perf     where the step thread's time goes between steps in the 64-client
#            load: perf (if installed) on ringlmd's rl-worker thread.
if [ "$PART" = perf ]; then
  build
  PERF=$(command -v perf || ls /usr/lib/linux-tools*/perf /usr/bin/perf* 2>/dev/null | head -1)
  echo "perf: ${PERF:-none}"
  if [ -n "$PERF" ]; then
    M=/tmp/rl-models
    mk_model() { [ -f $M/llama2-7b-q4_0.gguf ] || $B/tools/ringlm-mkmodel --shape llama2-7b --type q4_0 --out $M/llama2-7b-q4_0.gguf --threads 16 >/dev/null; }
    mkdir -p $M; mk_model
    sock=/tmp/rl-perf.sock; rm -f $sock
    $PERF record -F 4999 -g -o $OUT/perf.data -- $B/daemon/ringlmd --model $M/llama2-7b-q4_0.gguf --device cuda --socket $sock --max-clients 300 --step-tokens 512 --kv-type q8_0 2>"$OUT/ringlmd-perf.log" &
    for i in $(seq 1 600); do $B/tools/ringlm --socket $sock info >/dev/null 2>&1 && break; sleep 0.1; done
    timeout 150 $B/bench/ringlm-bench load --socket $sock --clients 64 --requests 2 --prefix 96 --suffix 32 --max-tokens 128 --json | grep -oE '"gen_tok_s":[0-9.]+'
    pkill -TERM -x ringlmd; wait
    $PERF report -i $OUT/perf.data --comm rl-worker --no-children --sort sym -g none 2>/dev/null | grep -E "^ +[0-9]" | head -45
    echo "-- callers (children) on rl-worker"
    $PERF report -i $OUT/perf.data --comm rl-worker --children --sort sym -g none 2>/dev/null | grep -E "^ +[0-9]" | head -30
    rm -f $OUT/perf.data
  fi
  echo "elapsed ${SECONDS}s"
fi
#   closing  the session's closing checks and figures: the cuda, batch,
#            transport and model suites, hf_check, engine steps, single
#            stream, the 64-client load three times, then 256 and 8 clients.
if [ "$PART" = closing ]; then
  build
  SUITE_S=200 suites --suite cuda --suite batch --suite transport --suite model
  timeout 100 python3 tools/hf_check.py $B/tools/ringlm-logits >"$OUT/hf_check.txt" 2>&1; echo "hf_check rc=$? PASS $(grep -c PASS "$OUT/hf_check.txt")"
  echo "engine b64: 7B $(eng llama2-7b 64 160 q8_0) TinyLlama $(eng tinyllama-1.1b 64 160 q8_0)"
  echo "single stream: 7B $(eng llama2-7b 1 512 f16) TinyLlama $(eng tinyllama-1.1b 1 512 f16)"
  for i in 1 2 3; do left 300 || break; echo "load 64: $(load1)"; grep -oE '"client_itl_p99_spread":[0-9.]+|"kv_peak_bytes":[0-9]+|"prefix_hit_rate":[0-9.]+' "$OUT/load.jsonl" | tail -3 | tr '\n' ' '; echo; done
  for c in 256 8; do left 360 || break; echo "load $c: $(CLIENTS=$c load1)"; grep -oE '"client_itl_p99_spread":[0-9.]+|"kv_peak_bytes":[0-9]+' "$OUT/load.jsonl" | tail -2 | tr '\n' ' '; echo; done
  echo "elapsed ${SECONDS}s"
fi
#   small    batches of 2-8 sequences on the dp4a matvec (the default) or on
#            the tensor-core products (RL_CU_MATVEC_MAX=1): engine steps.
if [ "$PART" = small ]; then
  build
  for mx in 8 1; do
    echo "matvec max $mx: 7B b8 $(RL_CU_MATVEC_MAX=$mx eng llama2-7b 8 160 q8_0) b4 $(RL_CU_MATVEC_MAX=$mx eng llama2-7b 4 160 q8_0) b2 $(RL_CU_MATVEC_MAX=$mx eng llama2-7b 2 160 q8_0) TinyLlama b8 $(RL_CU_MATVEC_MAX=$mx eng tinyllama-1.1b 8 160 q8_0)"
  done
  echo "elapsed ${SECONDS}s"
fi
#   small2   batches of 3+ on the tensor-core products by default: the cuda,
#            batch and e2e suites, then engine steps at 3..8 rows both ways.
if [ "$PART" = small2 ]; then
  build
  SUITE_S=200 suites --suite cuda --suite batch --suite e2e
  for b in 3 8; do
    left 250 || break
    echo "7B b$b: default $(eng llama2-7b $b 160 q8_0) matvec $(RL_CU_MATVEC_MAX=8 eng llama2-7b $b 160 q8_0)"
  done
  left 280 && echo "load 8: $(CLIENTS=8 load1)"
  echo "elapsed ${SECONDS}s"
fi
