#!/bin/bash
# gpu-s29.sh - session 29's device calls (an H200).
#   source .device/setup.sh && RL_GPU_BUILD=/tmp/rl-b bash tools/gpu-s29.sh PART
. "$(dirname "$0")/gpu-lib.sh" # T, B, BC, $OUT; left, build, ctests, cfgc, tyc, mkm, memcheck, ...
PART=${1:-final}
# (parts pf and fence ran at 7203f04 and 5d6dba4; both changes were reverted)
# copybw: the device's copy bandwidth (ringlm-bench cuda --copy), median GB/s into BW.
copybw() {
  local j=$($BC --copy --json)
  echo "copy: $j"
  BW=$(echo "$j" | grep -oE '"median_gb_s":[0-9.]+' | cut -d: -f2)
}
# engb NAME PROMPT: the engine's generation and prefill tok/s and roofline fraction at BW.
engb() { timeout 90 $B/bench/ringlm-bench model --model /tmp/rl-models/$1.gguf --device cuda --prompt $2 --gen 128 --bw $BW --json 2>/dev/null | grep -oE '"(gen_tok_s|prefill_tok_s|gen_roofline_frac)":[0-9.]+' | tr '\n' ' '; }
# eng7 LABEL N: the copy bandwidth, then N engine runs on the 7B Q4_0 file from a 1-token prompt (time allowing).
eng7() {
  left 500 && copybw
  left 500 && mkm llama2-7b Q4_0 7b-q4_0
  local r; for r in $(seq $2); do left 560 && echo "engine 7B Q4_0 p1 ($1): $(engb 7b-q4_0 1)"; done
}
C3=("RL_CU_MVB_COPY=row" "RL_CU_MVB_COPY=merge" "RL_CU_MVB_COPY=tma")
#   tma      rl_cu_mvb's tensor-map boxes (a copy per plane and tile for every
#            row width, Q8_0, Q6_K, F16, BF16): its tests in the three copy
#            forms, then row / merge / tma on the 7B and TinyLlama single
#            streams, and the engine. (Ran at 4f19810, where "merge" was the
#            per-tile runs; now RL_CU_MVB_COPY=run, and merge means mix.)
if [ "$PART" = tma ]; then
  build
  ctests test_cu_mvb
  RL_CU_MVB_COPY=row ctests test_cu_mvb
  left 200 && ctests test_cu_model test_cu_mixed
  cfgc llama2-7b q4_0 1 128 2 330 "${C3[@]}"
  cfgc tinyllama-1.1b q4_0 1 128 2 370 "${C3[0]}" "${C3[2]}"
  cfgc llama2-7b q8_0 1 128 1 400 "${C3[0]}" "${C3[2]}"
  cfgc llama2-7b q4_k_m 1 128 1 430 "${C3[0]}" "${C3[2]}"
  cfgc llama2-7b f16 1 128 1 460 "${C3[0]}" "${C3[2]}"
  cfgc llama2-7b q4_0 512 64 1 490 "${C3[1]}" "${C3[2]}"
  eng7 tma 1
  echo "elapsed ${SECONDS}s"
fi
#   mix      the copy forms settled (mix by default: a copy per plane and
#            tile where a row is one chunk, else per row of values and a box
#            of scales): tests in all four forms, then row / run / mix (tma
#            where it differs) on the single streams and the engine.
M=("RL_CU_MVB_COPY=row" "RL_CU_MVB_COPY=run" "RL_CU_MVB_COPY=mix")
if [ "$PART" = mix ]; then
  build
  for cm in mix row run tma; do echo "[$cm] $(RL_CU_MVB_COPY=$cm ctests test_cu_mvb)"; done
  left 200 && ctests test_cu_model test_cu_mixed
  cfgc llama2-7b q4_0 1 128 2 330 "${M[@]}"
  cfgc tinyllama-1.1b q4_0 1 128 2 370 "${M[@]}"
  cfgc llama2-7b q8_0 1 128 1 400 "${M[0]}" "${M[2]}" "RL_CU_MVB_COPY=tma"
  cfgc llama2-7b q4_k_m 1 128 1 430 "${M[0]}" "${M[2]}"
  cfgc tinyllama-1.1b q8_0 1 128 1 450 "${M[0]}" "${M[2]}"
  cfgc llama2-7b q4_0 512 64 1 480 "${M[1]}" "${M[2]}"
  eng7 mix 2
  echo "elapsed ${SECONDS}s"
