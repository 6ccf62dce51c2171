#!/usr/bin/env python3
"""`replay` speed and memory: events per CPU second of `workload-agent replay`, and
its peak RSS on captures of one and of several rounds of the same mix (memory must
not grow with the capture's length).

    python3 bench/replay.py [--rounds 1,4] [--rules FILE_OR_DIR]... [--keep DIR]

Records bench/mix.sh (`workload-agent record --no-rules`, the tracer started with
`--priority security`, so an untraced run fails instead of recording nothing), then
replays each capture with the default rules (or --rules) and --rule-matching all.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def agent() -> list:
    exe = os.path.join(os.path.dirname(sys.executable), "workload-agent")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "workload_agent"]


def child_usage():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def record(path: str, rounds: int) -> int:
    subprocess.run(agent() + ["record", "-o", path, "--no-rules", "--priority", "security",
                              "--alerts-to", os.devnull, "--", "sh", os.path.join(HERE, "mix.sh"),
                              str(rounds)], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run(agent() + ["capture", "info", path], check=True, capture_output=True,
                         text=True).stdout
    return int(next(line.split()[1] for line in out.splitlines() if line.startswith("events:")))


def replay(path: str, rules: list) -> tuple:
    """(CPU seconds, peak RSS MiB, alerts) of one `replay` run in a fresh process."""
    probe = ("import resource, subprocess, sys, time\n"
             "t = time.process_time()\n"
             "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=True)\n"
             "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "print(ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, p.stdout.count(b'\\n'))\n")
    cmd = agent() + ["replay", path, "--rule-matching", "all"]
    for r in rules:
        cmd += ["-r", r]
    out = subprocess.run([sys.executable, "-c", probe] + cmd, check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", default="1,4", help="comma-separated rounds of bench/mix.sh per capture")
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--keep", help="keep the captures in this directory")
    ap.add_argument("--capture", action="append", default=[], help="replay this capture too")
    args = ap.parse_args()
    d = args.keep or tempfile.mkdtemp(prefix="wa-replay-bench-")
    os.makedirs(d, exist_ok=True)
    captures = []
    for n in [int(x) for x in args.rounds.split(",") if x]:
        path = os.path.join(d, f"mix-{n}.wacap")
        events = record(path, n)
        captures.append((path, events))
    for path in args.capture:
        out = subprocess.run(agent() + ["capture", "info", path], check=True, capture_output=True,
                             text=True).stdout
        captures.append((path, int(next(line.split()[1] for line in out.splitlines()
                                        if line.startswith("events:")))))
    for path, events in captures:
        cpu, rss, alerts = replay(path, args.rules)
        print(f"replay {os.path.basename(path)}: {events} events, {os.path.getsize(path) / 1e6:.1f} MB, "
              f"{events / cpu / 1000:.1f}k events/s (CPU), peak RSS {rss:.1f} MiB, {alerts} alert lines "
              f"(targets >= 100k events/s, RSS flat with length)")
    if not args.keep:
        for path, _ in captures:
            if path.startswith(d):
                os.unlink(path)
        os.rmdir(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
