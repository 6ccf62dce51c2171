#!/usr/bin/env python3
"""Python time per event in the live consumer, from the agent's own counters (`--stats`).

    python3 bench/consumer_cost.py [--opens 20000] [--spawns 500] [--repeat 3]
                                   [--agent PATH ...] [--pin]

Workloads, run under `workload-agent run --priority security --stats` with the default
rules:

* open path: a Python loop opening /dev/null for writing with O_CREAT and closing it: an
  open the C prefilter keeps (the default rule on files created below /dev could match
  it; its exception for /dev/null is read in Python) and no rule alerts on; per kept
  record. A read-only open of /dev/null no longer counts: the prefilter drops it in C,
  so it never reaches Python. The bench checks that the opens did reach Python (records
  >= opens) and fails otherwise, rather than divide the start-up by a few records;
* quiet spawns: a shell spawning /bin/true, per spawn. No rule can match these execs, so
  their records never reach Python (quiet processes, docs/tracer.md: `records` stays at a
  handful): the figure is the run's fixed Python work spread over the spawns;
* kept execs: a shell spawning `dpkg --print-architecture` (a link to /bin/true, outside
  any temporary directory): the package-manager rule's name list keeps the exec and its
  exception is decided in Python, so every spawn's clone, exec, execve and exit records
  reach Python and no alert is made; per spawn. The bench fails if they do not arrive.

The consumer's time is what Detector counts around each batch (state, rules, output):
wall time, and since the CPU-time counter exists, the consumer thread's CPU time (wall
time includes being preempted by the workload and the tracer, which pinned runs put
on the same CPU). `--agent` (repeatable) compares installs side by side, interleaved;
the default is the `workload-agent` of this Python. Figures, not a test: this machine
is shared, so compare installs within one run only.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agent_cmd import agent_exe  # noqa: E402

_STAT = re.compile(r"(\w+)=([0-9.]+)")


def run(agent: str, argv: list, pin: bool) -> dict:
    cmd = ["taskset", "-c", "0"] if pin else []
    cmd += [agent, "run", "--priority", "security", "--stats", "--alerts-to", os.devnull, "--"] + argv
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode == 125:
        sys.exit(f"bench: the agent refused to start the workload (priority security): {cmd}")
    line = next((ln for ln in proc.stderr.splitlines() if "consumer_us_per_record" in ln), None)
    if line is None:
        sys.exit(f"bench: no --stats line from {agent}:\n{proc.stderr}")
    stats = {k: float(v) for k, v in _STAT.findall(line)}
    if not stats.get("stops"):
        sys.exit(f"bench: {agent} did not trace the workload (no stops)")
    return stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opens", type=int, default=20000)
    ap.add_argument("--spawns", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--agent", action="append", metavar="PATH",
                    help="a workload-agent executable (repeatable; default: this Python's)")
    ap.add_argument("--pin", action="store_true", help="run everything on CPU 0 (taskset -c 0)")
    a = ap.parse_args()
    agents = a.agent or [agent_exe()]
    py = os.path.realpath(sys.executable)   # not a shim script that would exec more
    opens = [py, "-c", "import os\nfor i in range(%d):\n"
                       "    os.close(os.open('/dev/null', os.O_WRONLY | os.O_CREAT))\n" % a.opens]
    loop = "i=0; while [ $i -lt %d ]; do %s; i=$((i+1)); done"
    spawns = ["/bin/sh", "-c", loop % (a.spawns, "/bin/true")]
    # not below /tmp: a program run from a temporary directory is what a rule is about
    links = tempfile.mkdtemp(prefix="wa-consumer-cost-", dir=os.path.expanduser("~"))
    os.symlink("/bin/true", os.path.join(links, "dpkg"))
    kept = ["/bin/sh", "-c", loop % (a.spawns, os.path.join(links, "dpkg") + " --print-architecture")]
    results = {(ag, w): [] for ag in agents for w in ("open", "quiet", "kept")}
    try:
        for _ in range(a.repeat):
            for ag in agents:   # interleaved, so every install meets the same machine moments
                stats = run(ag, opens, a.pin)
                if stats["records"] < a.opens:
                    sys.exit(f"bench: only {stats['records']:.0f} records of {a.opens} opens reached "
                             f"Python with {ag}: the C prefilter drops this open now, so the open "
                             f"figure would measure nothing; give the workload an open a rule needs")
                results[(ag, "open")].append(stats)
                results[(ag, "quiet")].append(run(ag, spawns, a.pin))
                stats = run(ag, kept, a.pin)
                if stats["records"] < 4 * a.spawns:
                    sys.exit(f"bench: only {stats['records']:.0f} records of {a.spawns} kept execs "
                             f"reached Python with {ag}: the exec program drops them now")
                results[(ag, "kept")].append(stats)
    finally:
        shutil.rmtree(links, ignore_errors=True)
    print(f"consumer time, median of {a.repeat}{' (pinned to CPU 0)' if a.pin else ''}:")
    for ag in agents:
        for w, per, label in (("open", 1, "per kept open"), ("quiet", None, "per quiet spawn"),
                              ("kept", None, "per kept exec")):
            rows = results[(ag, w)]
            scale = [1.0 if per else r["records"] / a.spawns for r in rows]
            wall = statistics.median(r["consumer_us_per_record"] * s for r, s in zip(rows, scale))
            text = f"wall {wall:7.1f} us"
            if all("consumer_cpu_us_per_record" in r for r in rows):
                cpu = statistics.median(r["consumer_cpu_us_per_record"] * s for r, s in zip(rows, scale))
                text += f"  cpu {cpu:7.1f} us"
            rec = statistics.median(r["records"] for r in rows)
            stops = statistics.median(r["stops"] for r in rows)
            print(f"  {ag}  {label:16} {text}   (records {rec:.0f}, stops {stops:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
