"""The ruleset: event-type index, first/all matching, enable/disable selections, priorities."""
from __future__ import annotations


import pytest

from workload_agent.rules.event import Event, Process
from workload_agent.rules.loader import load_rules

RULES = """\
- rule: open bash
  desc: d
  condition: evt.type in (open, openat) and proc.name = bash
  output: o
  priority: WARNING
  tags: [files, shell]
- rule: any bash
  desc: d
  condition: proc.name = bash
  output: o
  priority: NOTICE
  tags: [shell]
  warn_evttypes: false
- rule: exec
  desc: d
  condition: evt.type = execve and not proc.name = init
  output: o
  priority: CRITICAL
  tags: [process]
- rule: off by default
  desc: d
  condition: evt.type = connect
  output: o
  priority: ERROR
  enabled: false
  tags: [network]
"""


def load(**kw):
    return load_rules(["r.yaml"], contents={"r.yaml": RULES}, **kw)


def ev(etype, name="bash"):
    return Event(type=etype, proc=Process(pid=10, name=name))


def names(rules):
    return [r.name for r in rules]


def test_index_sends_events_only_to_rules_that_can_match():
    rs = load().ruleset
    assert names(rs.candidates("open")) == ["open bash", "any bash"]
    assert names(rs.candidates("execve")) == ["any bash", "exec"]
    assert names(rs.candidates("close")) == ["any bash"]


def test_match_first_and_all():
    rs = load().ruleset
    assert names(rs.match(ev("openat"))) == ["open bash"]
    assert names(rs.match(ev("openat"), mode="all")) == ["open bash", "any bash"]
    assert names(rs.match(ev("openat", name="zsh"), mode="all")) == []
    assert names(rs.match(ev("execve", name="init"), mode="all")) == []
    with pytest.raises(ValueError):
        rs.match(ev("open"), mode="some")


def test_match_evaluates_conditions():
    rs = load().ruleset
    assert names(rs.match(ev("execve", name="sh"), mode="all")) == ["exec"]
    assert names(rs.match(ev("execve", name="bash"), mode="all")) == ["any bash", "exec"]


def test_event_type_union_of_enabled_rules():
    rs = load().ruleset
    assert rs.event_types() is None  # "any bash" needs every event type
    rs = load(disable=["any bash"]).ruleset
    assert rs.event_types() == frozenset({"open", "openat", "execve"})
    rs = load(disable=["any bash"], enable=[{"tag": "network"}]).ruleset
    assert rs.event_types() == frozenset({"open", "openat", "execve", "connect"})


def test_disabled_rules_are_kept_but_not_indexed():
    rs = load().ruleset
    assert "off by default" in rs.by_name and not rs.by_name["off by default"].enabled
    assert names(rs.candidates("connect")) == ["any bash"]


def test_selection_by_name_pattern_and_tag():
    rs = load(disable=["*bash"]).ruleset
    assert names(rs.enabled_rules) == ["exec"]
    rs = load(disable=[{"tag": "shell"}], enable=[{"rule": "open*"}]).ruleset
    assert names(rs.enabled_rules) == ["open bash", "exec"]


def test_falco_rules_config_block_applies_in_order():
    rs = load(rules_config=[{"disable": {"rule": "*"}}, {"enable": {"tag": "network"}}]).ruleset
    assert names(rs.enabled_rules) == ["off by default"]


def test_bad_selector_is_refused():
    with pytest.raises(ValueError):
        load(rules_config=[{"toggle": {"rule": "*"}}])
    with pytest.raises(ValueError):
        load(enable=[{"colour": "x"}])


@pytest.mark.parametrize("minimum, enabled", [
    ("critical", ["exec"]),
    ("WARNING", ["open bash", "exec"]),
    ("info", ["open bash", "any bash", "exec"]),
    (None, ["open bash", "any bash", "exec"]),
])
def test_minimum_priority(minimum, enabled):
    rs = load(min_priority=minimum).ruleset
    assert names(rs.enabled_rules) == enabled
    assert len(rs.rules) == 4  # all still compiled


def test_rule_metadata():
    r = load().ruleset.by_name["open bash"]
    assert r.tags == ("files", "shell")
    assert r.event_types == frozenset({"open", "openat"})
    assert r.fields == ("evt.type", "proc.name")
    assert (r.file, r.line) == ("r.yaml", 1)
    assert r.condition_text == "evt.type in (open, openat) and proc.name = bash"
