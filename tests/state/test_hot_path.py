"""The consumer's hot path remembers and rewrites things for speed; none of it may change
what an event says. Each shortcut is checked against the plain computation, and every
memo against the event that follows a different one."""
from __future__ import annotations

import dataclasses
import os
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from workload_agent.events import decode as D
from workload_agent.events.flags import TABLES, open_flags_to_ppm, render_flags
from workload_agent.events.params import SPECS
from workload_agent.rules import compiler
from workload_agent.rules.event import Container, Event, Process
from workload_agent.rules.loader import load_rules
from workload_agent.rules.output import compile_output
from workload_agent.state import StateTracker
from workload_agent.state.fds import copy_fd, new_fd
from workload_agent.state.process_tree import _INHERITED, fork_child
from workload_agent.state.values import _split

from .records import FAKE, clone, exec_, execve, openat

ME = os.getpid()
NUL_LISTS = st.binary(max_size=64) | st.lists(
    st.sampled_from([b"", b"a", b"PATH=/bin", b"\xc3", b"\xc3\xa9", b"\xff\xfe", b"x=\xe2\x82"]),
    max_size=6).map(lambda items: b"\0".join(items)) | st.builds(lambda b: b + b"\0", st.binary(max_size=32))


def _split_each(data: bytes) -> list:
    items = data.split(b"\0")
    if items and items[-1] == b"":
        items.pop()
    return [i.decode("utf-8", "surrogateescape") for i in items]


def _join_each(items: list) -> bytes:
    return b"".join(i + b"\0" for i in items)


@settings(max_examples=400, deadline=None)
@given(data=NUL_LISTS)
def test_nul_lists_decoded_at_once_are_the_items_decoded_one_by_one(data):
    assert _split(data) == _split_each(data)


@settings(max_examples=400, deadline=None)
@given(data=NUL_LISTS)
def test_argv_params_are_the_vector_split_and_joined(data):
    items = data.split(b"\0")
    if items and items[-1] == b"":
        items.pop()
    ev = D._Event("execve", (0,) * 6, 0, {1: D.Blob(4, data)}, None, 1)
    assert D._src_argv_all(ev, 1) == _join_each(items)
    assert D._src_argv_rest(ev, 1) == _join_each(items[1:])
    assert D._src_argv0(ev, 1) == (items[0].decode("utf-8", "surrogateescape") if items else "")


def _decode_by_steps(name, args, ret, blobs):
    """Each param through its source handler, in order: what a generated decoder inlines."""
    ev = D._Event(name, args, ret, blobs, None, 7)
    spec = SPECS[name]
    layout = spec.success_params if spec.success_params is not None and ev.ret == 0 else spec.params
    for p in layout:
        try:
            value = D._SOURCES[p.src[0]](ev, *p.src[1:])
            if p.type in D._PATH_TYPES:
                value = D._finish_path(ev, p, value)
        except Exception:  # noqa: BLE001 - as decode_params: a bad param is None
            value = None
        ev.out[p.name] = value
    return ev.out


REG = st.integers(0, (1 << 64) - 1) | st.sampled_from([0, 1, (1 << 64) - 100, (1 << 32) - 100, 0o100, 0o2101,
                                                        (1 << 63), (1 << 31)])
BLOB = st.builds(D.Blob, st.sampled_from([1, 2, 3, 4, 5]), st.binary(max_size=40))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(SPECS)), args=st.tuples(*[REG] * 6),
       ret=st.none() | st.integers(-4095, 70000), blobs=st.dictionaries(st.integers(0, 5), BLOB, max_size=3))
def test_generated_decoders_give_what_each_source_gives(name, args, ret, blobs):
    got = D.decode_params(name, args, ret, blobs, tid=7)
    want = _decode_by_steps(name, args, ret, blobs)
    assert list(got) == list(want)   # Falco's param order: evt.args is printed in it
    assert got == want
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


def test_path_match_memo_answers_each_path_for_itself():
    pred = compiler._pmatch(["/etc", "/usr/lib*/x"])
    paths = ["/etc/shadow", "/etcetera", "/usr/lib64/x/y", "/usr/lib/y", "/etc", "/"] * 3
    answers = [pred(p) for p in paths]
    assert answers == [True, False, True, False, True, False] * 3
    assert pred(None) is False and pred(7) is False


def test_path_match_memo_starts_over_at_its_bound(monkeypatch):
    monkeypatch.setattr(compiler, "_MEMO_LIMIT", 3)
    pred = compiler._pmatch(["/a"])
    for i in range(10):
        assert pred(f"/a/{i}") is True
        assert pred(f"/b/{i}") is False
    assert pred("/a/0") is True and pred("/b/0") is False


