#!/usr/bin/env python3
"""Tracing overhead, measured side by side in one run: native, `workload-agent run`, and
`strace -f --seccomp-bpf -e trace=<the same set> -o /dev/null`.

    python3 bench/overhead.py [--repeat 5] [--quick]

Workloads: (a) open/close loop (one traced syscall per iteration), (b) a loop of
untraced syscalls, (c) a shell script spawning 2,000 short processes, (d) a Python
import storm, (e) a build's scratch-file churn (mkdir, create, unlink, rmdir). Reports medians, whole-run ratios against native (wall time, and CPU time of the whole
process tree, which moves less when other work shares the machine), and the overhead per
traced syscall in microseconds. This machine is noisy: compare ratios, not seconds.
The agent is the installed `workload-agent` run with `--priority security` (see
agent_cmd.py); the tracer's stop count is printed beside each of its figures.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from agent_cmd import agent_exe, check_traced, run_counted  # noqa: E402
from workload_agent.events.params import DEFAULT_SYSCALLS  # noqa: E402
from workload_agent.events.syscall_table import SYSCALLS  # noqa: E402
from workload_agent.events.arch import native_arch  # noqa: E402

C_OPENCLOSE = r"""
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int c, char **v) { long n = atol(v[1]);
  for (long i = 0; i < n; i++) { int fd = open("/etc/hostname", O_RDONLY); close(fd); } return 0; }
"""
C_UNTRACED = r"""
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int c, char **v) { long n = atol(v[1]); long s = 0;
  for (long i = 0; i < n; i++) s += syscall(SYS_getppid); return s == 0; }
"""
C_FILE_CHURN = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int c, char **v) { long n = atol(v[1]); char d[4096], f[4200];
  for (long i = 0; i < n; i++) {
    snprintf(d, sizeof d, "%s/d%ld", v[2], i); snprintf(f, sizeof f, "%s/f", d);
    mkdir(d, 0755); close(open(f, O_CREAT | O_WRONLY, 0644)); unlink(f); rmdir(d); }
  return 0; }
"""
IMPORTS = ("import json, email.parser, http.client, xml.dom.minidom, asyncio, decimal, csv, "
           "sqlite3, unittest, logging.handlers, argparse, urllib.request, zipfile, tarfile, "
           "concurrent.futures, multiprocessing, ssl, ftplib, smtplib, imaplib, pydoc, difflib")


def build(tmp: pathlib.Path, name: str, src: str) -> str:
    (tmp / f"{name}.c").write_text(src)
    subprocess.run(["gcc", "-O2", "-o", str(tmp / name), str(tmp / f"{name}.c")], check=True)
    return str(tmp / name)


