"""Windowed per-process counts (state/rates.py) behind the wa.rate.* fields."""
from __future__ import annotations

from hypothesis import given, strategies as st

from workload_agent.rules.event import Event, Fd, Param, Process
from workload_agent.rules.fields import REGISTRY
from workload_agent.state.rates import SWEEP_EVERY, WINDOW_NS, Rates, appended_suffix

S = 1_000_000_000


def connect(pid, port, ts):
    fd = Fd(3, type="ipv4", typechar="4", name=f"10.0.0.1:40000->10.0.0.2:{port}", sport=port)
    return Event("connect", ts=ts, res=-111, proc=Process(pid=pid), fd=fd)


def rename(pid, old, new, ts):
    return Event("renameat2", ts=ts, res=0, proc=Process(pid=pid),
                 params=[Param("oldpath", old, None), Param("newpath", new, None)])


def field(name, ev):
    spec, _ = REGISTRY.lookup(name)
    return spec.extractor(ev)


def test_distinct_ports_per_process_within_the_window():
    rates = Rates()
    evs = [connect(10, 1000 + i, i * S // 10) for i in range(25)]
    evs.append(connect(10, 1000, 3 * S))          # a port seen already: not counted again
    evs.append(connect(11, 2000, 3 * S))          # another process: its own count
    for ev in evs:
        rates.observe(ev)
    assert [field("wa.rate.connect_ports", ev) for ev in evs[:3]] == [1, 2, 3]
    assert field("wa.rate.connect_ports", evs[24]) == 25
    assert field("wa.rate.connect_ports", evs[25]) == 25
    assert field("wa.rate.connect_ports", evs[26]) == 1
    # 10 s after the burst the old ports have left the window
    late = connect(10, 5000, 3 * S + WINDOW_NS)
    rates.observe(late)
    assert field("wa.rate.connect_ports", late) == 1


def test_an_event_keeps_the_count_it_saw():
    rates = Rates()
    first = connect(10, 1, 0)
    rates.observe(first)
    for i in range(2, 10):
        rates.observe(connect(10, i, i))
    assert field("wa.rate.connect_ports", first) == 1


def test_suffix_renames_count_only_appended_extensions():
    rates = Rates()
    kinds = [rename(7, "/d/a.txt", "/d/a.txt.locked", 1),     # counted
             rename(7, "/d/x.pyc.1403", "/d/x.pyc", 2),       # atomic replace: not
             rename(7, "/d/tmp_obj_1", "/d/ab/cdef", 3),      # git object: not
             rename(7, "/d/b.txt", "/d/b.txt.locked", 4)]
    for ev in kinds:
        rates.observe(ev)
    assert [field("wa.rate.suffix_renames", ev) for ev in kinds] == [1, 1, 1, 2]


def test_fields_are_unavailable_on_events_never_counted():
    assert field("wa.rate.connect_ports", Event("connect", proc=None)) is None


def test_quiet_processes_are_forgotten():
    rates = Rates()
    for pid in range(SWEEP_EVERY - 1):
        rates.observe(connect(pid, 80, 0))
    assert rates.tracked() == SWEEP_EVERY - 1
    rates.observe(connect(99999, 80, WINDOW_NS + 1))
    assert rates.tracked() == 1


@given(st.text(max_size=20), st.text(max_size=20))
def test_appended_suffix_never_raises(old, new):
    result = appended_suffix(old, new)
    assert result == (bool(old) and new.startswith(old) and len(new) > len(old) + 1
                      and new[len(old)] == "." and "/" not in new[len(old):])
