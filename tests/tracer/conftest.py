import subprocess
import sys
from pathlib import Path

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

    def decoded(self, name, ctx=None):
        """(record, Falco params) of each recorded call of this syscall, decoded strictly."""
        from workload_agent.events.decode import decode_params

        return [(r, decode_params(name, r.args, r.ret if r.has_exit else None, r.blobs, ctx, tid=r.tid,
                                  strict=True)) for r in self.syscalls(name)]


@pytest.fixture(scope="module")
def cc(tmp_path_factory):
    """Compiles a C test program (gcc is installed by .ci/run); returns its path."""
    def build(source: str, name: str = "prog") -> str:
        d = tmp_path_factory.mktemp(name)
        (d / f"{name}.c").write_text(source)
        subprocess.run(["gcc", "-O1", "-o", str(d / name), str(d / f"{name}.c")], check=True)
        return str(d / name)
    return build


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


UPSTREAM = Path(__file__).resolve().parents[3] / "shared" / "falco-rules"


def upstream_ruleset(enabled):
    """All three upstream rules files loaded, each rule enabled as ``enabled(rule)`` says;
    None when the files are not there."""
    from workload_agent.rules.loader import load_rules

    files = [UPSTREAM / n for n in ("falco_rules.yaml", "falco-incubating_rules.yaml",
                                    "falco-sandbox_rules.yaml")]
    if not all(f.is_file() for f in files):
        return None
    result = load_rules([str(f) for f in files])
    assert result.ok
    for rule in result.ruleset.rules:
        rule.enabled = enabled(rule)
    result.ruleset._reindex()
    return result.ruleset
