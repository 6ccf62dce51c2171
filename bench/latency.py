#!/usr/bin/env python3
"""From the syscall to the alert line written: how long an attack waits in the agent.

    python3 bench/latency.py [--events 200] [--interval 0.02] [--pin CPU]

A workload opens /etc/shadow (a default rule fires) every INTERVAL seconds; the agent
(`workload-agent run --priority security --json`) writes its alerts to a FIFO that this
script reads, stamping each line as it arrives. The latency of one alert is its arrival
minus the event's own time (the tracer's timestamp at the syscall stop). Reports the
median, p90, p99 and max, idle machine assumed; run it pinned (`--pin 0`, what a 1-vCPU
task gets) and unpinned. Needs root (the workload reads /etc/shadow).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _event_ns(alert: dict) -> int:
    """Falco's JSON time (RFC 3339, nanoseconds) as epoch ns."""
    text = alert["time"]
    base, frac = text.rstrip("Z").split(".")
    dt = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp()) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])


def measure(events: int, interval: float, pin: str | None) -> list[float]:
    agent = shutil.which("workload-agent")
    if agent is None:
        sys.exit("workload-agent is not on PATH: pip install -e . first")
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "alerts")
        os.mkfifo(fifo)
        workload = (f"import time\nfor _ in range({events}):\n"
                    f"    open('/etc/shadow').close()\n    time.sleep({interval})\n")
        argv = [agent, "run", "--priority", "security", "--json", "--alerts-to", fifo,
                "--", sys.executable, "-c", workload]
        if pin is not None:
            argv = ["taskset", "-c", pin] + argv
        arrivals: list[tuple[int, str]] = []

        def reader():
            with open(fifo, "r", encoding="utf-8") as f:
                for line in f:
                    arrivals.append((time.time_ns(), line))

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        th.join(timeout=10)
        if proc.returncode != 0:
            sys.exit(f"the agent failed ({proc.returncode}): {proc.stderr.strip()}")
    lat = []
    for arrived, line in arrivals:
        alert = json.loads(line)
        if "shadow" not in alert.get("output", ""):
            continue
        lat.append((arrived - _event_ns(alert)) / 1e6)
    if len(lat) < events:
        sys.exit(f"only {len(lat)} of {events} alerts arrived")
    return lat


def summary(lat: list[float]) -> str:
    lat = sorted(lat)
    q = statistics.quantiles(lat, n=100)
    return (f"median {statistics.median(lat):6.2f} ms  p90 {q[89]:6.2f} ms  p99 {q[98]:6.2f} ms  "
            f"max {lat[-1]:6.2f} ms  (n={len(lat)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--pin", metavar="CPU", help="run agent and workload on this CPU only")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("skipped: the workload reads /etc/shadow, which needs root")
        return 0
    for pin in ([args.pin] if args.pin is not None else [None, "0"]):
        label = "unpinned" if pin is None else f"pinned to CPU {pin}"
        print(f"{label:18} {summary(measure(args.events, args.interval, pin))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
