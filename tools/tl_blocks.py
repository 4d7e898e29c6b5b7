#!/usr/bin/env python3
"""tl_blocks.py - per-block view of a step timeline's raw records
(ringlm-bench-cuda --timeline-raw FILE, a -Dgpu_timeline=true build).

  python3 tools/tl_blocks.py raw.csv[.gz] [--steps 1-3]

For each kind of launch (its kernel with the kernels before and after it, so
a layer's Q|K|V, gate/up and down products stay apart), over the replays
given and every launch of that kind, the median / 10th / 90th percentile
over blocks of (us):
  start   the block's start against the previous launch's last end (negative:
          it started before the previous launch ended)
  wait    its PDL wait's return against that end
  m0..m3  each mark against the block's own wait (the kernel's stages;
          rl_cu_mvb: m0 activation prepared, m1 first tile summed)
  end     its end against its own wait
plus the launch's run (its last end against the previous launch's last end).
"""
import csv, gzip, statistics, sys
from collections import defaultdict

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))]

def fmt(v):
    if not v:
        return "-"
    return "%.2f [%.2f, %.2f]" % (statistics.median(v), pct(v, 0.1), pct(v, 0.9))

def main():
    path = sys.argv[1]
    steps = None
    if "--steps" in sys.argv:
        a, b = sys.argv[sys.argv.index("--steps") + 1].split("-")
        steps = range(int(a), int(b) + 1)
    op = gzip.open if path.endswith(".gz") else open
    launches = defaultdict(list)
    with op(path, "rt") as f:
        for r in csv.DictReader(f):
            s = int(r["step"])
            if steps is not None and s not in steps:
                continue
            if steps is None and s == 0:
                continue  # the first replay warms
            launches[(s, r["grid"])].append(r)
    by_step = defaultdict(list)
    for (s, g), recs in launches.items():
        t0 = min(float(x["t0_us"]) for x in recs)
        by_step[s].append((t0, recs[0]["kernel"], recs))
    kinds = defaultdict(lambda: defaultdict(list))
    order = []
    for s, ls in by_step.items():
        ls.sort(key=lambda x: x[0])
        for i in range(1, len(ls)):
            prev = ls[i - 1]
            _, name, recs = ls[i]
            nxt = ls[i + 1][1] if i + 1 < len(ls) else "-"
            key = "%s (%s / %s) x%d" % (name, prev[1], nxt, len(recs))
            if key not in kinds:
                order.append(key)
            pend = max(float(x["t1_us"]) for x in prev[2])
            k = kinds[key]
            k["run"].append(max(float(x["t1_us"]) for x in recs) - pend)
            for x in recs:
                t0, tw, t1 = float(x["t0_us"]), float(x["tw_us"]), float(x["t1_us"])
                k["start"].append(t0 - pend)
                if tw < 0:
                    continue
                k["wait"].append(tw - pend)
                for j in range(4):
                    m = float(x["m%d_us" % j])
                    if m >= 0:
                        k["m%d" % j].append(m - tw)
                k["end"].append(t1 - tw)
    for key in order:
        k = kinds[key]
        print("%s: %d launches, run %s" % (key, len(k["run"]), fmt(k["run"])))
        print("   " + "  ".join("%s %s" % (n, fmt(k[n])) for n in ("start", "wait", "m0", "m1", "m2", "m3", "end") if k[n]))

if __name__ == "__main__":
    main()
