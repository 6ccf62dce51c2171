#!/usr/bin/env python3
"""`replay` speed and memory: events per CPU second of `workload-agent replay`, and
its peak RSS on captures of one and of several rounds of the same mix (memory must
not grow with the capture's length).

    python3 bench/replay.py [--rounds 1,4] [--formats 2,3] [--repeat 3] [--rules FILE_OR_DIR]...
                            [--baseline SRC_DIR] [--keep DIR] [--capture FILE]...

Records bench/mix.sh once per round count and capture format (`workload-agent record
--no-rules --capture-format N`, the tracer started with `--priority security`, so an
untraced run fails instead of recording nothing), then replays each capture with the
default rules (or --rules) and --rule-matching all, in a fresh process each time,
`--repeat` times interleaved; the best CPU time of each is shown (this machine is
shared: the best run is the one least disturbed).

--baseline SRC_DIR replays the same captures with another workload-agent source tree
too (run as `python -m workload_agent` with PYTHONPATH=SRC_DIR; e.g. `git archive
<commit> workload_agent rules | tar -x -C SRC_DIR`), side by side: before and after a
change, on the formats the baseline reads.

"startup" is the replay of a capture of `true` (two events): the fixed cost inside every
figure; "events/s" divides by the whole process's CPU time, "after startup" by the CPU
time above that fixed cost.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))


def agent() -> list:
    exe = os.path.join(os.path.dirname(sys.executable), "workload-agent")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "workload_agent"]


def record(path: str, rounds: int, fmt: int) -> int:
    cmd = ["sh", os.path.join(HERE, "mix.sh"), str(rounds)] if rounds else ["true"]
    subprocess.run(agent() + ["record", "-o", path, "--no-rules", "--priority", "security",
                              "--capture-format", str(fmt), "--alerts-to", os.devnull, "--"] + cmd,
                   check=True, stdout=subprocess.DEVNULL)
    return events_of(path)


def events_of(path: str) -> int:
    out = subprocess.run(agent() + ["capture", "info", path], check=True, capture_output=True,
                         text=True).stdout
    return int(next(line.split()[1] for line in out.splitlines() if line.startswith("events:")))


def version_of(path: str) -> int:
    with open(path, "rb") as f:
        head = f.read(10)
    return int.from_bytes(head[8:10], "little")


def replay(path: str, rules: list, src: Optional[str] = None) -> tuple:
    """(CPU seconds, peak RSS MiB, alert lines) of one `replay` run in a fresh process;
    src: run that source tree's workload_agent instead."""
    probe = ("import resource, subprocess, sys\n"
             "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, check=True)\n"
             "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "print(ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, p.stdout.count(b'\\n'))\n")
    env = dict(os.environ)
    if src:
        cmd = [sys.executable, "-m", "workload_agent"]
        env["PYTHONPATH"] = os.path.abspath(src)
    else:
        cmd = agent()
    cmd += ["replay", path, "--rule-matching", "all"]
    for r in rules:
        cmd += ["-r", r]
    out = subprocess.run([sys.executable, "-c", probe] + cmd, check=True, capture_output=True,
                         text=True, env=env).stdout.split()
    return float(out[0]), float(out[1]), int(out[2])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", default="1,4", help="comma-separated rounds of bench/mix.sh per capture")
    ap.add_argument("--formats", default="2,3", help="capture format versions to record and replay")
    ap.add_argument("--repeat", type=int, default=3, help="replays of each capture (best CPU shown)")
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--baseline", metavar="SRC_DIR", help="another workload-agent source tree to compare")
    ap.add_argument("--keep", help="keep the captures in this directory")
    ap.add_argument("--capture", action="append", default=[], help="replay this capture too")
    args = ap.parse_args()
    d = args.keep or tempfile.mkdtemp(prefix="wa-replay-bench-")
    os.makedirs(d, exist_ok=True)
    formats = [int(x) for x in args.formats.split(",") if x]
    captures = []   # (label, path, events)
    for n in [0] + [int(x) for x in args.rounds.split(",") if x]:
        for fmt in formats:
            path = os.path.join(d, f"mix-{n}-v{fmt}.wacap")
            captures.append((f"{'startup' if n == 0 else f'{n} round' + 's' * (n > 1)}, format {fmt}",
                             path, record(path, n, fmt)))
    for path in args.capture:
        captures.append((os.path.basename(path), path, events_of(path)))
    runs = []   # (label, capture label, path, events, src)
    for label, path, events in captures:
        runs.append(("current", label, path, events, None))
        if args.baseline and version_of(path) <= 2:
            runs.append(("baseline", label, path, events, args.baseline))
    best = {}
    for _ in range(args.repeat):
        for who, label, path, events, src in runs:
            cpu, rss, alerts = replay(path, args.rules, src)
            old = best.get((who, path))
            if old is None or cpu < old[0]:
                best[(who, path)] = (cpu, max(rss, old[1]) if old else rss, alerts)
            elif rss > old[1]:
                best[(who, path)] = (old[0], rss, old[2])
    startup = {who: best[(who, p)][0] for who, label, p, _, _ in runs if label.startswith("startup")}
    print(f"{'agent':9} {'capture':18} {'events':>7} {'MB':>5} {'CPU s':>6} {'events/s':>9} "
          f"{'after startup':>13} {'peak RSS':>9} {'alerts':>6}")
    for who, label, path, events, _ in runs:
        cpu, rss, alerts = best[(who, path)]
        above = cpu - startup.get(who, 0.0)
        rate = f"{events / cpu / 1000:.1f}k"
        after = f"{events / above / 1000:.1f}k" if above > 0 and not label.startswith("startup") else "-"
        print(f"{who:9} {label:18} {events:7d} {os.path.getsize(path) / 1e6:5.1f} {cpu:6.2f} {rate:>9} "
              f"{after:>13} {rss:7.1f}Mi {alerts:6d}")
    print("targets: >= 100k events/s; peak RSS flat with the number of rounds")
    if not args.keep:
        for _, path, _ in captures:
            if path.startswith(d):
                os.unlink(path)
        os.rmdir(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
