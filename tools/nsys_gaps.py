#!/usr/bin/env python3
"""nsys_gaps.py TRACE.csv - the decode steps of a ringlm-bench-cuda run from
Nsight Systems' cuda_gpu_trace report: per step (a run of kernels between two
host copies or long idle gaps), the time in kernels and the idle gaps between
them; per kernel name, time and count over the last steps."""
import csv, sys, collections

rows = []
with open(sys.argv[1]) as f:
    for r in csv.DictReader(f):
        name = r.get("Name", "")
        try:
            start = float(r["Start (ns)"]); dur = float(r["Duration (ns)"])
        except (KeyError, ValueError):
            continue
        rows.append((start, dur, name))
rows.sort()
# steps: split where the device idles > 15 us (the host between steps)
steps, cur, last_end = [], [], None
for s, d, n in rows:
    if last_end is not None and s - last_end > 15e3 and cur:
        steps.append(cur); cur = []
    cur.append((s, d, n)); last_end = max(last_end or 0, s + d)
if cur:
    steps.append(cur)
# keep steps that look like decode steps: the most common kernel count
cnt = collections.Counter(len(st) for st in steps)
common = cnt.most_common(1)[0][0]
dec = [st for st in steps if len(st) == common][-10:]
print("steps found %d, decode-like (%d ops) %d" % (len(steps), common, len(dec)))
if not dec:
    sys.exit(0)
span = busy = 0.0
per = collections.defaultdict(lambda: [0.0, 0])
for st in dec:
    span += st[-1][0] + st[-1][1] - st[0][0]
    busy += sum(d for _, d, _ in st)
    for s, d, n in st:
        k = n.split("<")[0].split("(")[0][:48]
        per[k][0] += d; per[k][1] += 1
k = len(dec)
print("per step: span %.1f us, in kernels %.1f us, gaps %.1f us (%d kernels, %.2f us a boundary)" % (
    span / k / 1e3, busy / k / 1e3, (span - busy) / k / 1e3, common, (span - busy) / k / 1e3 / max(common - 1, 1)))
for name, (t, c) in sorted(per.items(), key=lambda x: -x[1][0])[:14]:
    print("  %-48s %8.1f us/step  %5d x  %6.2f us" % (name, t / k / 1e3, c // k, t / c / 1e3))
