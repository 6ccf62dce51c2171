"""Event -> capture file -> Event gives the same value for every field the registry knows."""
from __future__ import annotations

import io
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workload_agent.capture.format import WRITABLE_VERSIONS, CaptureReader, CaptureWriter, Drop
from workload_agent.rules.compiler import compile_condition
from workload_agent.rules.condition import parse_condition
from workload_agent.rules.errors import ConditionError
from workload_agent.rules.fields import REGISTRY
from workload_agent.rules.fields import types as T
from workload_agent.rules.output import compile_output
from tests.capture.strategies import events

ARGS = {"index": ["0", "1", "2", "7"], "key": ["name", "x", "fd"], "index_or_key": ["0", "1", "name", "cpu"]}
DOTTED = ["name", "fd", "flags", "mode", "res", "raw", "exe", "args", "data"]


def _bound_fields():
    """Every field of the registry, with each argument form it takes."""
    out = []
    for spec in REGISTRY:
        forms = [None] if not spec.arg_required else []
        forms += ARGS.get(spec.arg, [])
        for arg in forms:
            out.append((spec.name, arg))
        if spec.dotted:
            out += [(f"{spec.name}.{s}", None) for s in DOTTED]
    bound = []
    for name, arg in out:
        for output in (False, True):
            try:
                bound.append((f"{name}[{arg}]" if arg else name, output,
                              REGISTRY.bind(name, arg, output=output)))
            except ConditionError:
                pass
    return bound


FIELDS = _bound_fields()


def _value(get, ev):
    try:
        v = get(ev)
    except Exception as exc:  # noqa: BLE001 - an extractor failing must fail the same way
        return ("raised", type(exc).__name__)
    if isinstance(v, list):
        return [T.to_json(x) for x in v]
    if isinstance(v, (str, int, bytes, float, tuple, type(None))):
        return v
    state = getattr(v, "__dict__", None) or {k: getattr(v, k) for k in getattr(v, "__slots__", ())}
    return (type(v).__name__, sorted(state.items()) if state else repr(v))


def _written(evs, version=None) -> str:
    """A capture file of the events and a drop (7, 2) after them; the caller unlinks it."""
    buf = io.BytesIO()
    w = CaptureWriter(buf, {"hostname": "h"}, **({} if version is None else {"version": version}))
    for ev in evs:
        w.write_event(ev)
    w.write_drop(7, 2)
    w.close()
    with tempfile.NamedTemporaryFile(suffix=".wacap", delete=False) as f:
        f.write(buf.getvalue())
    return f.name


def roundtrip(evs, version=None):
    path = _written(evs, version)
    try:
        reader = CaptureReader(path)
        got = list(reader.records())
    finally:
        os.unlink(path)
    assert reader.complete and reader.truncated is None
    assert version is None or reader.version == version
    assert isinstance(got[-1], Drop) and (got[-1].ts, got[-1].count) == (7, 2)
    return got[:-1]


def test_the_registry_is_covered():
    names = {b.spec.name for _, _, b in FIELDS}
    assert len(names) == len(REGISTRY)


@pytest.mark.parametrize("version", WRITABLE_VERSIONS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=4))
def test_every_field_replays_as_live(version, evs):
    # Capture the live values first: the writer may only read the events.
    live = [[(text, out, _value(b.get, ev)) for text, out, b in FIELDS] for ev in evs]
    replayed = roundtrip(evs, version)
    assert len(replayed) == len(evs)
    for want, ev in zip(live, replayed):
        got = [(text, out, _value(b.get, ev)) for text, out, b in FIELDS]
        assert got == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events(), st.data())
