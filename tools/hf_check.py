#!/usr/bin/env python3
"""hf_check.py - independent check of ringlm's engines against PyTorch/transformers.

  python3 tools/hf_check.py BUILD/tools/ringlm-logits [--cpu-tol 1e-4] [--cuda-tol 5e-3]

Builds small random LlamaForCausalLM models (GQA; untied and tied output),
writes each as an F32 GGUF with tools/hf_to_gguf.py, runs ringlm-logits on a
fixed random prompt with --device cpu and, when it is built and a GPU is
present, --device cuda, each twice: the whole prompt as one prefill batch, and
the last 4 tokens as decode steps. The reference is transformers' own forward
pass of the same model in float64 on the CPU; errors are the max abs error and
the relative L2 error ||a - b|| / ||b|| of the last position's logits.

Tolerances (relative L2): CPU 1e-4 (F32 weights, F32 KV cache, float32
arithmetic: ~1e-6 expected). CUDA 5e-3: its prefill GEMMs round weights and
activations to fp16 (unit roundoff 4.9e-4) and its KV cache is fp16, so errors
of ~1e-3 are normal; a wrong layout or kernel gives errors of order 0.1..1.
Exit status: 0 all pass, 1 a failure, 2 torch/transformers missing.
"""
import argparse
import math
import os
import random
import subprocess
import sys

sys.dont_write_bytecode = True  # no tools/__pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_to_gguf  # noqa: E402

CONFIGS = [
    dict(name="gqa-untied", vocab_size=512, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
         num_attention_heads=8, num_key_value_heads=4, rms_norm_eps=1e-5, rope_theta=10000.0,
         max_position_embeddings=512, tie_word_embeddings=False, seed=1234),
    dict(name="gqa-tied", vocab_size=512, hidden_size=256, intermediate_size=688, num_hidden_layers=4,
         num_attention_heads=8, num_key_value_heads=4, rms_norm_eps=1e-5, rope_theta=10000.0,
         max_position_embeddings=512, tie_word_embeddings=True, seed=5678),
]
N_TOKENS = 20
N_DECODE = 4


def errors(got, ref):
    num = math.sqrt(sum((a - b) ** 2 for a, b in zip(got, ref)))
    den = math.sqrt(sum(b * b for b in ref))
    return max(abs(a - b) for a, b in zip(got, ref)), num / den


def argmax(v):
    return max(range(len(v)), key=lambda i: v[i])


def build_model(torch, transformers, c):
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "rms_norm_eps", "rope_theta", "max_position_embeddings", "tie_word_embeddings")
    kw = {k: c[k] for k in keys}
    kw.update(hidden_act="silu", attention_bias=False, initializer_range=0.05)
    cfg = transformers.LlamaConfig(**kw)
    try:
        cfg._attn_implementation = "eager"  # plain matmul-softmax attention for the reference
    except Exception:
        pass  # the default (sdpa) is as exact in float64
    torch.manual_seed(c["seed"])
    model = transformers.LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():  # norms away from 1 so that a misplaced norm weight shows
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    return model


def run_engine(exe, path, device, tokens, n_decode):
    cmd = [exe, "--model", path, "--device", device, "--tokens", " ".join(map(str, tokens)),
           "--decode", str(n_decode), "--threads", "4"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def compare_engines(exe, path, name, tokens, ref, cpu_tol, cuda_tol, have_gpu):
    """Run ringlm-logits on both devices and both modes; returns (failures, summary lines)."""
    failures, lines = 0, []
    for device, tol in (("cpu", cpu_tol), ("cuda", cuda_tol)):
        for mode, nd in (("prefill", 0), ("decode", N_DECODE)):
            tag = "%s %s %s" % (name, device, mode)
            rc, out, err = run_engine(exe, path, device, tokens, nd)
            if device == "cuda" and (rc == 3 or not have_gpu):
                lines.append("hf_check %-28s SKIP (%s)" % (tag, "CUDA engine not built" if rc == 3 else "no GPU"))
                print("  " + lines[-1])
                break
            if rc != 0:
                lines.append("hf_check %-28s FAIL: ringlm-logits rc %d: %s" % (tag, rc, err.strip()[-300:]))
                failures += 1
            else:
                got = [float(v) for v in out.split()]
                if len(got) != len(ref) or not all(math.isfinite(v) for v in got):
                    lines.append("hf_check %-28s FAIL: %d values (n_vocab %d) or non-finite" %
                                 (tag, len(got), len(ref)))
                    failures += 1
                else:
                    mx, rel = errors(got, ref)
                    ok = rel < tol
                    failures += not ok
                    lines.append("hf_check %-28s %s  max abs %.3g  rel L2 %.3g  (tol %.0e)  argmax %s" %
                                 (tag, "PASS" if ok else "FAIL", mx, rel, tol,
                                  "same" if argmax(got) == argmax(ref) else "DIFFERS"))
            print("  " + lines[-1])
    return failures, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ringlm_logits")
    ap.add_argument("--cpu-tol", type=float, default=1e-4)
    ap.add_argument("--cuda-tol", type=float, default=5e-3)
    ap.add_argument("--workdir", default=os.environ.get("TMPDIR", "/tmp"))
    a = ap.parse_args()
    try:
        import torch
        import transformers
    except ImportError as e:
        print("hf_check: SKIP: %s (needs torch and transformers)" % e)
        return 2
    print("python %s, torch %s, transformers %s, cuda available %s" %
          (sys.version.split()[0], torch.__version__, transformers.__version__, torch.cuda.is_available()))
    torch.backends.cuda.matmul.allow_tf32 = False
    failures, lines = 0, []
    for c in CONFIGS:
        model = build_model(torch, transformers, c)
        path = os.path.join(a.workdir, "hf_check_%s.gguf" % c["name"])
        hf_to_gguf.write_llama_gguf(path, c, model.state_dict(), "hf-check-" + c["name"])
        rng = random.Random(c["seed"])
        tokens = [1] + [rng.randrange(3, c["vocab_size"]) for _ in range(N_TOKENS - 1)]
        ids = torch.tensor([tokens], dtype=torch.long)
        with torch.no_grad():
            ref32 = model(ids).logits[0, -1].double().tolist()
            ref = model.double()(ids).logits[0, -1].tolist()  # float64 reference of the float32 weights
        _, rel32 = errors(ref32, ref)
        print("\n[%s] %s, tokens: %s" % (c["name"], os.path.basename(path), " ".join(map(str, tokens))))
        print("  transformers float32 vs float64: rel %.3g (the scale of float32 rounding)" % rel32)
        f, l = compare_engines(a.ringlm_logits, path, c["name"], tokens, ref, a.cpu_tol, a.cuda_tol,
                               torch.cuda.is_available())
        failures += f
        lines += l
        os.unlink(path)
    print("\nsummary:")
    for l in lines:
        print(l)
    print("hf_check: %s" % ("PASS" if failures == 0 else "FAIL (%d)" % failures))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
