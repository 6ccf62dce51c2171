"""Exec sessions from the records the tracer sends: an attached process starts one (or
joins its parent's), ECS Exec's agent is recognised and starts none, the programs its
session worker runs do; the shipped rule reports each start once."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from workload_agent.events import capture_kinds as K, facts
from workload_agent.events import records as R
from workload_agent.events.records import Blob, Record
from workload_agent.rules.event import Container
from workload_agent.rules.fields import REGISTRY
from workload_agent.rules.loader import load_rules
from workload_agent.state import StateTracker
from tests.state import records as T

RULES = Path(__file__).resolve().parents[2] / "rules"
SSM = "/managed-agents/execute-command/"
P = T.FAKE + 100


def _field(ev, name):
    spec, _ = REGISTRY.lookup(name)
    return spec.extractor(ev)


def attach(tgid, exe, argv, *, ppid=0, tty=0, uid=0, comm=None, ret=0):
    """An ATTACH record as csrc/attach.c sends it."""
    ts = next(T._clock)
    if ret:
        return Record(R.K_ATTACH, 0, ts, 0, tgid, tgid, 0, T.ARCH, ret, (ts - 1000, 0, 0, 0, 0, 0), 0, {})
    exe_facts = facts.FILE_FACTS.pack(0x803, 4242, 0o100755, 0, 0, 1, 1, 1)   # old: not drift
    pf = facts.PROC_FACTS.pack(
        facts.PF_STAT | facts.PF_STATUS | facts.PF_EXE, ppid, tgid, tgid, tty, tgid, tgid, tgid,
        uid, uid, uid, uid, uid, uid, uid, uid, 0xFFFFFFFF, 0, 0, 0, 0, 0, 0, 1, 100, 10, 0, 5, 0,
        1024, exe_facts, (comm or exe.rsplit("/", 1)[-1])[:15].encode())
    blobs = {K.SLOT_PROC: Blob(K.PROC_FACTS, pf), K.SLOT_EXE: Blob(K.LINK, exe.encode()),
             K.SLOT_CWD: Blob(K.LINK, b"/"),
             K.SLOT_CMDLINE: Blob(K.ARGV, b"".join(a.encode() + b"\0" for a in argv)),
             K.SLOT_ENVIRON: Blob(K.ARGV, b"PATH=/bin\0"),
             K.SLOT_CGROUP: Blob(K.STR, b"0::/ecs/task/abc\n")}
    return Record(R.K_ATTACH, 0, ts, 0, tgid, tgid, 0, T.ARCH, 0, (ts - 1000, 0, 0, 0, 0, 0), 1, blobs)


@pytest.fixture(scope="module")
def ruleset():
    result = load_rules([str(RULES)])
    assert result.ok
    return result.ruleset


@pytest.fixture
def tracker():
    return StateTracker(Container(id="abcdef012345", name="app", image="app:1", repository="app",
                                  tag="1", privileged=False), start_ns=time.time_ns())


def fired(ruleset, ev):
    return [r.name for r in ruleset.match(ev, "all")] if ev is not None else []


def spawn(tracker, parent, child, exe, argv):
    """fork + exec of a traced process; returns the execve event."""
    tracker.process(T.clone(parent, child))
    tracker.process(T.exec_(child))
    return tracker.process(T.execve(child, exe, argv))


def test_an_attached_shell_starts_a_session_its_children_belong_to(tracker, ruleset):
    ev = tracker.process(attach(P, "/usr/bin/dash", ["sh", "-i"], tty=34816, comm="sh"))
    assert ev.type == "execve" and ev.proc.pid == P and ev.proc.parent is None
    assert _field(ev, "evt.is_exec_session_start") is True
    assert _field(ev, "proc.is_exec_session") is True
    assert (_field(ev, "proc.exec_session.pid"), _field(ev, "proc.exec_session.kind")) == (P, "exec")
    assert _field(ev, "proc.exec_session.cmdline") == "sh -i"
    assert _field(ev, "proc.tty") == 34816 and _field(ev, "proc.exepath") == "/usr/bin/dash"
    assert "Exec session started in container" in fired(ruleset, ev)
    child = spawn(tracker, P, P + 1, "/usr/bin/cat", ["cat", "/etc/shadow"])
    assert _field(child, "proc.is_exec_session") is True
    assert _field(child, "proc.exec_session.pid") == P
    assert _field(child, "evt.is_exec_session_start") is False
    assert "Exec session started in container" not in fired(ruleset, child)
    op = tracker.process(T.openat(P + 1, "/etc/shadow", 3))
    assert _field(op, "proc.exec_session.pid") == P and _field(op, "proc.name") == "cat"


def test_a_process_attached_after_its_parent_joins_the_parents_session(tracker):
    tracker.process(attach(P, "/usr/bin/dash", ["sh"], comm="sh"))
    ev = tracker.process(attach(P + 5, "/usr/bin/sleep", ["sleep", "100"], ppid=P))
    assert ev.proc.parent.pid == P
    assert _field(ev, "proc.exec_session.pid") == P
    assert _field(ev, "evt.is_exec_session_start") is False


def test_the_workload_is_not_an_exec_session(tracker):
    ev = spawn(tracker, tracker.agent_pid, P, "/bin/sh", ["sh", "-c", "true"])
    assert _field(ev, "proc.is_exec_session") is False
    assert _field(ev, "proc.exec_session.pid") is None


def test_ecs_exec_agent_is_recognised_and_its_session_worker_children_are_sessions(tracker, ruleset):
    agent = tracker.process(attach(P, SSM + "amazon-ssm-agent", [SSM + "amazon-ssm-agent"]))
    assert _field(agent, "proc.is_exec_session") is False
    assert fired(ruleset, agent) == []
    worker = spawn(tracker, P, P + 1, SSM + "ssm-agent-worker", [SSM + "ssm-agent-worker"])
    session_worker = spawn(tracker, P + 1, P + 2, SSM + "ssm-session-worker",
                           [SSM + "ssm-session-worker", "ecs-execute-command-0123"])
    for ev in (worker, session_worker):
        assert _field(ev, "proc.is_exec_session") is False
        assert fired(ruleset, ev) == []
    # The forked copy of the session worker is not a session until it execs the shell.
    tracker.process(T.clone(P + 2, P + 3))
    tracker.process(T.exec_(P + 3))
    shell = tracker.process(T.execve(P + 3, "/bin/sh", ["/bin/sh"]))
    assert _field(shell, "evt.is_exec_session_start") is True
    assert (_field(shell, "proc.exec_session.pid"), _field(shell, "proc.exec_session.kind")) == (P + 3, "ecs-exec")
    assert "Exec session started in container" in fired(ruleset, shell)
    cmd = spawn(tracker, P + 3, P + 4, "/usr/bin/id", ["id"])
    assert _field(cmd, "proc.exec_session.pid") == P + 3
    assert "Exec session started in container" not in fired(ruleset, cmd)
    # The root running another program later is not a second start.
    again = tracker.process(T.execve(P + 3, "/bin/bash", ["bash"]))
    assert _field(again, "evt.is_exec_session_start") is False


def test_a_copy_of_the_agent_outside_the_platform_mount_is_a_session(tracker):
    ev = tracker.process(attach(P, "/tmp/managed-agents/execute-command/amazon-ssm-agent",
                                ["amazon-ssm-agent"]))
    assert _field(ev, "proc.exec_session.kind") == "exec"


def test_failed_attaches_are_counted_and_a_denied_one_is_still_reported(tracker):
    assert tracker.process(attach(T.FAKE + 7, "", [], ret=-3)) is None   # ESRCH: gone
    # EPERM: not permitted; reported from /proc (here: none, the pid is fake, so nothing).
    assert tracker.process(attach(T.FAKE + 8, "", [], ret=-1)) is None
    assert tracker.attach_results == {"gone": 2, "denied": 1}


from hypothesis import given, settings, strategies as st

_blob = st.builds(Blob, st.sampled_from([K.PROC_FACTS, K.LINK, K.ARGV, K.STR, K.FILE_FACTS]),
                  st.binary(max_size=400), st.booleans(), st.booleans())


@settings(max_examples=200, deadline=None)
@given(blobs=st.dictionaries(st.sampled_from([K.SLOT_PROC, K.SLOT_EXE, K.SLOT_CWD, K.SLOT_CMDLINE,
                                              K.SLOT_ENVIRON, K.SLOT_CGROUP, 0, 1]), _blob, max_size=6),
       ret=st.sampled_from([0, -1, -3, -16, -22]), ppid=st.integers(-5, 2 ** 31 - 1))
def test_attach_records_with_damaged_blobs_never_raise(blobs, ret, ppid):
    tracker = StateTracker(Container(id="abcdef012345", name="app", image="app:1", repository="app",
                                     tag="1", privileged=False), start_ns=time.time_ns())
    good = attach(P, "/usr/bin/dash", ["sh"], ppid=ppid & 0x7FFFFFFF)
    for r in (good, Record(R.K_ATTACH, 0, good.ts_enter, 0, P + 1, P + 1, 0, T.ARCH, ret,
                           good.args, 0, blobs)):
        ev = tracker.process(r)
        if ev is not None:
            for name in ("proc.is_exec_session", "proc.exec_session.pid", "proc.cmdline",
                         "evt.is_exec_session_start", "proc.exepath", "proc.tty"):
                _field(ev, name)
