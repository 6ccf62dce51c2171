"""Arbitrary YAML-ish input never raises: it loads, or it is reported as messages with a place."""
from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from workload_agent.rules.loader import load_rules

KEYS = ["rule", "macro", "list", "items", "condition", "output", "desc", "priority", "tags",
        "enabled", "append", "override", "exceptions", "name", "fields", "comps", "values",
        "source", "required_engine_version", "required_plugin_versions", "version",
        "alternatives", "warn_evttypes", "skip-if-unknown-filter", "capture_duration", "x"]
WORDS = ["evt.type", "=", "open", "and", "or", "not", "(", ")", "proc.name", "in", "bash",
         "m1", "l1", "r1", "append", "replace", "INFO", "true", "0.57.0", "container", ",",
         "exists", "'q'", '"', "\\", "%proc.name", "[", "]", "fd.name", "pmatch", "glob"]

scalars = st.one_of(
    st.sampled_from(WORDS),
    st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join),
    st.integers(-5, 100),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12,
)
items = st.dictionaries(st.sampled_from(KEYS), values, min_size=0, max_size=6)
documents = st.lists(st.one_of(items, values), max_size=6)


def check(result):
    for msg in result.messages:
        assert msg.code and msg.text
        assert msg.where is not None and msg.where.file
        assert msg.where.line >= 0 and msg.where.column >= 0
        assert msg.as_text() and msg.as_json()
    for f in result.files:
        f.as_text()
        f.as_json()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_structured_yaml_never_raises(docs):
    text = yaml.safe_dump(docs, allow_unicode=True)
    check(load_rules(["f.yaml"], contents={"f.yaml": text}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(["- ", "  ", ":", "\n", "- rule: r\n", "  condition: ",
                                            "- macro: m\n", "- list: l\n  items: [", "|\n", ">\n",
                                            "'", '"', "{", "}", "[", "]", "&a", "*a", "!!str", "#",
                                            "---\n", "\t", "\x00", "é"]),
                           st.sampled_from(WORDS)), max_size=40).map("".join))
def test_raw_text_never_raises(text):
    check(load_rules(["f.yaml"], contents={"f.yaml": text}))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join),
       st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join))
def test_random_conditions_in_a_valid_rule(cond, macro_cond):
    text = yaml.safe_dump([
        {"list": "l1", "items": ["a", "b c"]},
        {"macro": "m1", "condition": macro_cond or "x"},
        {"rule": "r1", "desc": "d", "condition": cond or "y", "output": "o", "priority": "INFO",
         "exceptions": [{"name": "e", "fields": ["proc.name"], "values": [[cond or "z"]]}]},
    ])
    check(load_rules(["f.yaml"], contents={"f.yaml": text}))
