"""Hostile or garbled records never crash the tracker (the tracee controls the data)."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workload_agent.events import records as R
from workload_agent.events.records import Blob, Record
from workload_agent.rules.event import Container
from workload_agent.rules.output import compile_output
from workload_agent.state import StateTracker, UserDb

from .records import ARCH, FAKE, NR

NAMES = sorted(NR)
OUTPUT = compile_output("%evt.args %proc.name %proc.cmdline %proc.pname %fd.name %fd.type "
                        "%fd.directory %fd.filename %fd.sip %fd.l4proto %user.name %proc.cwd "
                        "%proc.exepath %proc.aname[3] %evt.arg.fd %evt.arg.name")

u64 = st.one_of(st.integers(0, 2 ** 64 - 1), st.integers(-200, 200).map(lambda v: v & (2 ** 64 - 1)),
                st.integers(0, 10))
tids = st.sampled_from([FAKE, FAKE + 1, FAKE + 2])
blob = st.builds(Blob, st.integers(0, 9), st.binary(max_size=64), st.booleans(), st.booleans())


@st.composite
def records(draw):
    kind = draw(st.sampled_from([R.K_SYSCALL] * 6 + [R.K_CLONE, R.K_EXEC, R.K_EXIT, R.K_DROP,
                                                     R.K_SIGNAL]))
    tid = draw(tids)
    nr = NR[draw(st.sampled_from(NAMES))] if kind == R.K_SYSCALL else draw(st.integers(0, 3))
    return Record(kind, draw(st.integers(0, 63)), 1_000, draw(st.integers(0, 2_000)), FAKE, tid,
                  nr, draw(st.sampled_from([ARCH, ARCH, 0x40000003])),
                  draw(st.integers(-(2 ** 63), 2 ** 63 - 1) | st.integers(-150, 10)),
                  tuple(draw(st.lists(u64, min_size=6, max_size=6))),
                  draw(st.sampled_from([FAKE, FAKE + 1, FAKE + 2, 0, 2 ** 32 - 1])),
                  draw(st.dictionaries(st.integers(0, 5), blob, max_size=3)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), max_size=25))
def test_random_records_never_crash(tmp_path_factory, recs):
    d = tmp_path_factory.mktemp("u")
    t = StateTracker(Container(), agent_pid=os.getpid(),
                     users=UserDb(str(d / "passwd"), str(d / "group")))
    for r in recs:
        ev = t.process(r)
        if ev is not None:
            OUTPUT.render(ev)
            OUTPUT.fields(ev)
