"""Attack-like workloads raise the expected rule of our default ruleset; benign
workloads raise nothing of WARNING or above. Real processes under the real agent."""
from __future__ import annotations

import functools
import os
import re
import shutil
import sys

import pytest

from .catalog import BIN_DIR, CONTAINER_ID, LOUD_PRIORITIES, SCENARIOS, WORKLOADS_DIR
from .harness import NOBODY, OUR_RULES, REPO, make_workdir, pipeline_missing_reason, \
    agent_python_for, python_for, readable_by_others, remove_workdir, run

_missing = pipeline_missing_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")

ATTACKS = [s for s in SCENARIOS if not s.benign]
BENIGN = [s for s in SCENARIOS if s.benign]


def _require(scenario):
    """Skip when a program (or a path) the scenario needs is missing; under CI, where
    .ci/run installs them all, fail instead."""
    missing = [prog for prog in scenario.requires
               if not (os.path.exists(prog) if prog.startswith("/") else shutil.which(prog))]
    if missing:
        message = f"{scenario.name} needs {', '.join(missing)} installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (.ci/run installs it)")
        pytest.skip(message)


def _check_attack(scenario, outcome):
    missing = set(scenario.expect) - outcome.rules
    assert not missing, f"{scenario.name}: expected {sorted(missing)}\n{outcome.describe()}"
    for alert in outcome.alerts:
        if alert.get("rule") in scenario.expect:
            assert alert.get("source") == "syscall"
            assert any(t.startswith("mitre_") for t in alert.get("tags", ())), alert
            assert alert.get("output"), alert
    if scenario.fields:
        def about_it(alert):
            got = alert.get("output_fields", {})
            return all(text in str(got.get(field)) for field, text in scenario.fields)

        first = [a for a in outcome.alerts if a.get("rule") == scenario.expect[0]]
        assert any(about_it(a) for a in first), \
            f"{scenario.name}: no alert with {scenario.fields}\n{outcome.describe()}"


@functools.lru_cache(maxsize=None)
def _documented_notices():
    """{benign scenario: rules whose notices docs/default-rules.md explains}."""
    text = (REPO / "docs" / "default-rules.md").read_text()
    start = text.index("## Benign workloads and their notices")
    section = text[start:text.index("\n## ", start + 1)]
    out = {}
    for name, rules in re.findall(r"^- `([a-z0-9-]+)`: (.*?)(?=^- `|\Z)", section, re.S | re.M):
        out[name] = {" ".join(r.split()) for r in re.findall(r"\*\*(.+?)\*\*", rules, re.S)}
    return out


def _check_benign(scenario, outcome):
    assert outcome.returncode == 0, outcome.describe()
    loud = [a for a in outcome.alerts if a.get("priority") in LOUD_PRIORITIES]
    assert loud == [], f"{scenario.name} raised:\n{outcome.describe()}"
    notices = {a.get("rule") for a in outcome.alerts if a.get("priority") == "Notice"}
    unexplained = notices - _documented_notices().get(scenario.name, set())
    assert not unexplained, (f"{scenario.name}: notices not explained in docs/default-rules.md "
                             f"(Benign workloads and their notices): {sorted(unexplained)}")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario(scenario, mode_args):
    """In both tracing modes (seccomp filter, and full ptrace with --no-seccomp)."""
    _require(scenario)
    workdir = make_workdir(shared=False)
    try:
        outcome = run(scenario, [OUR_RULES], workdir, extra=mode_args)
    finally:
        remove_workdir(workdir)
    if scenario.benign:
        _check_benign(scenario, outcome)
    else:
        _check_attack(scenario, outcome)


def test_alerts_carry_the_container_context():
    scenario = next(s for s in ATTACKS if s.name == "shadow-read")
    workdir = make_workdir(shared=False)
    try:
        outcome = run(scenario, [OUR_RULES], workdir)
    finally:
        remove_workdir(workdir)
    hits = [a for a in outcome.alerts if a.get("rule") in scenario.expect]
    assert hits, outcome.describe()
    assert CONTAINER_ID in hits[0]["output"]


@functools.lru_cache(maxsize=None)
def _unprivileged_setup(variant):
    """(reason to skip or None, the agent's Python for the agent-as-nobody variant)."""
    if os.geteuid() != 0:
        return "already unprivileged: test_scenario covers this user", None
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed", None
    if not readable_by_others(WORKLOADS_DIR) or not readable_by_others(BIN_DIR):
        return f"{WORKLOADS_DIR.parent} is not readable by an unprivileged user", None
    if python_for(NOBODY) is None:
        return "no Python interpreter that an unprivileged user can run", None
    if variant == "agent":
        agent_python = agent_python_for(NOBODY)
        if agent_python is None:
            return (f"no Python with the agent's dependencies that an unprivileged user can "
                    f"run ({sys.executable} is not; nor is {REPO} perhaps)"), None
        return None, agent_python
    return None, None


@pytest.mark.parametrize("variant", ["workload", "agent"])
@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.nonroot], ids=lambda s: s.name)
def test_scenario_unprivileged(scenario, variant):
    """As nobody: either the workload drops to nobody under the agent (an attacker
    without root in the container), or the agent itself runs as nobody (the agent
    needs no root). Attempts the kernel refuses still alert; benign workloads stay
    quiet."""
    _require(scenario)
    reason, agent_python = _unprivileged_setup(variant)
    if reason:
        pytest.skip(reason)
    workdir = make_workdir(shared=True)
    who = ({"agent_user": NOBODY, "agent_python": agent_python} if variant == "agent"
           else {"workload_user": NOBODY})
    try:
        outcome = run(scenario, [OUR_RULES], workdir, **who)
    finally:
        remove_workdir(workdir)
    if scenario.benign:
        _check_benign(scenario, outcome)
    else:
        _check_attack(scenario, outcome)


def test_default_ruleset_loads_without_rules_option():
    """`workload-agent run` with no -r uses rules/; alerts are Falco text lines."""
    scenario = next(s for s in ATTACKS if s.name == "shadow-read")
    workdir = make_workdir(shared=False)
    try:
        outcome = run(scenario, [], workdir, json_alerts=False)
    finally:
        remove_workdir(workdir)
    assert any(": Warning Password or sudoers file opened for reading (file=/etc/shadow" in ln
               for ln in outcome.alert_lines), outcome.describe()


def test_first_match_reports_the_most_severe_rule():
    """With Falco's default matching (first), the dropped binary run from /tmp is
    reported as drift (CRITICAL), not as execution from a temporary directory."""
    scenario = next(s for s in ATTACKS if s.name == "drift-dropped-binary")
    workdir = make_workdir(shared=False)
    try:
        outcome = run(scenario, [OUR_RULES], workdir, matching="first")
    finally:
        remove_workdir(workdir)
    execs = [a for a in outcome.alerts if a.get("output_fields", {}).get("proc.exepath", "")
             .endswith("/dropped")]
    assert [a["rule"] for a in execs] == ["Drifted executable run in container"], outcome.describe()