def test_conditions_and_outputs_replay_as_live(ev, data):
    # Conditions built from values the live event actually has, so that many are true.
    names = [t for t, out, b in FIELDS if not out]
    picked = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=6))
    by_text = {t: b for t, out, b in FIELDS if not out}
    clauses = []
    for t in picked:
        v = by_text[t].get(ev)
        if isinstance(v, str) and v and '"' not in v and "\\" not in v and v.isprintable():
            clauses.append(f'{t} = "{v}"')
        elif isinstance(v, bool) or (isinstance(v, int) and by_text[t].type in (T.INT64, T.UINT64, T.BOOL)):
            clauses.append(f"{t} = {str(v).lower()}")
        else:
            clauses.append(f"{t} exists")
    conds = []
    for c in clauses:
        try:
            conds.append((c, compile_condition(parse_condition(c))))
        except ConditionError:
            pass
    outputs = compile_output(" ".join(f"%{t}" for t, out, b in FIELDS if out and not b.spec.filter_only
                                      and "[" not in t))
    live = ([p(ev) for _, p in conds], outputs.render(ev), outputs.fields(ev))
    (replayed,) = roundtrip([ev])
    assert ([p(replayed) for _, p in conds], outputs.render(replayed), outputs.fields(replayed)) == live


def test_unchanged_state_is_written_once():
    from workload_agent.rules.event import Event, Fd, Process, User

    parent = Process(1, name="init", user=User(0, "root"))
    p = Process(2, name="sh", parent=parent, user=parent.user, fds={3: Fd(3, "file", "f", "/x")})
    buf = io.BytesIO()
    w = CaptureWriter(buf, {}, chunk_bytes=1 << 30, flush_seconds=1e9)
    w.write_event(Event("openat", proc=p, fd=p.fds[3]))
    one = sum(len(b) for b in w._buf)
    for i in range(50):
        w.write_event(Event("openat", ts=i, proc=p, fd=p.fds[3]))
    fifty = sum(len(b) for b in w._buf) - one
    assert fifty < 50 * one / 4  # the process, its parent, user and fd are not repeated
    p.name = "bash"  # a change is a new snapshot of that process only
    w.write_event(Event("openat", proc=p, fd=p.fds[3]))
    w.close()
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(buf.getvalue())
    try:
        got = list(CaptureReader(f.name).records())
    finally:
        os.unlink(f.name)
    assert [e.proc.name for e in got] == ["sh"] * 51 + ["bash"]
    assert got[0].proc is got[50].proc and got[51].proc is not got[50].proc
    assert got[51].proc.parent is got[0].proc.parent


@pytest.mark.parametrize("version", WRITABLE_VERSIONS)
def test_in_place_changes_of_the_state_are_seen(version):
    """The tracker mutates lists, dicts and nested objects in place; each change must
    produce a new snapshot, and earlier events keep their old one."""
    from workload_agent.rules.event import Container, Event, Fd, Mount, Process, User

    ctr = Container(id="c1", mounts=[Mount("/a", "/b")], labels={"k": "v"})
    parent = Process(1, name="init", user=User(0, "root"), container=ctr)
    p = Process(2, name="sh", parent=parent, user=User(0, "root"), args=["-c", "x"], container=ctr,
                fds={3: Fd(3, "file", "f", "/x")})
    changes = [
        lambda: p.args.append("more"),
        lambda: p.fds.__setitem__(4, Fd(4, "ipv4", "4", "1.2.3.4:80")),
        lambda: setattr(p.fds[3], "name", "/y"),
        lambda: setattr(p.user, "name", "nobody"),
        lambda: setattr(parent, "name", "systemd"),
        lambda: ctr.labels.__setitem__("k", "w"),
        lambda: setattr(ctr.mounts[0], "rdwr", False),
        lambda: p.env.append("A=1"),
    ]
    probe = compile_output("%proc.args|%fd.types|%proc.pname|%user.name|%container.label.k|"
                           "%container.mounts|%proc.env|%fd.name")
    live = []
    buf = io.BytesIO()
    w = CaptureWriter(buf, {}, version=version)
    for change in [lambda: None] + changes:
        change()
        ev = Event("openat", proc=p, fd=p.fds[3])
        live.append(probe.render(ev))
        w.write_event(ev)
    w.close()
    assert len(set(live)) == len(live)  # every change shows in the probe
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(buf.getvalue())
    try:
        got = [probe.render(e) for e in CaptureReader(f.name).records()]
    finally:
        os.unlink(f.name)
    assert got == live


