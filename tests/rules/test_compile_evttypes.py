"""Event-type inference through and/or/not, like Falco."""
from __future__ import annotations

import pytest

from workload_agent.rules.compiler import event_types
from workload_agent.rules.condition import parse_condition
from workload_agent.rules.fields.evttypes import EVENT_TYPES

ALL = None


def ALL_BUT(*names):
    return EVENT_TYPES - set(names)


CASES = [
    ("evt.type = open", {"open"}),
    ("evt.type == open", {"open"}),
    ("evt.type in (open, openat)", {"open", "openat"}),
    ("evt.type intersects (open)", {"open"}),
    ("evt.type != open", ALL_BUT("open")),
    ("not evt.type = open", ALL_BUT("open")),
    ("not evt.type != open", {"open"}),
    ("not evt.type in (open, close)", ALL_BUT("open", "close")),
    ("evt.type = open and proc.name = x", {"open"}),
    ("evt.type = open or proc.name = x", ALL),
    ("evt.type = open or evt.type = close", {"open", "close"}),
    ("evt.type in (open, close) and evt.type in (close, read)", {"close"}),
    ("evt.type = open and evt.type = close", set()),
    ("evt.type in (open) and not evt.type = open", set()),
    ("proc.name = x", ALL),
    ("not proc.name = x", ALL),
    ("not (evt.type = open and proc.name = x)", ALL),
    ("not (evt.type = open or evt.type = close)", ALL_BUT("open", "close")),
    ("not (evt.type = open and evt.type = close)", ALL),
    ("(evt.type = open or evt.type = openat) and not proc.name = x", {"open", "openat"}),
    ("not not evt.type = open", {"open"}),
    ("not (not evt.type = open)", {"open"}),
    ("evt.type startswith open", ALL),
    ("evt.type exists", ALL),
    ("evt.type = val(proc.name)", ALL),
    ("tolower(evt.type) = open", ALL),
    ("some_macro and evt.type = open", {"open"}),
    ("evt.type = execve and (a or evt.type = open)", {"execve"}),
]


@pytest.mark.parametrize("text,expected", CASES, ids=[c[0] for c in CASES])
def test_event_types(text, expected):
    got = event_types(parse_condition(text))
    if expected is ALL:
        assert got is None
    else:
        assert got == frozenset(expected)
