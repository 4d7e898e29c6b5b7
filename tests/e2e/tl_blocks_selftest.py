#!/usr/bin/env python3
"""tl_blocks_selftest.py - tools/tl_blocks.py on a made-up timeline: the
per-block medians and percentiles it prints for each kind of launch, the
warm-up replay left out, --steps choosing replays, gzipped input.

  python3 tl_blocks_selftest.py TOOLS_DIR
"""
import gzip, os, subprocess, sys, tempfile

HEAD = "step,grid,kernel,blocks,block,sm,t0_us,tw_us,t1_us,m0_us,m1_us,m2_us,m3_us\n"

def rec(step, grid, kernel, blocks, block, t0, tw, t1, m0=-1.0, m1=-1.0):
    return "%d,%d,%s,%d,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,-1,-1\n" % (step, grid, kernel, blocks, block, block,
                                                                 t0, tw, t1, m0, m1)

def replay(step, shift):
    """A row gather (no PDL wait) then a product of two blocks; shift moves
    the product's second block, so replays differ."""
    return (rec(step, 10, "get_rows", 1, 0, 0.0, -1.0, 2.0) +
            rec(step, 11, "mvb", 2, 0, 1.5, 2.5, 10.0, 4.5, 6.0) +
            rec(step, 11, "mvb", 2, 1, 1.7 + shift, 2.6 + shift, 9.0 + shift, 4.0 + shift, 5.6 + shift))

def run(tool, path, *args):
    out = subprocess.run([sys.executable, tool, path] + list(args), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout

def main():
    tool = os.path.join(sys.argv[1], "tl_blocks.py")
    with tempfile.TemporaryDirectory() as d:
        plain = os.path.join(d, "raw.csv")
        with open(plain, "w") as f:
            # replay 0 warms (left out by default): a product far slower
            f.write(HEAD + replay(0, 50.0) + replay(1, 0.0))
        out = run(tool, plain)
        assert "mvb (get_rows / -) x2: 1 launches, run 8.00 [8.00, 8.00]" in out, out
        # starts -0.5 and -0.3, waits 0.5 and 0.6, m0 2.0 and 1.4, m1 3.5 and 3.0, ends 7.5 and 6.4
        for want in ("start -0.40 [-0.50, -0.30]", "wait 0.55 [0.50, 0.60]", "m0 1.70 [1.40, 2.00]",
                     "m1 3.25 [3.00, 3.50]", "end 6.95 [6.40, 7.50]"):
            assert want in out, (want, out)
        assert "m2" not in out, out  # no block reached it
        # the step's first launch has no launch before it: no kind of its own
        assert not any(l.startswith("get_rows") for l in out.splitlines()), out
        # --steps 0-0: the warm-up replay alone (its second block 50 us later: ends at 59)
        out0 = run(tool, plain, "--steps", "0-0")
        assert "run 57.00 [57.00, 57.00]" in out0 and "start 24.60 [-0.50, 49.70]" in out0, out0
        gz = os.path.join(d, "raw.csv.gz")
        with open(plain, "rb") as f, gzip.open(gz, "wb") as g:
            g.write(f.read())
        assert run(tool, gz) == out
    print("tl_blocks_selftest: ok")

if __name__ == "__main__":
    main()
