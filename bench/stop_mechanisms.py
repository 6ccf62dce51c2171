#!/usr/bin/env python3
"""What one traced syscall costs the workload, by mechanism (ptrace stop, ptrace stop plus
exit stop, seccomp user notification) and by where the tracer runs relative to the
workload (same CPU, other CPU, unpinned, following the workload's CPU).

    python3 bench/stop_mechanisms.py [--iterations 20000] [--repeat 7]

Builds bench/stop_mechanisms.c (a minimal tracer and its workload, see the comment at its
top) and runs every combination REPEAT times, interleaved round by round so that the
machine's noise falls on all of them alike. Prints the median microseconds per
open+close iteration, the overhead over native, and the ratio to a ptrace stop with no
affinity set (what the agent does today). Needs gcc and two CPUs (for 'cross').
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
MECHANISMS = ("native", "ptrace", "ptrace_exit", "notif")
PLACEMENTS = ("any", "same", "cross", "follow")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="wa-stops-"))
    exe = tmp / "stop_mechanisms"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "stop_mechanisms.c"),
                    str(HERE.parent / "csrc" / "placement.c")], check=True)
    combos = [(m, p) for m in MECHANISMS for p in PLACEMENTS]
    samples: dict = {c: [] for c in combos}
    for r in range(args.repeat):
        print(f"round {r + 1}/{args.repeat}", file=sys.stderr, flush=True)
        for m, p in combos:
            out = subprocess.run([str(exe), m, p, str(args.iterations)], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"bench: {m} {p} failed ({out.returncode}): {out.stderr.strip()}")
            samples[(m, p)].append(int(out.stdout) / 1000.0)
    med = {c: statistics.median(v) for c, v in samples.items()}
    base = med[("ptrace", "any")]
    print(f"{'mechanism':<12} {'placement':<9} {'us/iter':>9} {'overhead':>9} {'vs ptrace/any':>14}")
    for m, p in combos:
        native = med[("native", p)]
        extra = med[(m, p)] - native
        print(f"{m:<12} {p:<9} {med[(m, p)]:9.2f} {extra:9.2f} {med[(m, p)] / base:13.2f}x")
    print(f"\nmedians of {args.repeat} interleaved rounds, {args.iterations} iterations each; "
          "overhead = minus native with the same placement")
    return 0


if __name__ == "__main__":
    sys.exit(main())
