"""Event-type inference is sound: whenever a condition matches an event, the
event's type is in the inferred set."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workload_agent.rules.compiler import compile_condition, event_types
from workload_agent.rules.condition import And, Check, Field, ListLit, Literal, Not, Or
from workload_agent.rules.event import Event, Process

TYPES = ["open", "openat", "execve", "connect", "close"]

type_checks = st.one_of(
    st.builds(lambda op, t: Check(Field("evt.type"), op, Literal(t)),
              st.sampled_from(["=", "!="]), st.sampled_from(TYPES)),
    st.builds(lambda op, ts: Check(Field("evt.type"), op, ListLit(tuple(ts))),
              st.sampled_from(["in", "intersects"]), st.lists(st.sampled_from(TYPES), max_size=3)),
)
other_checks = st.builds(lambda op, v: Check(Field("proc.name"), op, Literal(v)),
                         st.sampled_from(["=", "!="]), st.sampled_from(["a", "b"]))
conditions = st.recursive(
    st.one_of(type_checks, other_checks),
    lambda inner: st.one_of(
        st.builds(lambda cs: And(tuple(cs)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda cs: Or(tuple(cs)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(Not, inner)),
    max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(conditions)
def test_inferred_types_contain_every_matching_event_type(tree):
    pred = compile_condition(tree)
    types = event_types(tree)
    for evtype in TYPES:
        for name in ("a", "b"):
            if pred(Event(evtype, proc=Process(pid=1, name=name))):
                assert types is None or evtype in types, (evtype, name)


only_type_conditions = st.recursive(
    type_checks,
    lambda inner: st.one_of(
        st.builds(lambda cs: And(tuple(cs)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda cs: Or(tuple(cs)), st.lists(inner, min_size=2, max_size=3)),
        st.builds(Not, inner)),
    max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(only_type_conditions)
def test_inference_is_exact_for_pure_event_type_conditions(tree):
    from workload_agent.rules.fields.evttypes import EVENT_TYPES

    pred = compile_condition(tree)
    types = event_types(tree)
    inferred = EVENT_TYPES if types is None else types
    for evtype in TYPES + ["read", "procexit"]:
        assert pred(Event(evtype)) == (evtype in inferred), evtype