def test_flag_texts_are_remembered_per_table_and_value():
    flags = SPECS["openat"].params[3]
    assert flags.table == "file_flags"
    for value in (1, 4097, 1, 0, 4097 | 2, 1):
        assert D.render_param(flags, value) == (str(value), render_flags(value, TABLES["file_flags"]))
    other = dataclasses.replace(flags, table="clone_flags")
    assert D.render_param(other, 1)[1] == render_flags(1, TABLES["clone_flags"])
    assert D.render_param(flags, 1)[1] == render_flags(1, TABLES["file_flags"])


@settings(max_examples=200, deadline=None)
@given(flags=st.integers(0, (1 << 32) - 1))
def test_remembered_open_flags_are_the_conversion(flags):
    assert D._open_ppm(flags) == open_flags_to_ppm(flags)
    assert D._open_ppm(flags) == open_flags_to_ppm(flags)


def test_a_fork_child_is_what_the_dataclass_and_inheritance_give():
    parent = Process(pid=10, tid=10, name="sh", args=["-c", "x"], env=["A=1"], cwd="/tmp/", vmsize=9,
                     pfmajor=3, cgroups=[("cpu", "/x")], container=Container(id="c"))
    parent.fds[3] = new_fd(3, "file", "/etc/passwd", cloexec=True)
    child = fork_child(parent, 11, 123, share_fds=False)
    want = Process(pid=11, tid=11, parent=parent, start_ts=123)
    for attr in _INHERITED:
        setattr(want, attr, getattr(parent, attr))
    want.nthreads, want.fds = 1, child.fds
    for f in dataclasses.fields(Process):
        assert getattr(child, f.name) == getattr(want, f.name), f.name
    assert child.vmsize is None and child.pfmajor is None     # per process, not inherited
    assert child.fds[3] is not parent.fds[3] and child.fds[3].cloexec
    child.fds[3].cloexec = False
    assert parent.fds[3].cloexec                               # each owns its fd objects


def test_an_fd_copy_has_every_field_and_its_own_flags():
    fd = new_fd(4, "ipv4", "1.2.3.4:5->6.7.8.9:10", cloexec=True)
    fd.sotype, fd.name_changed, fd.sport = "tcp", True, 10
    new = copy_fd(fd, 9)
    assert [getattr(new, f) for f in fd.__dataclass_fields__ if f not in ("num", "name_changed")] == \
        [getattr(fd, f) for f in fd.__dataclass_fields__ if f not in ("num", "name_changed")]
    assert (new.num, new.cloexec, new.sotype, new.name_changed) == (9, False, "tcp", False)


def _tracker(etc) -> StateTracker:
    """A tracker whose users and groups are a root-only passwd and group in ``etc``."""
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\n")
    return StateTracker(Container(id="abcdef012345"), agent_pid=ME, users=str(etc),
                        start_ns=time.time_ns())


def test_events_built_from_a_dict_are_complete_and_do_not_share_state(tmp_path):
    tracker = _tracker(tmp_path)
    tracker.process(clone(ME, FAKE))
    tracker.process(exec_(FAKE))
    tracker.process(execve(FAKE, "/bin/cat", ["cat"]))
    first = tracker.process(openat(FAKE, "/etc/shadow", 3, os.O_RDONLY))
    second = tracker.process(openat(FAKE, "/dev/null", 4, os.O_WRONLY))
    for ev in (first, second):
        for f in dataclasses.fields(Event):
            assert hasattr(ev, f.name), f.name
    assert (first.type, first.res, first.fd.name, first.category) == ("openat", 3, "/etc/shadow", "file")
    assert (second.res, second.fd.name, second.prev_ts) == (4, "/dev/null", first.ts)
    assert first.params is not second.params
    out = compile_output("%fd.name %evt.arg.flags %proc.name")
    assert out.render(first) == "/etc/shadow O_RDONLY cat"
    assert out.render(second) == "/dev/null O_WRONLY cat"
    assert out.render(first) == "/etc/shadow O_RDONLY cat"    # nothing of the second leaked back