def test_forgetting_the_remembered_state_keeps_replay_exact(monkeypatch):
    from workload_agent.capture import format as F
    from workload_agent.rules.event import Event, Process

    monkeypatch.setattr(F, "MAX_REMEMBERED", 3)
    parent = Process(1, name="init")
    procs = [Process(10 + i, name=f"p{i}", parent=parent) for i in range(10)]
    buf = io.BytesIO()
    w = CaptureWriter(buf, {})
    for i in range(40):
        w.write_event(Event("openat", num=i, proc=procs[i % 10]))
    w.close()
    assert len(w._interner.known) <= 4
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(buf.getvalue())
    try:
        got = list(CaptureReader(f.name).records())
    finally:
        os.unlink(f.name)
    assert [(e.num, e.proc.name, e.proc.parent.name) for e in got] == [(i, f"p{i % 10}", "init") for i in range(40)]


@pytest.mark.parametrize("version", WRITABLE_VERSIONS)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=6), st.data())
def test_reading_some_types_gives_those_events_as_reading_all_does(version, evs, data):
    """replay asks the reader for the types its rules can match: the events it gets are
    the ones a full read gives, with the same field values, the drop included."""
    types = data.draw(st.sets(st.sampled_from(sorted({ev.type for ev in evs} | {"openat", "bogus"}))))
    path = _written(evs, version)
    try:
        every = list(CaptureReader(path).records())
        reader = CaptureReader(path)
        some = list(reader.records(types))
    finally:
        os.unlink(path)
    assert reader.events_read == len(evs)
    want = [x for x in every if isinstance(x, Drop) or x.type in types]
    assert [type(x) for x in some] == [type(x) for x in want]
    for a, b in zip(some, want):
        if isinstance(a, Drop):
            assert (a.ts, a.count) == (b.ts, b.count)
            continue
        assert [(t, o, _value(bf.get, a)) for t, o, bf in FIELDS] == \
            [(t, o, _value(bf.get, b)) for t, o, bf in FIELDS]


def _read_back(buf):
    with tempfile.NamedTemporaryFile(suffix=".wacap", delete=False) as f:
        f.write(buf.getvalue())
    try:
        reader = CaptureReader(f.name)
        return reader, list(reader.records())
    finally:
        os.unlink(f.name)


@pytest.mark.parametrize("version", WRITABLE_VERSIONS)
def test_fd_table_changes_keep_each_events_view_and_let_dead_fds_go(version):
    """Opens, closes, an fd replaced under its number, dup2 over a live fd: each event keeps
    the table it saw, and the reader holds only what is still in use."""
    from workload_agent.rules.event import Event, Fd, Process

    p = Process(5, name="sh")
    buf = io.BytesIO()
    w = CaptureWriter(buf, {}, version=version)
    live = []
    for i in range(200):
        n = 3 + i % 4
        if i % 5 == 4 and n in p.fds:
            ev = Event("close", num=i, proc=p, fd=p.fds[n])
            live.append((i, sorted((k, f.name) for k, f in p.fds.items())))
            w.write_event(ev)
            del p.fds[n]
            continue
        if i % 7 == 0:
            p.fds[1] = Fd(1, "file", "f", f"/dev/null{i}")   # replaced: the old Fd is dead
        p.fds[n] = Fd(n, "file", "f", f"/f{i}")
        live.append((i, sorted((k, f.name) for k, f in p.fds.items())))
        w.write_event(Event("openat", num=i, proc=p, fd=p.fds[n]))
    w.close()
    reader, got = _read_back(buf)
    assert [(e.num, sorted((k, f.name) for k, f in e.proc.fds.items())) for e in got] == live
    assert got[0].proc.fds is not got[-1].proc.fds
    assert reader.snapshots <= 8, reader.snapshots


def test_events_the_compact_record_cannot_hold_are_written_whole():
    """A param holding a state object, or params that are not Params, need the general
    record (format 3 keeps writing it); they read back as written."""
    from workload_agent.rules.event import Event, Fd, Param, Process

    p = Process(7, name="x", fds={3: Fd(3, "file", "f", "/a")})
    evs = [Event("openat", proc=p, fd=p.fds[3], params=[Param("fd", "3", "<f>/a", p.fds[3])]),
           Event("openat", num=2, proc=p, params=[("odd", 1)]),
           Event("openat", num=3, proc=p, params=[Param("name", "/a", None, "/a")])]
    buf = io.BytesIO()
    w = CaptureWriter(buf, {})
    for ev in evs:
        w.write_event(ev)
    w.close()
    reader, got = _read_back(buf)
    assert reader.version == 3
    assert got[0].param("fd").raw.name == "/a" and got[0].param("fd").raw is got[0].fd
    assert got[1].params == [("odd", 1)]
    assert got[2].param("name").plain == "/a" and got[2].param("name").raw == "/a"
    assert [e.num for e in got] == [1, 2, 3]