def timed(argv: list[str]) -> tuple:
    """(seconds, CPU seconds of the whole process tree, tracer stops or None). The CPU time
    (user + system of everything the run started: workload, tracer, Python) moves less
    than wall time when other work shares the machine."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc, stops = run_counted(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"bench: {argv} failed with status {proc.returncode}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), stops


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller workloads, for a smoke run")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--compare", metavar="EXE",
                    help="another workload-agent (e.g. an older build's, in its own venv) run "
                         "side by side as the runner agent_compare")
    ap.add_argument("--only", metavar="LIST",
                    help="comma-separated runners and workloads to measure (native and "
                         "--compare's build are always run), e.g. agent,agent_tracer_any,strace,a_open_close,c_spawn")
    args = ap.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="wa-bench-"))
    bare = str(tmp / "bare_tracer")
    subprocess.run(["gcc", "-O2", "-o", bare, str(ROOT / "bench" / "bare_tracer.c")], check=True)
    openclose = build(tmp, "openclose", C_OPENCLOSE)
    untraced = build(tmp, "untraced", C_UNTRACED)
    churn = build(tmp, "file_churn", C_FILE_CHURN)
    scratch = tmp / "scratch"
    scratch.mkdir()
    n_open = 5000 if args.quick else 50000
    n_untraced = 200000 if args.quick else 2000000
    n_spawn = 200 if args.quick else 2000
    workloads = {
        "a_open_close": ([openclose, str(n_open)], n_open),
        "b_untraced": ([untraced, str(n_untraced)], 0),
        "c_spawn": (["sh", "-c", f"i=0; while [ $i -lt {n_spawn} ]; do /bin/true; i=$((i+1)); done"], None),
        "d_import_storm": ([sys.executable, "-I", "-c", IMPORTS], None),
        # a build's scratch files: mkdir, create, unlink, rmdir (4 traced calls each round)
        "e_file_churn": ([churn, str(n_open // 5), str(scratch)], 4 * (n_open // 5)),
    }
    arch = native_arch()
    check_traced()
    agent = [agent_exe(), "run", "--priority", "security"]
    plan = subprocess.run(agent + ["--print-syscalls"], capture_output=True, text=True)
    if plan.returncode == 0 and plan.stdout.split():
        traced = plan.stdout.split()  # what the default rules make the agent stop on
    else:
        traced = sorted(n for n in DEFAULT_SYSCALLS if n in SYSCALLS[arch])
    strace = shutil.which("strace")
    runners = {
        "native": [],
        # the baseline of ptrace-notes.md: the same stops for openat, nothing else
        "bare_c_tracer": [bare, "exit"],
        # our tracer and record decoding, no rules: the per-event cost of the C core
        "agent_openat_only": agent + ["--no-rules", "--syscalls", "openat", "--"],
        "agent": agent + ["--alerts-to", "/dev/null", "--"],
        # the tracer thread left where the scheduler puts it (the default follows the tracee)
        "agent_tracer_any": agent + ["--tracer-cpu", "any", "--alerts-to", "/dev/null", "--"],
        "agent_full_ptrace": agent + ["--no-seccomp", "--alerts-to", "/dev/null", "--"],
    }
    if args.compare:
        runners["agent_compare"] = [args.compare, "run", "--priority", "security", "--alerts-to",
                                    "/dev/null", "--"]
    if strace:
        runners["strace"] = [strace, "-f", "--seccomp-bpf", "-e", "trace=" + ",".join(traced), "-o", "/dev/null"]
    if args.only:
        only = set(args.only.split(","))
        unknown = only - set(runners) - set(workloads)
        if unknown:
            sys.exit(f"bench: --only: unknown {', '.join(sorted(unknown))} "
                     f"(runners: {', '.join(runners)}; workloads: {', '.join(workloads)})")
        # the build given with --compare is what the run is for: always measured
        runners = {r: p for r, p in runners.items() if r in ("native", "agent_compare") or r in only}
        if only & set(workloads):
            workloads = {w: v for w, v in workloads.items() if w in only}
    print("traced by the agent (and strace):", " ".join(traced), flush=True)

    # Count the traced syscalls each workload makes (for per-event overhead).
    counts = {}
    for name, (argv, known) in workloads.items():
        if known is not None:
            counts[name] = known
            continue
        if strace:
            out = tmp / "count"
            subprocess.run([strace, "-f", "-qq", "-o", str(out), "-e", "trace=" + ",".join(traced)] + argv,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            lines = out.read_text().splitlines()
            counts[name] = sum(1 for line in lines if "resumed>" not in line and "+++" not in line
                               and "---" not in line)

    results: dict = {}
    for name, (argv, _) in workloads.items():
        samples = {r: [] for r in runners}
        cpu = {r: [] for r in runners}
        stops = {}
        for _ in range(args.repeat):
            for r, prefix in runners.items():  # interleaved so drift hits every runner alike
                seconds, cpu_s, n_stops = timed(prefix + argv)
                samples[r].append(seconds)
                cpu[r].append(cpu_s)
                if n_stops is not None:
                    stops[r] = n_stops
        med = {r: statistics.median(s) for r, s in samples.items()}
        med_cpu = {r: statistics.median(s) for r, s in cpu.items()}
        results[name] = {"median_s": med, "median_cpu_s": med_cpu, "traced_syscalls": counts.get(name),
                         "stops": stops}
        print(f"\n{name}  (traced syscalls per run: {counts.get(name)})", flush=True)
        for r in runners:
            ratio = med[r] / med["native"]
            cpu_ratio = med_cpu[r] / med_cpu["native"] if med_cpu["native"] else float("nan")
            line = f"  {r:18s} {med[r]*1000:9.1f} ms   x{ratio:6.3f}   cpu x{cpu_ratio:6.3f}"
            n = counts.get(name)
            if r != "native" and n:
                us = (med[r] - med["native"]) / n * 1e6
                line += f"   {us:6.2f} us per traced syscall"
                results[name].setdefault("us_per_event", {})[r] = us
            if r in stops:
                line += f"   {stops[r]} stops"
            results[name].setdefault("ratio", {})[r] = ratio
            print(line, flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))
    shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
