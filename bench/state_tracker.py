#!/usr/bin/env python3
"""Cost of the state tracker per event, measured inside a real traced run.

    python3 bench/state_tracker.py [--files 20000] [--procs 300]

Workloads: (a) a Python loop opening, reading and closing files (open/close hot
path), (b) a shell spawning short processes (clone/execve/procexit, with the
/proc reads an exec costs), (c) the same events with one field-heavy condition
evaluated on each, as the detection pipeline would. Prints microseconds per event
spent in StateTracker.process (and in evaluation for (c)).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workload_agent import runner  # noqa: E402
from workload_agent.events.params import DEFAULT_SYSCALLS, STATEFUL_SYSCALLS  # noqa: E402
from workload_agent.rules.compiler import compile_condition  # noqa: E402
from workload_agent.rules.condition import parse_condition  # noqa: E402
from workload_agent.state import StateTracker, detect_container  # noqa: E402

COND = ("evt.type in (open, openat) and fd.directory in (/etc, /root/.ssh) and "
        "proc.pname != sshd and not proc.cmdline contains 'x' and user.name != nobody")


class TimedSink:
    def __init__(self, evaluate: bool) -> None:
        self.tracker = StateTracker(detect_container())
        self.pred = compile_condition(parse_condition(COND)) if evaluate else None
        self.records = self.events = 0
        self.track_ns = self.eval_ns = 0

    def handle(self, batch) -> None:
        clock = time.perf_counter_ns
        for r in batch:
            t0 = clock()
            ev = self.tracker.process(r)
            t1 = clock()
            self.track_ns += t1 - t0
            self.records += 1
            if ev is not None:
                self.events += 1
                if self.pred is not None:
                    self.pred(ev)
                    self.eval_ns += clock() - t1

    def close(self, stats) -> None:
        self.stats = stats


def run(name, argv, evaluate=False):
    sink = TimedSink(evaluate)
    # security: a tracer that cannot start fails the bench instead of measuring nothing
    code = runner.run(argv, sink=sink, syscalls=sorted(STATEFUL_SYSCALLS | DEFAULT_SYSCALLS),
                      priority="security")
    if sink.records == 0:
        sys.exit(f"bench: nothing was traced (exit {code})")
    per = sink.track_ns / max(sink.records, 1) / 1000
    line = f"{name:28} records={sink.records:7} events={sink.events:7} track={per:6.1f} us/record"
    if evaluate:
        line += f"  eval={sink.eval_ns / max(sink.events, 1) / 1000:5.1f} us/event"
    print(line + f"  drops={sink.stats['drops']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--procs", type=int, default=300)
    a = ap.parse_args()
    loop = ("import os\nfor i in range(%d):\n    fd = os.open('/etc/hostname', os.O_RDONLY)\n"
            "    os.read(fd, 64)\n    os.close(fd)\n" % a.files)
    run("open/read/close loop", [sys.executable, "-c", loop])
    run("shell spawning processes", ["sh", "-c", "i=0; while [ $i -lt %d ]; do /bin/true; "
                                     "i=$((i+1)); done" % a.procs])
    run("open loop + condition", [sys.executable, "-c", loop], evaluate=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
