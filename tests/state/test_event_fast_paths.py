"""The state tracker's events answer evt.rawarg/evt.arg (Event.rawarg, Event.argtext) from
their decoded values instead of building Param objects, and rule groups read those answers
inline: on the tracker's events (random, hostile records included), each answer is what
the params list gives, and each group's verdict is what the rules give one by one."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rules.test_ruleset_group import DEFAULT, UPSTREAM, one_by_one, outcome
from tests.state.records import FAKE, clone, exec_, execve, openat
from tests.state.test_tracker_fuzz import records
from workload_agent.rules.event import Container, Event
from workload_agent.state import StateTracker, UserDb


def _tracker(tmp_path_factory) -> StateTracker:
    d = tmp_path_factory.mktemp("u")
    (d / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (d / "group").write_text("root:x:0:\n")
    return StateTracker(Container(), agent_pid=os.getpid(), users=UserDb(str(d / "passwd"), str(d / "group")))


def _check_event(ev) -> None:
    names = list(ev.params._src[0]) if getattr(ev.params, "_src", None) else []
    asked = names + ["no_such_param"]
    # the fast answers first: building the list (below) changes the path they take
    fast = [(n, ev.rawarg(n), ev.argtext(n)) for n in asked]
    assert "rawarg" in ev.__dict__ and "argtext" in ev.__dict__   # the tracker's own
    by_name = {p.name: p for p in list(ev.params)}
    for n, raw, text in fast:
        p = by_name.get(n)
        assert raw == (None if p is None else p.raw), n
        assert type(raw) is type(None if p is None else p.raw), n
        want = None if p is None else ("<NA>" if p.text() is None else p.text())
        assert text == want, n
        # and the class's own (what capture and test events use) agrees
        assert Event.rawarg(ev, n) == raw and Event.argtext(ev, n) == text, n


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recs=st.lists(records(), max_size=25))
def test_raw_values_and_texts_are_the_params(tmp_path_factory, recs):
    t = _tracker(tmp_path_factory)
    for r in recs:
        ev = t.process(r)
        if ev is not None:
            _check_event(ev)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recs=st.lists(records(), max_size=25), first=st.booleans())
def test_groups_on_tracker_events_are_the_rules_one_by_one(tmp_path_factory, recs, first):
    t = _tracker(tmp_path_factory)
    for r in recs:
        ev = t.process(r)
        if ev is None:
            continue
        for ruleset in (DEFAULT, UPSTREAM):
            assert outcome(lambda: ruleset.match(ev, "first" if first else "all")) == \
                outcome(lambda: one_by_one(ruleset, ev, first))


def test_opens_that_fire_and_that_do_not(tmp_path_factory):
    """Opens the default and upstream rules judge on flags, their texts and the path (the
    paths the inline getters and remembered answers serve): each verdict is the rules' own,
    and some fire."""
    t = _tracker(tmp_path_factory)
    for r in (clone(os.getpid(), FAKE), exec_(FAKE), execve(FAKE, "/bin/cat", ["cat"])):
        t.process(r)
    fired = 0
    for n, (path, flags) in enumerate([("/etc/shadow", os.O_RDONLY), ("/dev/null", os.O_WRONLY | os.O_CREAT),
                                       ("/dev/sdx", os.O_WRONLY | os.O_CREAT), ("/etc/passwd", os.O_WRONLY),
                                       ("/root/.bash_history", os.O_WRONLY | os.O_TRUNC),
                                       ("/bin/evil", os.O_WRONLY | os.O_CREAT), ("/dev/null", os.O_RDONLY),
                                       ("/etc/shadow", os.O_RDONLY)] * 2):
        ev = t.process(openat(FAKE, path, 3 + n, flags))
        _check_event(ev)
        for ruleset in (DEFAULT, UPSTREAM):
            got = [r.name for r in ruleset.match(ev, "all")]
            assert got == [r.name for r in one_by_one(ruleset, ev, False)]
            fired += bool(got)
    assert fired >= 6