def test_one_rule_group_gives_each_event_its_own_answer():
    """Fields and sub-conditions are remembered within one evaluation only, and a later
    rule reads what an earlier rule's first operand computed: alternating events that
    match and do not match must each get their own verdict, whichever rule comes first."""
    text = """
- macro: write_etc
  condition: evt.type = openat and evt.is_open_write = true and fd.name startswith /etc/
- rule: etc write
  desc: d
  condition: write_etc and not fd.name endswith .tmp and not fd.name endswith .swp
  output: "w %fd.name"
  priority: WARNING
- rule: any etc
  desc: d
  condition: evt.type = openat and (fd.name endswith .conf or fd.name endswith .cfg or write_etc)
  output: "a %fd.name"
  priority: NOTICE
- rule: vi writes
  desc: d
  condition: proc.name = vi and write_etc and fd.name endswith passwd
  output: "v %fd.name"
  priority: NOTICE
- rule: reads below etc
  desc: d
  condition: not write_etc and fd.name startswith /etc/ and not fd.name endswith .swp
  output: "r %fd.name"
  priority: NOTICE
"""
    result = load_rules(["r.yaml"], contents={"r.yaml": text})
    assert result.ok, [m.as_text() for m in result.errors]
    rs = result.ruleset
    tracker = StateTracker(Container(id="host"), agent_pid=ME, users=None, start_ns=time.time_ns())
    tracker.process(clone(ME, FAKE))
    tracker.process(exec_(FAKE))
    tracker.process(execve(FAKE, "/bin/vi", ["vi"]))
    cases = [("/etc/passwd", os.O_WRONLY, ["etc write", "any etc", "vi writes"]),
             ("/tmp/a.conf", os.O_RDONLY, ["any etc"]),
             ("/etc/x.tmp", os.O_WRONLY, ["any etc"]),
             ("/tmp/b", os.O_WRONLY, []),
             ("/etc/passwd", os.O_RDONLY, ["reads below etc"]),
             ("/etc/y.swp", os.O_RDWR, ["any etc"]),
             ("/etc/z.swp", os.O_RDONLY, []),
             ("/etc/passwd", os.O_WRONLY, ["etc write", "any etc", "vi writes"])]
    for fd, (name, flags, want) in enumerate(cases * 2, start=3):
        ev = tracker.process(openat(FAKE, name, fd, flags))
        assert [r.name for r in rs.match(ev, "all")] == want, name
        assert [r.name for r in rs.match(ev, "first")] == want[:1], name


def _generic_fill(tracker, values, tid, name, ret):
    for k, v in (tracker.proc_params(tid, name, ret) or {}).items():
        if k in values and values[k] is None:
            values[k] = v


@settings(max_examples=60, deadline=None)
@given(ret=st.sampled_from([0, -2, -13]), exe=st.sampled_from(["/bin/cat", "/usr/bin/env", "rel/x"]),
       comm_known=st.booleans())
def test_execs_state_params_are_proc_params_filled_where_the_decoder_left_none(tmp_path_factory, ret,
                                                                              exe, comm_known):
    """The exec fast path (fill_proc_params) writes every state param at once; the general
    merge (proc_params, each key only where it is None) must give the same params, in the
    same order."""
    from workload_agent.state.parse_process import _EXEC_FAST

    assert _EXEC_FAST == {"execve", "execveat"}
    tracker = _tracker(tmp_path_factory.mktemp("etc"))
    tracker.process(clone(ME, FAKE))
    tracker.process(exec_(FAKE))
    tracker.process(execve(FAKE, exe, [exe.rsplit("/", 1)[-1], "-x"], ret=ret))
    for name in sorted(_EXEC_FAST):
        rec = execve(FAKE, exe, ["x"], ret=ret)
        values = D.decode_params(name, rec.args, ret, rec.blobs, tracker, tid=FAKE, state_params=False)
        if not comm_known:
            values["comm"] = None
        fast, slow = dict(values), dict(values)
        tracker.fill_proc_params(fast, FAKE, name, ret)
        _generic_fill(tracker, slow, FAKE, name, ret)
        assert list(fast.items()) == list(slow.items())
        assert fast["pid"] == FAKE and fast["cgroups"] is not None


_OPEN_MODE_CALLS = sorted(n for n, s in SPECS.items() if any(p.src[0] == "open_mode" for p in s.params))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(_OPEN_MODE_CALLS), args=st.lists(REG, min_size=6, max_size=6),
       flags=REG | st.sampled_from([os.O_CREAT, os.O_TMPFILE, os.O_TMPFILE & ~os.O_DIRECTORY,
                                    os.O_WRONLY | os.O_CREAT, os.O_RDONLY]),
       mode=st.integers(0, 0o177777) | REG)
def test_the_written_out_open_mode_is_the_flags_table(name, args, flags, mode):
    """The decoder writes open_mode out inline: every flag and mode register gives what
    flags.open_mode gives (the permission bits, set-id and sticky included, when a file
    may be created)."""
    (fi, mi), = [p.src[1:] for p in SPECS[name].params if p.src[0] == "open_mode"]
    args[fi], args[mi] = flags, mode
    assert D.decode_params(name, tuple(args), 3, {}, tid=7) == _decode_by_steps(name, tuple(args), 3, {})
