#!/usr/bin/env python3
"""What every container pays: time from `instrument` start to the workload's exec with
the default rules, from the workload's end to the agent's exit, the agent's CPU for a
whole run of a workload that does nothing, and its memory (RSS) while it traces a busy
workload.

    python3 bench/startup_memory.py [--repeat 15] [--instrument PATH]...

--instrument (repeatable) compares several installs side by side in one run, e.g. a
plain `pip install .` of two checkouts. Each runs with WORKLOAD_AGENT_PRIORITY=security
(a tracer that cannot start fails the bench) and a fresh compiled-rules cache
directory: the first start fills it, the figures are for the starts after it (and
the first start is printed apart, and the CPU of a whole run with an empty cache).

Startup is measured as (the workload's first clock read) - (the moment we spawned the
agent), against the same for the workload spawned natively; medians over the repeats.
The exit is (the moment the agent's exit is seen) - (the workload's last clock read, just
before it exits). The whole run's CPU is the agent's and the workload's (`true`) user +
system time. Memory is the agent process's peak RSS, sampled every 5 ms by psutil.

Python's start-up is in every figure, with whatever .pth files the interpreter's
site-packages hold (a sandbox's or an editable install's can cost 10-15 ms each): the
script prints them. Measure a plain `pip install .` in a venv of its own.
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

# The workload's first clock read, and the CPU time its parent (the agent, all threads)
# has used by then: wall time on a busy machine is mostly waiting, CPU time is the work.
PROBE = [sys.executable, "-S", "-c", """
import os, time
t = time.time_ns()
cpu = 0
ppid = os.getppid()
try:
    for task in os.listdir(f"/proc/{ppid}/task"):
        with open(f"/proc/{ppid}/task/{task}/schedstat") as f:
            cpu += int(f.read().split()[0])
except OSError:
    cpu = -1
