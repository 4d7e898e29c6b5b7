#!/usr/bin/env python3
"""Differential check of the hand-written pre-tokenizers against the regular
expressions they implement, run by the `regex` module (which knows \\p{L} etc.).

Usage: python3 tests/tokenizer/pre_regex_diff.py SEED MAXLEN DRIVER
  e.g. python3 tests/tokenizer/pre_regex_diff.py 1 40 build/tests/tokenizer/tok_pre_driver
Prints the number of mismatches per rule set (RL_PRE_* value) and a few examples.
Each expression list is applied in turn; each expression splits every current
segment into matches and the gaps between them.
"""
import regex, random, struct, subprocess, sys
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
L3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
Q2 = L3.replace(r"\p{N}{1,3}", r"\p{N}")
PRES = {0: [GPT2], 1: [L3], 2: [Q2], 3: [r"\p{N}", GPT2], 4: [r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"],
        6: [r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", r"[一-龥ࠀ-一가-퟿]+", r"\p{N}"]}
def split(res, text):
    segs = [text]
    for r in res:
        rx = regex.compile(r)
        out = []
        for s in segs:
            pos = 0
            for m in rx.finditer(s):
                if m.start() > pos: out.append(s[pos:m.start()])
                out.append(m.group()); pos = m.end()
            if pos < len(s): out.append(s[pos:])
        segs = out
    return segs
alpha = list("aAbZ zé'sStTrReEvVmMlLdD") + list("0123456789") + [' ', ' ', ' ', '\n', '\r', '\t', '\u3000', '\u00a0'] + \
        list("!?.,;:-_()[]{}\"$+<=>^~|`#%&*/\\@") + list("中文한국ऀ¼½²") + ['\u0301', '😀', '🦙', 'ß', 'Ω', 'Ⅻ']
random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
cases = []
for i in range(20000):
    n = random.randint(0, int(sys.argv[2]) if len(sys.argv) > 2 else 14)
    cases.append(''.join(random.choice(alpha) for _ in range(n)))
inp = b''
order = []
for pre in PRES:
    for c in cases:
        b = c.encode(); inp += struct.pack('<II', pre, len(b)) + b; order.append((pre, c))
out = subprocess.run([sys.argv[3] if len(sys.argv) > 3 else 'build/tests/tokenizer/tok_pre_driver'], input=inp, capture_output=True).stdout
pos = 0; bad = {}
for pre, c in order:
    b = c.encode(); words = []
    while True:
        s, l = struct.unpack_from('<QQ', out, pos); pos += 16
        if s == 2**64 - 1: break
        words.append(b[s:s+l].decode())
    want = split(PRES[pre], c)
    if words != want:
        bad.setdefault(pre, []).append((c, want, words))
for pre in PRES:
    print(pre, 'mismatches', len(bad.get(pre, [])))
    for c, w, g in bad.get(pre, [])[:4]: print('   ', repr(c), '\n      want', w, '\n      got ', g)
