#!/usr/bin/env python3
"""hf_selftest.py TOOLS_DIR RINGLM_LOGITS [--tied]: tools/hf_to_gguf.py writes a
tiny Llama in transformers' layout (pure Python, no torch) as GGUF; the CPU
engine (ringlm-logits) must load it and give the logits of the pure-Python
float64 transformers-style forward pass (half-split rotary), which proves the
GGUF container, the dimension order and the Q/K rotary row permutation."""
import math
import os
import subprocess
import sys
import tempfile

tools, logits_exe = sys.argv[1], sys.argv[2]
tied = "--tied" in sys.argv[3:]
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "selftest.gguf")
    cmd = [sys.executable, os.path.join(tools, "hf_to_gguf.py"), "--selftest", path, "--ref"]
    if tied:
        cmd.append("--tied")
    ref_out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
    tokens, ref = ref_out[0], [float(v) for v in ref_out[1].split()]
    results = []
    for n_decode in (0, 3):  # the whole prompt as one batch; the last 3 tokens as decode steps
        r = subprocess.run([logits_exe, "--model", path, "--device", "cpu", "--tokens", tokens,
                            "--decode", str(n_decode)], capture_output=True, text=True)
        if r.returncode != 0:
            print("ringlm-logits failed (rc %d): %s" % (r.returncode, r.stderr))
            sys.exit(1)
        results.append((n_decode, [float(v) for v in r.stdout.split()]))
worst = 0.0
for n_decode, got in results:
    if len(got) != len(ref):
        print("got %d logits, expected n_vocab = %d" % (len(got), len(ref)))
        sys.exit(1)
    if not all(math.isfinite(v) for v in got):
        print("non-finite logits")
        sys.exit(1)
    num = math.sqrt(sum((a - b) ** 2 for a, b in zip(got, ref)))
    rel = num / math.sqrt(sum(b * b for b in ref))
    worst = max(worst, rel)
    print("n_vocab %d, tied %s, decode steps %d: max abs err %.3g, rel L2 err %.3g" %
          (len(ref), tied, n_decode, max(abs(a - b) for a, b in zip(got, ref)), rel))
sys.exit(0 if worst < 1e-5 else 1)
