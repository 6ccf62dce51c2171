"""Exec-to-attach delay: how long a process that enters the agent's PID namespace from
outside (nsenter, as docker exec does) runs before the agent has it stopped and its facts
read. Also the scanner's idle cost: the agent's CPU time per second with nothing to do,
--attach-foreign trace vs never.

Needs root, unshare and nsenter (util-linux). Run: python3 bench/attach_delay.py [-n 100]

The delay is measured from the moment the benchmark starts nsenter (so it includes
nsenter's own start-up, setns and fork: see the `nsenter alone` line) to the attach stop
(the timestamp of the ATTACH record in --events output).
"""
from __future__ import annotations

import argparse
import datetime
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def agent_cmd(events: Path, mode: str, workload):
    exe = shutil.which("workload-agent")
    base = [exe] if exe else [sys.executable, "-m", "workload_agent"]
    return ["unshare", "--pid", "--fork", "--mount-proc", *base, "run", "--priority", "security", "--alerts-to",
            os.devnull, "--events-file", str(events), "--attach-foreign", mode, "--", *workload]


def agent_pid(unshare: subprocess.Popen) -> int:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            kids = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read_text().split()
            if kids:
                pid = int(kids[0])
                if any(t.joinpath("children").read_text().split() for t in Path(f"/proc/{pid}/task").iterdir()):
                    return pid
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit("the agent did not start")


def seconds_of_day_local(ns: int) -> float:
    t = datetime.datetime.fromtimestamp(ns / 1e9)
    return t.hour * 3600 + t.minute * 60 + t.second + (ns % 1_000_000_000) / 1e9


def parse_attaches(events: Path):
    """(seconds of day of each attach stop, ms from the scanner's request to that stop)."""
    out, asked = [], []
    for line in events.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) > 4 and parts[3] == "attach" and parts[4].startswith("threads="):
            h, m, s = parts[0].split(":")
            out.append(int(h) * 3600 + int(m) * 60 + float(s))
            if parts[5].startswith("asked="):
                asked.append(float(parts[5][6:].split("ms")[0]))
    return out, asked


def measure_delay(n: int, busy: bool):
    tmp = Path(tempfile.mkdtemp(prefix="wa-attach-bench-"))
    events = tmp / "events"
    stop = tmp / "stop"
    workload = (["sh", "-c", f"while [ ! -e {stop} ]; do cat /etc/hostname > /dev/null; done"] if busy
                else ["sh", "-c", "read x"])
    p = subprocess.Popen(agent_cmd(events, "trace", workload), stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        pid = agent_pid(p)
        time.sleep(0.3)
        starts = []
        for _ in range(n):
            time.sleep(random.uniform(0.02, 0.08))   # land anywhere in the scan period
            t0 = time.time_ns()
            subprocess.run(["nsenter", "-t", str(pid), "-p", "-m", "--", "sleep", "0.05"], check=True)
            starts.append(seconds_of_day_local(t0))
    finally:
        stop.touch()
        p.communicate(b"\n", timeout=60)
    attaches, asked = parse_attaches(events)
    shutil.rmtree(tmp, ignore_errors=True)
    delays = []
    for i, t0 in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else float("inf")
        mine = [a for a in attaches if t0 <= a < end]
        if mine:
            delays.append((mine[0] - t0) * 1000)
    return delays, asked


def nsenter_alone(n: int):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(["nsenter", "-t", str(os.getpid()), "-p", "--", "true"], check=True)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def idle_cost(mode: str, seconds: float = 10.0) -> float:
    """Agent CPU ms per second of wall time with an idle workload."""
    tmp = Path(tempfile.mkdtemp(prefix="wa-attach-bench-"))
    p = subprocess.Popen(agent_cmd(tmp / "events", mode, ["sleep", str(seconds + 3)]),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = agent_pid(p)
    time.sleep(1.0)
    tick = os.sysconf("SC_CLK_TCK")

    def cpu():
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tick

    c0, t0 = cpu(), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu(), time.monotonic()
    p.wait(timeout=60)
    shutil.rmtree(tmp, ignore_errors=True)
    return (c1 - c0) * 1000 / (t1 - t0)


def summary(name, xs):
    xs = sorted(xs)
    print(f"{name:34s} n={len(xs):3d}  median {statistics.median(xs):6.2f} ms  "
          f"p90 {xs[int(len(xs) * 0.9) - 1]:6.2f} ms  worst {xs[-1]:6.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100)
    args = ap.parse_args()
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        print("needs root, unshare and nsenter", file=sys.stderr)
        return 2
    summary("nsenter alone (start to exit)", nsenter_alone(args.n))
    for busy in (False, True):
        delays, asked = measure_delay(args.n, busy=busy)
        what = "busy" if busy else "idle"
        summary(f"nsenter start to attach, {what} workload", delays)
        summary(f"  of which request to stop", asked)
    for mode in ("never", "trace"):
        print(f"agent CPU with an idle workload, --attach-foreign {mode}: "
              f"{idle_cost(mode):.1f} ms per second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
