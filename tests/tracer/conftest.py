import os
import subprocess
import sys

import pytest

from workload_agent import runner
from workload_agent.events import records as R
from workload_agent.events.display import syscall_name


class Collector:
    def __init__(self):
        self.records = []
        self.stats = None

    def handle(self, batch):
        self.records.extend(batch)

    def close(self, stats):
        self.stats = stats

    def syscalls(self, name=None):
        out = [r for r in self.records if r.kind == R.K_SYSCALL]
        if name is not None:
            out = [r for r in out if syscall_name(r.arch, r.nr) == name]
        return out

    def of_kind(self, kind):
        return [r for r in self.records if r.kind == kind]


@pytest.fixture
def trace():
    """Run argv under the tracer in this process; returns (exit code, Collector)."""
    def _trace(argv, **kw):
        c = Collector()
        code = runner.run(list(argv), sink=c, **kw)
        return code, c
    return _trace


AGENT = [sys.executable, "-m", "workload_agent"]


@pytest.fixture
def agent_cmd():
    return list(AGENT)
