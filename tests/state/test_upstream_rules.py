"""The upstream stable ruleset, evaluated on the tracker's events of real attack-like
workloads (container context set explicitly): the state is what those rules need."""
from __future__ import annotations

import os
import shutil
import sys
import textwrap
import time

import pytest

from tests.conftest import needs_tracing
from tests.rules.upstream_files import upstream_file

from workload_agent import runner
from workload_agent.detect import traced_syscalls
from workload_agent.rules.event import Container
from workload_agent.rules.loader import load_rules
from workload_agent.state import StateTracker
from workload_agent.events.arch import native_arch

needs_tracing()


@pytest.fixture(scope="module")
def ruleset():
    result = load_rules([str(upstream_file())])
    assert result.ok, result.errors
    return result.ruleset


class Alerts:
    def __init__(self, ruleset):
        self.tracker = StateTracker(Container(id="abcdef012345", name="app", image="app:1",
                                              repository="app", tag="1", privileged=False),
                                    start_ns=time.time_ns())
        self.ruleset = ruleset
        self.fired = []

    def handle(self, batch):
        for r in batch:
            ev = self.tracker.process(r)
            if ev is not None:
                for rule in self.ruleset.match(ev, "all"):
                    self.fired.append((rule.name, rule.output.render(ev)))

    def close(self, stats):
        pass


def run_rules(ruleset, argv):
    """The rules on what production traces for them (not a wider set that could hide a
    missing state syscall)."""
    a = Alerts(ruleset)
    names, _ = traced_syscalls(ruleset, native_arch())
    runner.run(list(argv), sink=a, syscalls=names)
    return a.fired


def names(fired):
    return {n for n, _ in fired}


@pytest.mark.skipif(os.geteuid() != 0, reason="reading /etc/shadow needs root")
def test_read_sensitive_file(ruleset):
    fired = run_rules(ruleset, ["sh", "-c", "cat /etc/shadow > /dev/null"])
    assert "Read sensitive file untrusted" in names(fired)
    out = dict(fired)["Read sensitive file untrusted"]
    assert "file=/etc/shadow" in out and "process=cat" in out and "parent=sh" in out


def test_drop_and_execute(ruleset, tmp_path):
    dropped = tmp_path / "implant"
    fired = run_rules(ruleset, ["sh", "-c", "cp %s %s && %s" % (shutil.which("true"), dropped,
                                                                 dropped)])
    assert "Drop and execute new binary in container" in names(fired)
    out = dict(fired)["Drop and execute new binary in container"]
    assert "proc_exe=%s" % dropped in out and "exe_flags=EXE_WRITABLE|EXE_UPPER_LAYER" in out


def test_fileless_memfd(ruleset, tmp_path):
    script = tmp_path / "m.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        fd = os.memfd_create("stage2", 0)
        os.write(fd, open(sys.argv[1], "rb").read())
        os.execve(fd, ["stage2"], dict(os.environ))
    """))
    fired = run_rules(ruleset, [sys.executable, str(script), shutil.which("true")])
    assert "Fileless execution via memfd_create" in names(fired)


def test_stdio_redirected_to_a_socket(ruleset, tmp_path):
    script = tmp_path / "rev.py"
    script.write_text(textwrap.dedent("""
        import os, socket, threading
        srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
        threading.Thread(target=srv.accept, daemon=True).start()
        s = socket.create_connection(srv.getsockname())
        os.dup2(s.fileno(), 0)
        os.dup2(s.fileno(), 1)
    """))
    fired = run_rules(ruleset, [sys.executable, str(script)])
    hits = [o for n, o in fired if n == "Redirect STDOUT/STDIN to Network Connection in Container"]
    assert len(hits) == 2
    assert "fd_type=ipv4" in hits[0] and "fd_proto=tcp" in hits[0]


def test_benign_shell_pipeline_is_quiet(ruleset, tmp_path):
    fired = run_rules(ruleset, ["sh", "-c", "cd %s && ls -la /etc > list.txt && wc -l list.txt "
                                            ">/dev/null" % tmp_path])
    assert not fired
