#!/usr/bin/env python3
"""At what event rate does `--priority availability` start dropping, and what does
`--priority security` (never drops: the workload waits for the agent) cost instead?

    python3 bench/flood_drops.py [--seconds 3] [--procs 4] [--ring-size BYTES] [--pin]

A C flooder runs PROCS processes that open+close /etc/hostname at a paced total rate
(each open is a traced syscall under the shipped rules) for SECONDS. For each target
rate we run it under the agent with the shipped rules and `--no-prefilter` (the
prefilter would drop these opens in C: this bench is about the ring and the consumer
under a flood of events), read the agent's final metrics
line (events, drops, ring waits), and print the rate the workload achieved, the share
of events dropped (availability) and how often the workload waited (security).
--pin runs everything on CPU 0 (`taskset -c 0`), as a small Fargate task would.
This machine is shared and noisy: read the threshold as an order of magnitude.
The agent is the installed `workload-agent` (agent_cmd.py). Availability runs are the
subject here, so they cannot use `--priority security` to prove the tracer started: the
bench checks that the agent traces at all first, and fails on a run whose metrics saw no
event, so that an untraced run cannot pose as a flood taken without drops.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from agent_cmd import agent_exe, check_traced  # noqa: E402

C_FLOOD = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int c, char **v) {
  double rate = atof(v[1]); int procs = atoi(v[2]); double secs = atof(v[3]);
  for (int p = 0; p < procs; p++) if (fork() == 0) {
    double per = rate / procs, t0 = now(); long n = 0;
    while (now() - t0 < secs) {
      if (rate > 0 && n > (now() - t0) * per) continue;   /* paced; rate 0 = flat out */
      int fd = open("/etc/hostname", O_RDONLY); close(fd); n++;
    }
    printf("%ld\n", n); fflush(stdout); _exit(0);
  }
  while (wait(NULL) > 0) ;
  return 0;
}
"""


def build(tmp: pathlib.Path) -> str:
    (tmp / "flood.c").write_text(C_FLOOD)
    subprocess.run(["gcc", "-O2", "-o", str(tmp / "flood"), str(tmp / "flood.c")], check=True)
    return str(tmp / "flood")


def one(flood, rate, args, tmp, priority):
    metrics = tmp / f"m-{priority}-{rate}.jsonl"
    pin = ["taskset", "-c", "0"] if args.pin else []
    cmd = pin + [agent_exe(), "run", "--priority", priority, "--no-prefilter", "--metrics-file",
                 str(metrics), "--ring-size", str(args.ring_size), "--alerts-to", os.devnull, "--",
                 flood, str(rate), str(args.procs), str(args.seconds)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    opens = sum(int(x) for x in p.stdout.split())
    final = [json.loads(x) for x in metrics.read_text().splitlines()][-1]
    if opens and final.get("events", 0) + final.get("drops", 0) == 0:
        sys.exit(f"bench: the agent saw none of {opens} opens ({priority}): refusing to report an "
                 f"untraced run")
    return opens, wall, final


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--ring-size", type=int, default=8 << 20)
    ap.add_argument("--rates", default="2000,5000,10000,20000,40000,0", help="total opens/s; 0 = flat out")
    ap.add_argument("--pin", action="store_true")
    args = ap.parse_args()
    check_traced()
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        flood = build(tmp)
        print(f"{'target/s':>9} | {'avail: got/s':>12} {'dropped':>8} | {'security: got/s':>15} {'waits':>7} "
              f"{'waited ms':>9}")
        for rate in [int(r) for r in args.rates.split(",")]:
            a_opens, a_wall, a = one(flood, rate, args, tmp, "availability")
            s_opens, s_wall, s = one(flood, rate, args, tmp, "security")
            seen = a["events"] + a["drops"]
            print(f"{rate or 'max':>9} | {a_opens / args.seconds:12.0f} {a['drops'] / max(seen, 1):8.1%} | "
                  f"{s_opens / args.seconds:15.0f} {s.get('ring_waits', 0):7d} "
                  f"{s.get('ring_wait_ns', 0) / 1e6:9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
