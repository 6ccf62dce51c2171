#!/usr/bin/env python3
"""What every container pays: time from `instrument` start to the workload's exec with
the default rules, and the agent's memory (RSS) while it traces a busy workload.

    python3 bench/startup_memory.py [--repeat 15]

Startup is measured as (the workload's first clock read) - (the moment we spawned the
agent), against the same for the workload spawned natively; medians over the repeats.
Memory is the agent process's peak RSS, sampled every 5 ms by psutil.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

import psutil

PROBE = [sys.executable, "-S", "-c", "import time; print(time.time_ns())"]


def instrument_cmd() -> list:
    # The console script next to this Python (a pyenv shim would add its own startup).
    exe = os.path.join(os.path.dirname(sys.executable), "instrument")
    if os.path.exists(exe):
        return [exe]
    return [sys.executable, "-c", "import sys; from workload_agent.cli import instrument_main; "
                                  "sys.exit(instrument_main())"]


def to_exec_ms(prefix: list) -> float:
    t0 = time.time_ns()
    out = subprocess.run(prefix + PROBE, capture_output=True, text=True, check=True).stdout
    return (int(out.split()[-1]) - t0) / 1e6


def peak_rss_mb(cmd: list) -> float:
    p = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while p.poll() is None:
        try:
            peak = max(peak, p.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    return peak / (1 << 20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    inst = instrument_cmd()
    native, agent = [], []
    for _ in range(args.repeat):
        native.append(to_exec_ms([]))
        agent.append(to_exec_ms(inst))
    n, a = statistics.median(native), statistics.median(agent)
    print(f"start to workload exec: native {n:.1f} ms, instrument {a:.1f} ms, "
          f"agent start-up cost {a - n:.1f} ms (target <= 150 ms)")
    busy = ["sh", "-c", "i=0; while [ $i -lt 300 ]; do python3 -S -c 'import os' ; i=$((i+1)); done & "
                        "for j in $(seq 2000); do cat /etc/hostname >/dev/null; done; wait"]
    if not shutil.which("python3"):
        busy = ["sh", "-c", "for j in $(seq 3000); do cat /etc/hostname >/dev/null; done"]
    rss = peak_rss_mb(inst + busy)
    print(f"agent peak RSS while tracing a busy workload: {rss:.1f} MiB (target < 60 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