fi
#   final    the default (mix) settled: the cuda and model suites, memcheck
#            over test_cu_mvb's products (case mvb), every type's single
#            stream, the engine (TinyLlama Q4_0 from 1 token; 7B Q4_0 after
#            a 512-token prompt), the copy bandwidth.
san() {
  CK_RUN_CASE=$3 timeout ${SAN_S:-150} compute-sanitizer --tool $1 $B/tests/cuda/$2 >"$OUT/$1-$2-$3.log" 2>&1
  echo "$1 $2 ($3): rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Checks' "$OUT/$1-$2-$3.log" | tr '\n' ' ')"
}
if [ "$PART" = final ]; then
  build
  copybw
  SUITE_S=200 suites --suite cuda --suite model
  left 250 && SAN_S=120 san memcheck test_cu_mvb mvb
  left 300 && mkm tinyllama-1.1b Q4_0 tl-q4_0 && echo "engine TinyLlama Q4_0 p1: $(engb tl-q4_0 1)"
  left 320 && mkm llama2-7b Q4_0 7b-q4_0 && echo "engine 7B Q4_0 p512: $(engb 7b-q4_0 512)"
  alltypes 570
  echo "elapsed ${SECONDS}s"
fi
#   knobs    the H100's choices re-measured on the H200 with the mix copies:
#            the O product on rl_cu_mvb (RL_CU_MVB_O=1) against the matvec
#            default for Q4_0 / Q8_0 / Q4_K; attention blocks a head
#            (RL_CU_ATTN_SPLITS); TinyLlama's step on the matvec (RL_CU_MVB=0).
if [ "$PART" = knobs ]; then
  build
  cfgc llama2-7b q4_0 1 128 2 250 "RL_CU_MVB_O=-" "RL_CU_MVB_O=1"
  cfgc llama2-7b q8_0 1 128 1 280 "RL_CU_MVB_O=-" "RL_CU_MVB_O=1"
  cfgc llama2-7b q4_k_m 1 128 1 310 "RL_CU_MVB_O=-" "RL_CU_MVB_O=1"
  cfgc tinyllama-1.1b q4_0 1 128 2 350 "RL_CU_MVB_O=-" "RL_CU_MVB_O=1"
  cfgc tinyllama-1.1b q4_0 1 128 2 420 "RL_CU_ATTN_SPLITS=6" "RL_CU_ATTN_SPLITS=8" "RL_CU_ATTN_SPLITS=10" "RL_CU_MVB=0"
  cfgc llama2-7b q4_0 1 128 1 460 "RL_CU_ATTN_SPLITS=6" "RL_CU_ATTN_SPLITS=8" "RL_CU_ATTN_SPLITS=10"
  cfgc llama2-7b q4_0 512 64 1 500 "RL_CU_ATTN_SPLITS=6" "RL_CU_ATTN_SPLITS=10" "RL_CU_ATTN_SPLITS=16"
  echo "elapsed ${SECONDS}s"
fi
#   close    the closing checks: the transformers check, memcheck over
#            test_cu_model, racecheck over test_cu_mvb's products (case mvb:
#            the runs, boxes and copies per row), time to first token through
#            libringlm (gpu-final.sh ttft).
if [ "$PART" = close ]; then
  build
  timeout 200 python3 tools/hf_check.py $B/tools/ringlm-logits >"$OUT/hf_check.txt" 2>&1; echo "hf_check rc=$?"
  grep -E "PASS|FAIL" "$OUT/hf_check.txt" | head -8
  export CK_FORK=no
  left 200 && SAN_S=150 san memcheck test_cu_model model
  left 330 && SAN_S=150 san racecheck test_cu_mvb mvb
  left 420 && RL_GPU_BUILD=$B timeout 150 bash $T/gpu-final.sh ttft 2>&1 | grep -vE "^== build" | tail -12
  echo "elapsed ${SECONDS}s"
fi
#   check    the producer's copies through one helper (put_rows): test_cu_mvb
#            in the four copy forms, the 7B Q4_0 and Q8_0 single streams.
if [ "$PART" = check ]; then
  build
  for cm in mix row run tma; do echo "[$cm] $(RL_CU_MVB_COPY=$cm ctests test_cu_mvb)"; done
  echo "7B q4_0 p1: $(tyc llama2-7b q4_0 1 128) | q8_0 $(tyc llama2-7b q8_0 1 128)"
  echo "elapsed ${SECONDS}s"
fi
#   tl       (for the next session, not run yet) the step timelines with the
#            mix copies: 7B Q4_0 and TinyLlama Q4_0 from an empty context,
#            7B Q4_K_M; where each launch's time goes now.
if [ "$PART" = tl ]; then
  build & build_tl; wait
  for a in "7b llama2-7b q4_0 1 128" "tiny tinyllama-1.1b q4_0 1 128" "7bkm llama2-7b q4_k_m 1 128"; do
    set -- $a; left 450 && { echo "== timeline $*"; tl "$@" | head -40; }
  done
  echo "elapsed ${SECONDS}s"
fi
