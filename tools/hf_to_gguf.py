#!/usr/bin/env python3
"""hf_to_gguf.py - write a transformers LlamaForCausalLM (config + state_dict)
as a GGUF v3 "llama" file with F32 tensors, for checking ringlm's engines.

The GGUF container is written with the struct module only (no numpy needed);
torch tensors are turned into bytes through numpy when present, else through
array('f').

  python3 tools/hf_to_gguf.py --selftest OUT.gguf   # tiny model, no torch
  (from Python) write_llama_gguf(path, cfg, state_dict, name)

Layout facts used here:
  * GGUF lists dimensions innermost first: ne[0] is the last torch dimension.
  * transformers rotates the two halves of each head (x[i], x[i + d/2]);
    GGUF "llama" (and ringlm's llama path, rope_neox = false) rotates adjacent
    pairs (x[2i], x[2i + 1]). Rows of the Q and K weights are therefore
    reordered per head: GGUF row 2i + j comes from HF row j * d/2 + i.
    V, the output projection and everything else keep their order.
"""
import array
import math
import struct
import sys

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGN = 32
# metadata value types
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
GGML_F32 = 0


class PyTensor:
    """A float32 tensor held as a flat Python list (row-major), for --selftest."""

    def __init__(self, shape, data):
        assert len(data) == math.prod(shape)
        self.shape = list(shape)
        self.data = data


def t_shape(t):
    return list(t.shape)


def t_rows(t, perm):
    """The tensor with its rows (first dimension) taken in the order perm."""
    if isinstance(t, PyTensor):
        cols = math.prod(t.shape[1:])
        data = []
        for p in perm:
            data.extend(t.data[p * cols:(p + 1) * cols])
        return PyTensor(t.shape, data)
    import torch
    return t[torch.tensor(perm, dtype=torch.long)]


def t_bytes(t):
    """Little-endian float32 bytes, row-major."""
    if isinstance(t, PyTensor):
        a = array.array("f", t.data)
    else:
        t = t.detach().to("cpu").float().contiguous()
        try:
            return t.numpy().astype("<f4").tobytes()
        except Exception:  # torch without numpy
            a = array.array("f", t.flatten().tolist())
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def rope_perm(n_head, head_dim):
    """Row order turning HF half-split rotary rows into GGUF adjacent pairs."""
    half = head_dim // 2
    return [h * head_dim + j * half + i for h in range(n_head) for i in range(half) for j in range(2)]


class GGUFWriter:
    def __init__(self):
        self.kv = []       # (key, type, value, elem type for arrays)
        self.tensors = []  # (name, ne (GGUF order), bytes)

    def add(self, key, typ, value, elem=None):
        self.kv.append((key, typ, value, elem))

    def add_tensor(self, name, t):
        data = t_bytes(t)
        ne = list(reversed(t_shape(t)))
        assert len(data) == 4 * math.prod(ne), name
        self.tensors.append((name, ne, data))

    @staticmethod
    def _str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _value(self, typ, v, elem):
        if typ == T_U32:
            return struct.pack("<I", v)
        if typ == T_I32:
            return struct.pack("<i", v)
        if typ == T_F32:
            return struct.pack("<f", v)
        if typ == T_BOOL:
            return struct.pack("<B", 1 if v else 0)
        if typ == T_STR:
            return self._str(v)
        if typ == T_ARR:
            out = [struct.pack("<IQ", elem, len(v))]
            out += [self._value(elem, x, None) for x in v]
            return b"".join(out)
        raise ValueError("unknown type %d" % typ)

    def write(self, path):
        head = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv))]
        for key, typ, v, elem in self.kv:
            head += [self._str(key), struct.pack("<I", typ), self._value(typ, v, elem)]
        offset = 0
        for name, ne, data in self.tensors:
            head += [self._str(name), struct.pack("<I", len(ne)), struct.pack("<%dQ" % len(ne), *ne),
                     struct.pack("<IQ", GGML_F32, offset)]
            offset += (len(data) + ALIGN - 1) // ALIGN * ALIGN
        blob = b"".join(head)
        with open(path, "wb") as f:
            f.write(blob)
            f.write(b"\0" * (-len(blob) % ALIGN))
            for _, _, data in self.tensors:
                f.write(data)
                f.write(b"\0" * (-len(data) % ALIGN))