print(t, cpu)
"""]


def instrument_cmd() -> list:
    # The console script next to this Python (a pyenv shim would add its own startup).
    exe = os.path.join(os.path.dirname(sys.executable), "instrument")
    if os.path.exists(exe):
        return [exe]
    return [sys.executable, "-c", "import sys; from workload_agent.cli import instrument_main; "
                                  "sys.exit(instrument_main())"]


def to_exec_ms(prefix: list, env=None) -> tuple:
    """(ms from spawn to the workload's first clock read, the agent's CPU ms by then)."""
    t0 = time.time_ns()
    proc = subprocess.run(prefix + PROBE, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"bench: {prefix} failed ({proc.returncode}): {proc.stderr.strip()}")
    t, cpu = proc.stdout.split()[-2:]
    return (int(t) - t0) / 1e6, int(cpu) / 1e6


# The workload's last act: a clock read, then exit; late enough that the agent has built
# its detector and handled the start's events (what is left is its exit alone).
LAST = [sys.executable, "-S", "-c", "import time; time.sleep(0.5); print(time.time_ns())"]


def exit_ms(prefix: list, env=None) -> float:
    """ms from the workload's last clock read to its agent's exit being seen."""
    proc = subprocess.Popen(prefix + LAST, stdout=subprocess.PIPE, text=True, env=env)
    out = proc.stdout.read()
    proc.wait()
    end = time.time_ns()
    return (end - int(out.split()[-1])) / 1e6


def run_cpu_ms(prefix: list, env=None) -> float:
    """user + system ms of the agent and `true` for one whole run."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(prefix + ["true"], env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return 1000 * (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def site_pth_files(inst: list) -> str:
    """The .pth files the Python behind an instrument command processes at its start."""
    python = inst[0] if inst[0] != os.path.join(os.path.dirname(sys.executable), "instrument") else sys.executable
    try:
        with open(inst[0], "rb") as f:
            line = f.readline()
        if line.startswith(b"#!"):
            python = line[2:].decode().split()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        pass
    code = ("import glob, os, site; print(' '.join(sorted(os.path.basename(p) for d in "
            "site.getsitepackages() + [site.getusersitepackages()] for p in glob.glob(os.path.join(d, '*.pth')))))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60).stdout.split()
    except OSError:
        return "unknown"
    return ", ".join(out) or "none"


def peak_rss_mb(cmd: list, env=None) -> float:
    p = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
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
    ap.add_argument("--instrument", action="append", default=[],
                    help="an instrument executable to measure (repeatable; default: this Python's)")
    args = ap.parse_args()
    insts = [[p] for p in args.instrument] or [instrument_cmd()]
    import tempfile
    caches = [tempfile.mkdtemp(prefix="wa-startup-cache-") for _ in insts]
    envs = [dict(os.environ, WORKLOAD_AGENT_PRIORITY="security", WORKLOAD_AGENT_RULES_CACHE=c)
            for c in caches]
    first = [to_exec_ms(inst, env)[0] for inst, env in zip(insts, envs)]
    native, agent, cpu = [], [[] for _ in insts], [[] for _ in insts]
    native_exit, exits = [], [[] for _ in insts]
    native_run, run_cpu, cold_cpu = [], [[] for _ in insts], [[] for _ in insts]
    for _ in range(args.repeat):
        native.append(to_exec_ms([])[0])
        native_exit.append(exit_ms([]))
        native_run.append(run_cpu_ms([]))
        for i, inst in enumerate(insts):  # interleaved: drift hits every install alike
            wall, used = to_exec_ms(inst, envs[i])
            agent[i].append(wall)
            cpu[i].append(used)
            exits[i].append(exit_ms(inst, envs[i]))
            run_cpu[i].append(run_cpu_ms(inst, envs[i]))
            cold = tempfile.mkdtemp(prefix="wa-startup-cold-")   # a first start in a fresh container
            cold_cpu[i].append(run_cpu_ms(inst, dict(envs[i], WORKLOAD_AGENT_RULES_CACHE=cold)))
            shutil.rmtree(cold, ignore_errors=True)
    n = statistics.median(native)
    for inst in insts:
        print(f"{inst[0]}: its Python's start processes these .pth files: {site_pth_files(inst)}")
    print(f"start to workload exec, native: {n:.1f} ms (median of {args.repeat}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    for inst, a, c, f in zip(insts, agent, cpu, first):
        m = statistics.median(a)
        print(f"  {inst[0]}: {m:.1f} ms, agent start-up cost {m - n:.1f} ms, agent CPU by then "
              f"{statistics.median(c):.1f} ms (first start, filling the rules cache: {f:.1f} ms; "
              f"target <= 100 ms)")
    print(f"workload's end to exit seen, native: {statistics.median(native_exit):.1f} ms")
    for inst, e in zip(insts, exits):
        print(f"  {inst[0]}: {statistics.median(e):.1f} ms")
    print(f"CPU of a whole run of `true` (user + system), native: {statistics.median(native_run):.1f} ms")
    for inst, c, k in zip(insts, run_cpu, cold_cpu):
        print(f"  {inst[0]}: {statistics.median(c):.1f} ms (with an empty rules cache, the first start: "
              f"{statistics.median(k):.1f} ms)")
    busy = ["sh", "-c", "i=0; while [ $i -lt 300 ]; do python3 -S -c 'import os' ; i=$((i+1)); done & "
                        "for j in $(seq 2000); do cat /etc/hostname >/dev/null; done; wait"]
    if not shutil.which("python3"):
        busy = ["sh", "-c", "for j in $(seq 3000); do cat /etc/hostname >/dev/null; done"]
    for inst, env in zip(insts, envs):
        rss = peak_rss_mb(inst + busy, env)
        print(f"  {inst[0]}: agent peak RSS while tracing a busy workload: {rss:.1f} MiB (target <= 40 MiB)")
    for c in caches:
        shutil.rmtree(c, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
