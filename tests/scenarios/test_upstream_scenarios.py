"""Falco's upstream stable ruleset, loaded unmodified from the shared folder, catches
the scenarios it is written for when the container context is set explicitly."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.rules.upstream_files import upstream_file

from .catalog import LOUD_PRIORITIES, SCENARIOS
from .harness import make_workdir, pipeline_missing_reason, remove_workdir, run

_missing = pipeline_missing_reason()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.upstream], ids=lambda s: s.name)
def test_upstream_stable_rule_fires(scenario):
    if os.geteuid() != 0:
        pytest.skip("several upstream rules look at successful calls or capabilities: run as root")
    rules = upstream_file()
    workdir = make_workdir(shared=False)
    try:
        outcome = run(scenario, [rules], workdir)
    finally:
        remove_workdir(workdir)
    missing = set(scenario.upstream) - outcome.rules
    assert not missing, f"{scenario.name}: expected {sorted(missing)}\n{outcome.describe()}"


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.benign], ids=lambda s: s.name)
def test_upstream_stable_rules_quiet_on_benign_workloads(scenario):
    missing = [prog for prog in scenario.requires
               if not (os.path.exists(prog) if prog.startswith("/") else shutil.which(prog))]
    if missing:
        pytest.skip(f"{scenario.name} needs {', '.join(missing)} installed")
    rules = upstream_file()
    workdir = make_workdir(shared=False)
    try:
        outcome = run(scenario, [rules], workdir)
    finally:
        remove_workdir(workdir)
    assert outcome.returncode == 0, outcome.describe()
    assert [a for a in outcome.alerts if a.get("priority") in LOUD_PRIORITIES] == [], \
        outcome.describe()