def test_more_event_kinds_than_the_writer_remembers_read_back_right(monkeypatch):
    from workload_agent.capture import format as F
    from workload_agent.rules.event import Event, Param

    monkeypatch.setattr(F, "MAX_KINDS", 2)
    types = ["openat", "execve", "connect", "close", "unlinkat"]
    evs = [Event(types[i % 5], num=i, category=f"c{i % 3}", params=[Param(f"p{i % 2}", str(i), None, i)])
           for i in range(40)]
    buf = io.BytesIO()
    w = CaptureWriter(buf, {})
    for ev in evs:
        w.write_event(ev)
    w.close()
    assert len(w._kinds) <= 2
    _, got = _read_back(buf)
    assert [(e.type, e.num, e.category, [(p.name, p.plain, p.raw) for p in e.params]) for e in got] == \
        [(e.type, e.num, e.category, [(p.name, p.plain, p.raw) for p in e.params]) for e in evs]


@pytest.mark.parametrize("version", WRITABLE_VERSIONS)
def test_params_read_by_name_then_all_are_the_same_objects_and_the_last_of_a_name_wins(version):
    from workload_agent.rules.event import Event, Param

    ev = Event("openat", params=[Param("fd", "3", None, 3), Param("name", "/a", None, "/a"),
                                 Param("fd", "4", None, 4)])
    buf = io.BytesIO()
    w = CaptureWriter(buf, {}, version=version)
    w.write_event(ev)
    w.write_event(ev)
    w.close()
    _, (a, b) = _read_back(buf)
    fd = a.param("fd")
    assert fd.raw == 4 and a.param("fd") is fd and a.param("missing") is None
    assert [(p.name, p.raw) for p in a.params] == [("fd", 3), ("name", "/a"), ("fd", 4)]
    assert a.params[2] is fd and a.param("fd") is fd
    assert [(p.name, p.raw) for p in b.params] == [("fd", 3), ("name", "/a"), ("fd", 4)]
    assert b.param("fd").raw == 4 and b.param("name").plain == "/a"


def test_event_rows_laid_out_otherwise_are_read_by_the_names_the_header_gives(monkeypatch):
    """A writer of the same format version whose Event rows hold their fields in another
    order (and one field this reader does not know) still replays field for field."""
    import operator

    from workload_agent.capture import format as F
    from workload_agent.rules.event import Event, Param, Process

    fields = tuple(reversed(F.ROW_FIELDS)) + ("future_field",)
    schema = F.schema

    def other_schema():
        out = schema()
        out["EventRow"] = list(fields)
        return out

    def other_rows(ev):
        return tuple(getattr(ev, n, "x") for n in fields)

    monkeypatch.setattr(F, "schema", other_schema)
    monkeypatch.setattr(F, "_row_values", other_rows)
    p = Process(3, name="sh")
    evs = [Event("openat", ts=10 + i, num=i, tid=3, cpu=1, res=i - 1, buffer=b"b" if i else None, prev_ts=i,
                 proc=p, params=[Param("fd", str(i), None, i)]) for i in range(3)]
    buf = io.BytesIO()
    w = CaptureWriter(buf, {})
    for ev in evs:
        w.write_event(ev)
    w.close()
    monkeypatch.setattr(F, "schema", schema)
    monkeypatch.setattr(F, "_row_values", operator.attrgetter(*F.ROW_FIELDS))
    reader, got = _read_back(buf)
    assert not reader._fast_rows
    want = [(e.ts, e.num, e.tid, e.cpu, e.res, e.buffer, e.prev_ts, e.proc.name, e.param("fd").raw) for e in evs]
    assert [(e.ts, e.num, e.tid, e.cpu, e.res, e.buffer, e.prev_ts, e.proc.name, e.param("fd").raw)
            for e in got] == want
    assert not any(hasattr(e, "future_field") for e in got)
