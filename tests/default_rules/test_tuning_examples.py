"""The tuning examples of docs/default-rules.md load after rules/ and do what they say."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from workload_agent.rules.loader import load_rules

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "default-rules.md"
RULES_DIR = REPO / "rules"


def tuning_snippets():
    """The indented YAML blocks of the Tuning section, one rules file each."""
    text = DOC.read_text()
    section = text.split("## Tuning", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"((?:^    .*\n|^\n)+)", section, flags=re.M)
    out = []
    for block in blocks:
        body = "\n".join(ln[4:] for ln in block.splitlines())
        if body.strip().startswith("- "):
            out.append(body.strip() + "\n")
    return out


SNIPPETS = tuning_snippets()


def test_the_doc_has_tuning_examples():
    assert len(SNIPPETS) >= 4


@pytest.mark.parametrize("snippet", SNIPPETS, ids=lambda s: s.splitlines()[0])
def test_example_loads_without_messages(snippet):
    contents = {str(p): p.read_text() for p in sorted(RULES_DIR.glob("*.yaml"))}
    contents["tuning.yaml"] = snippet
    result = load_rules(list(contents), contents=contents)
    assert result.ok, "\n".join(m.text for m in result.messages)
    assert [m.code for m in result.messages] == []
    rs = result.ruleset
    for item in yaml.safe_load(snippet):
        _check_effect(rs, item)


def _check_effect(rs, item):
    if "list" in item:
        users = [r for r in rs.rules if item["list"] in r.lists]
        assert users
        for value in item["items"]:
            assert all(value in r.condition_text for r in users), value
    if "rule" in item:
        rule = rs.by_name[item["rule"]]
        if "priority" in item:
            assert rule.priority == 4  # WARNING
        if "enabled" in item:
            assert rule.enabled is False
        if "exceptions" in item:
            for value in item["exceptions"][0]["values"][0]:
                assert value in rule.condition_text
        if "condition" in item:
            assert "registry.example.com/ci/builder" in rule.condition_text
