"""Registry shape and the less common fields."""
from __future__ import annotations

import pytest

from workload_agent.rules.compiler import compile_condition
from workload_agent.rules.condition import parse_condition
from workload_agent.rules.event import Event, Fd, Param, Process
from workload_agent.rules.fields import REGISTRY
from workload_agent.rules.fields import types as T
from workload_agent.rules.fields.spec import ARG_FORMS


def ev(cond, event):
    return compile_condition(parse_condition(cond))(event)


def test_every_spec_is_well_formed():
    assert len(REGISTRY) > 250
    for spec in REGISTRY:
        assert spec.type in T.ALL_TYPES, spec.name
        assert spec.arg in ARG_FORMS, spec.name
        assert len(spec.desc) > 5 and spec.desc.endswith((".", ")")), spec.name
        assert "." in spec.name


REFERENCE_FIELDS = """
evt.around evt.outputtime thread.nametid evt.buflen.in evt.buflen.out evt.buflen.file
evt.buflen.file.in evt.buflen.file.out evt.buflen.net evt.buflen.net.in evt.buflen.net.out
evt.count.error.file evt.count.error.net evt.count.error.memory evt.count.error.other
evt.deltatime evt.deltatime.s evt.deltatime.ns evt.latency evt.latency.s evt.latency.ns
evt.latency.quantized evt.latency.human evt.wait_latency fdlist.nums fdlist.names fdlist.cips
fdlist.sips fdlist.cports fdlist.sports proc.fdusage proc.nchilds proc.pgid.name proc.pgid.exe
proc.pgid.exepath thread.cpu thread.cpu.user thread.cpu.system thread.exectime
thread.totexectime evt.type.is syscall.type evt.category evt.abspath fs.path.name
fs.path.sourceraw proc.exe_ino.ctime_duration_pidns_start proc.pidns_init_start_ts
k8s.pod.label k8s.pod.labels container.label container.labels container.duration
fd.containername fd.dev.major fd.types fd.is_upper_layer proc.is_container_healthcheck
""".split()


@pytest.mark.parametrize("name", REFERENCE_FIELDS)
def test_reference_fields_present(name):
    assert REGISTRY.get(name) is not None


def test_evt_around():
    e = Event("open", ts=1_000_500_000_000)
    assert ev("evt.around[1000000000000] = 600", e)
    assert not ev("evt.around[1000000000000] = 400", e)


def test_buflen_variants_and_error_counts():
    sock = Fd(4, type="ipv4")
    read = Event("recvfrom", res=10, fd=sock, category="net")
    assert ev("evt.buflen = 10 and evt.buflen.in = 10 and evt.buflen.net.in = 10", read)
    assert not ev("evt.buflen.out exists or evt.buflen.file exists", read)
    failed = Event("openat", res=-2, category="file")
    assert ev("evt.count.error = 1 and evt.count.error.file = 1", failed)
    assert not ev("evt.count.error.net exists", failed)
    assert ev("evt.count.error.other = 1", Event("kill", res=-1, category="signal"))


def test_deltatime_and_relative_times():
    e = Event("open", ts=5_000_000_123, prev_ts=2_000_000_000, start_ts=1_000_000_000)
    assert ev("evt.deltatime = 3000000123 and evt.deltatime.s = 3 and evt.deltatime.ns = 123", e)
    assert ev("evt.reltime.s = 4 and evt.rawtime.ns = 123", e)
    assert not ev("evt.deltatime exists", Event("open"))


def test_fdlist_and_leaders():
    proc = Process(pid=9, name="srv", nthreads=3, fdlimit=4,
                   fds={3: Fd(3, type="ipv4", name="a", sport=80), 5: Fd(5, type="file", name="/x")})
    leader = Process(pid=2, name="sh")
    proc.pgid_leader = leader
    e = Event("poll", proc=proc, params=[Param("fds", "3:1 5:1", None, [(3, 1), (5, 1)])])
    assert ev("fdlist.nums = '3,5' and fdlist.names = 'a,/x' and fdlist.sports = 80", e)
    assert ev("proc.pgid.name = sh and proc.nchilds = 2 and proc.fdusage = 50", e)
    assert not ev("fdlist.nums exists", Event("read", proc=proc))


def test_abspath_and_fs_path():
    e = Event("renameat", res=0, params=[Param("oldpath", "a", "/tmp/a"),
                                         Param("newpath", "/tmp//b/../c")])
    assert ev("evt.abspath.src = /tmp/a and evt.abspath.dst = /tmp/c", e)
    assert ev("fs.path.source = /tmp/a and fs.path.target = /tmp/c and fs.path.sourceraw = a", e)
    assert not ev("fs.path.source exists", Event("renameat", res=-1, params=e.params))


def test_type_is_and_syscall_type():
    assert ev("evt.type.is.open = 1 and evt.type.is.close = 0", Event("open"))
    assert ev("syscall.type = open", Event("open"))
    assert not ev("syscall.type exists", Event("procexit"))