def synthetic_vocab(n):
    """<unk>, <s>, </s>, byte tokens <0xXX> while room is left, then plain pieces."""
    toks, scores, types = [], [], []
    for i in range(n):
        if i < 3:
            toks.append(["<unk>", "<s>", "</s>"][i])
            types.append(2 if i == 0 else 3)
        elif i < 3 + 256:
            toks.append("<0x%02X>" % (i - 3))
            types.append(6)
        else:
            toks.append("\u2581t%d" % i)
            types.append(1)
        scores.append(-float(i))
    return toks, scores, types


def write_llama_gguf(path, cfg, sd, name="hf-check"):
    """cfg: dict with vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
    num_key_value_heads, intermediate_size, rms_norm_eps, rope_theta,
    max_position_embeddings, tie_word_embeddings. sd: HF state_dict names."""
    n_embd, n_head = cfg["hidden_size"], cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_head
    head_dim = n_embd // n_head
    w = GGUFWriter()
    w.add("general.architecture", T_STR, "llama")
    w.add("general.name", T_STR, name)
    w.add("general.alignment", T_U32, ALIGN)
    w.add("llama.context_length", T_U32, cfg["max_position_embeddings"])
    w.add("llama.embedding_length", T_U32, n_embd)
    w.add("llama.block_count", T_U32, cfg["num_hidden_layers"])
    w.add("llama.feed_forward_length", T_U32, cfg["intermediate_size"])
    w.add("llama.attention.head_count", T_U32, n_head)
    w.add("llama.attention.head_count_kv", T_U32, n_kv)
    w.add("llama.attention.layer_norm_rms_epsilon", T_F32, float(cfg["rms_norm_eps"]))
    w.add("llama.rope.freq_base", T_F32, float(cfg["rope_theta"]))
    w.add("llama.rope.dimension_count", T_U32, head_dim)
    toks, scores, types = synthetic_vocab(cfg["vocab_size"])
    w.add("tokenizer.ggml.model", T_STR, "llama")
    w.add("tokenizer.ggml.tokens", T_ARR, toks, T_STR)
    w.add("tokenizer.ggml.scores", T_ARR, scores, T_F32)
    w.add("tokenizer.ggml.token_type", T_ARR, types, T_I32)
    w.add("tokenizer.ggml.bos_token_id", T_U32, 1)
    w.add("tokenizer.ggml.eos_token_id", T_U32, 2)
    w.add("tokenizer.ggml.unknown_token_id", T_U32, 0)

    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    if not cfg.get("tie_word_embeddings") and "lm_head.weight" in sd:
        w.add_tensor("output.weight", sd["lm_head.weight"])
    qperm, kperm = rope_perm(n_head, head_dim), rope_perm(n_kv, head_dim)
    for il in range(cfg["num_hidden_layers"]):
        p, b = "model.layers.%d." % il, "blk.%d." % il
        w.add_tensor(b + "attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(b + "attn_q.weight", t_rows(sd[p + "self_attn.q_proj.weight"], qperm))
        w.add_tensor(b + "attn_k.weight", t_rows(sd[p + "self_attn.k_proj.weight"], kperm))
        w.add_tensor(b + "attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        w.add_tensor(b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        w.add_tensor(b + "ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        w.add_tensor(b + "ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        w.add_tensor(b + "ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.write(path)


# ---- --selftest: a tiny model from Python floats, and its HF-layout reference ----

SELFTEST_CFG = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, intermediate_size=48, rms_norm_eps=1e-5, rope_theta=10000.0,
                    max_position_embeddings=128, tie_word_embeddings=False)
SELFTEST_TOKENS = [1, 7, 33, 2, 60, 15, 9, 41]


def selftest_state(cfg, seed=12345):
    """Deterministic pseudo-random weights (a 64-bit LCG), in transformers' names and shapes."""
    s = [seed]

    def rnd(shape, scale, base=0.0):
        out = []
        for _ in range(math.prod(shape)):
            s[0] = (s[0] * 6364136223846793005 + 1442695040888963407) & (2 ** 64 - 1)
            u = ((s[0] >> 11) / float(2 ** 53)) * 2 - 1
            out.append(float(array.array("f", [base + scale * u])[0]))  # float32-exact values
        return PyTensor(shape, out)

    E, V, F = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    hd = E // cfg["num_attention_heads"]
    KV = cfg["num_key_value_heads"] * hd
    sd = {"model.embed_tokens.weight": rnd([V, E], 1.0), "model.norm.weight": rnd([E], 0.2, 1.0)}
    if not cfg["tie_word_embeddings"]:
        sd["lm_head.weight"] = rnd([V, E], 0.3)
    for il in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % il
        sd[p + "input_layernorm.weight"] = rnd([E], 0.2, 1.0)
        sd[p + "self_attn.q_proj.weight"] = rnd([E, E], 0.5)
        sd[p + "self_attn.k_proj.weight"] = rnd([KV, E], 0.5)
        sd[p + "self_attn.v_proj.weight"] = rnd([KV, E], 0.3)
        sd[p + "self_attn.o_proj.weight"] = rnd([E, E], 0.3)
        sd[p + "post_attention_layernorm.weight"] = rnd([E], 0.2, 1.0)
        sd[p + "mlp.gate_proj.weight"] = rnd([F, E], 0.3)
        sd[p + "mlp.up_proj.weight"] = rnd([F, E], 0.3)
        sd[p + "mlp.down_proj.weight"] = rnd([E, F], 0.3)
    return sd


def reference_logits(cfg, sd, tokens):
    """The transformers Llama forward pass (half-split rotary) in float64 Python."""
    E, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    nkv, hd, eps = cfg["num_key_value_heads"], E // nh, cfg["rms_norm_eps"]

    def mat(name):
        t = sd[name]
        c = t.shape[1]
        return [t.data[r * c:(r + 1) * c] for r in range(t.shape[0])]

    def mv(m, x):
        return [sum(a * b for a, b in zip(row, x)) for row in m]

    def norm(x, w):
        r = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
        return [v * r * g for v, g in zip(x, w)]

    def rope(vec, n, pos):
        out = list(vec)
        for h in range(n):
            for i in range(hd // 2):
                a = pos * cfg["rope_theta"] ** (-2.0 * i / hd)
                x1, x2 = vec[h * hd + i], vec[h * hd + i + hd // 2]
                out[h * hd + i] = x1 * math.cos(a) - x2 * math.sin(a)
                out[h * hd + i + hd // 2] = x2 * math.cos(a) + x1 * math.sin(a)
        return out

    emb = mat("model.embed_tokens.weight")
    xs = [list(emb[t]) for t in tokens]
    for il in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % il
        wq, wk, wv, wo = (mat(p + "self_attn.%s_proj.weight" % n) for n in "qkvo")
        wg, wu, wd = (mat(p + "mlp.%s_proj.weight" % n) for n in ("gate", "up", "down"))
        ks, vs = [], []
        for pos, x in enumerate(xs):
            h = norm(x, sd[p + "input_layernorm.weight"].data)
            q = rope(mv(wq, h), nh, pos)
            ks.append(rope(mv(wk, h), nkv, pos))
            vs.append(mv(wv, h))
            att = [0.0] * E
            for hh in range(nh):
                g = hh // (nh // nkv)
                sc = [sum(q[hh * hd + d] * k[g * hd + d] for d in range(hd)) / math.sqrt(hd) for k in ks]
                mx = max(sc)
                ex = [math.exp(v - mx) for v in sc]
                tot = sum(ex)
                for d in range(hd):
                    att[hh * hd + d] = sum(e * v[g * hd + d] for e, v in zip(ex, vs)) / tot
            x = [a + b for a, b in zip(x, mv(wo, att))]
            h = norm(x, sd[p + "post_attention_layernorm.weight"].data)
            gate, up = mv(wg, h), mv(wu, h)
            act = [gv / (1.0 + math.exp(-gv)) * uv for gv, uv in zip(gate, up)]
            xs[pos] = [a + b for a, b in zip(x, mv(wd, act))]
    h = norm(xs[-1], sd["model.norm.weight"].data)
    out = mat("model.embed_tokens.weight" if cfg["tie_word_embeddings"] else "lm_head.weight")
    return mv(out, h)


def main(argv):
    if len(argv) >= 2 and argv[0] == "--selftest":
        cfg = dict(SELFTEST_CFG)
        if "--tied" in argv[2:]:
            cfg["tie_word_embeddings"] = True
        sd = selftest_state(cfg)
        write_llama_gguf(argv[1], cfg, sd, "selftest")
        if "--ref" in argv[2:]:  # tokens on one line, reference logits on the next
            print(" ".join(map(str, SELFTEST_TOKENS)))
            print(" ".join("%.17g" % v for v in reference_logits(cfg, sd, SELFTEST_TOKENS)))
        return 0
    sys.stderr.write("usage: hf_to_gguf.py --selftest OUT.gguf [--tied] [--ref]\n"
                     "       (models from transformers: import and call write_llama_gguf; see hf_check.py)\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
