"""Acceptance: the upstream Falco rules files load unmodified, with what Falco would report.

Which warnings does Falco 0.44 give for these files? Going through every
warning its engine can emit while loading:

- LOAD_UNUSED_MACRO / LOAD_UNUSED_LIST: none. Every macro is referenced by a
  rule or another macro, and every list by a condition or another list; the
  test below checks that with an independent textual scan, not with the loader.
- LOAD_NO_EVTTYPE: none. Every rule restricts evt.type to a handful of types
  (reference falco-fields.md §3.2, which the event-type test compares against).
- LOAD_DEPRECATED_ITEM: none. No item uses `append: true`, the enabled-only
  form or `%container.info` (checked below on the raw text).
- LOAD_UNKNOWN_SOURCE / LOAD_UNKNOWN_FILTER / LOAD_UNKNOWN_KEY /
  LOAD_INVALID_*_NAME / LOAD_UNKNOWN_ITEM / LOAD_APPEND_NO_VALUES /
  LOAD_EXCEPTION_NAME_NOT_UNIQUE: none; every rule is `syscall`, uses only known
  keys, and the files carry no exceptions.
- LOAD_UNSAFE_NA_CHECK applies only to the k8s-audit `ka.*`/`jevt.*` fields.
- Redefining a macro or list in a later file (incubating and sandbox repeat
  many of stable's) replaces it in place and is not a warning.

So Falco's verdict is "Ok" for each file and each combination, and so is ours.
The `container` plugin requirement is reported as satisfied natively.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from workload_agent.rules.loader import load_rules

REPO = Path(__file__).resolve().parents[2]


def shared_dir(sub):
    for base in (REPO.parent / "shared", Path("/work/shared")):
        if (base / sub).exists():
            return base / sub
    pytest.skip(f"shared/{sub} not found")


RULES_DIR = shared_dir("falco-rules")
STABLE = "falco_rules.yaml"
INCUBATING = "falco-incubating_rules.yaml"
SANDBOX = "falco-sandbox_rules.yaml"
COMBOS = [[STABLE], [STABLE, INCUBATING], [STABLE, INCUBATING, SANDBOX]]


@pytest.fixture(scope="module")
def loaded():
    return {tuple(c): load_rules([str(RULES_DIR / f) for f in c]) for c in COMBOS}


@pytest.mark.parametrize("combo", COMBOS, ids=["stable", "stable+incubating", "all three"])
def test_upstream_files_load_ok_without_warnings(loaded, combo):
    res = loaded[tuple(combo)]
    assert [m.as_text() for m in res.errors] == []
    assert [m.as_text() for m in res.warnings] == []
    assert [f.summary() for f in res.files] == ["Ok"] * len(combo)
    for f in res.files:
        assert any("'container'" in n and "natively" in n for n in f.notes)


def test_rule_counts(loaded):
    # 25 stable rules; incubating and sandbox add 31 and 37 (names are distinct).
    assert [len(loaded[tuple(c)].ruleset.rules) for c in COMBOS] == [25, 56, 93]
    disabled = [r.name for r in loaded[tuple(COMBOS[2])].ruleset.rules if not r.enabled]
    assert len(disabled) == 12


def _names(text, kind):
    return re.findall(rf"^- {kind}: (.+?)\s*$", text, flags=re.M)


@pytest.mark.parametrize("name", [STABLE, INCUBATING, SANDBOX])
def test_no_unused_items_by_independent_scan(name):
    """Each list/macro name occurs, delimited, in some condition or list outside its definition."""
    text = (RULES_DIR / name).read_text()
    assert "append: true" not in text and "%container.info" not in text
    for kind in ("list", "macro"):
        for item in _names(text, kind):
            pattern = rf"(?<![\w.\-]){re.escape(item)}(?![\w.\-])"
            uses = [m.start() for m in re.finditer(pattern, text)
                    if not text[max(0, m.start() - 12):m.start()].endswith(f"- {kind}: ")
                    and text.rfind("\n", 0, m.start()) > text.rfind("#", 0, m.start())]
            assert uses, f"{kind} {item} looks unused in {name}"


def reference_event_types():
    """(file letter, rule name) -> set of event types, from falco-fields.md §3.2."""
    ref = shared_dir("reference") / "falco-fields.md"
    text = ref.read_text()
    section = text[text.index("### 3.2"):text.index("### 3.3")]
    out = {}
    for row in re.findall(r"^\| ([SIX]) \| (.+?) \| (?:yes|no|\*\*no\*\*) \| \w+ \| (.+?) \|$", section, flags=re.M):
        out[(row[0], row[1])] = {t.strip() for t in row[2].split(",")}
    return out


@pytest.mark.parametrize("letter, name", [("S", STABLE), ("I", INCUBATING), ("X", SANDBOX)])
def test_inferred_event_types_match_the_reference(letter, name):
    expected = {rule: types for (f, rule), types in reference_event_types().items() if f == letter}
    assert expected, "reference table not found"
    res = load_rules([str(RULES_DIR / name)])  # each file on its own, as the reference computed
    assert res.ok
    got = {r.name: set(r.event_types or ()) for r in res.ruleset.rules}
    assert got == expected


def test_describe_reports_every_rules_event_types(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "workload_agent", "rules", "describe", "--json",
                        "-r", str(RULES_DIR / STABLE), "-r", str(RULES_DIR / INCUBATING),
                        "-r", str(RULES_DIR / SANDBOX)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert len(doc["rules"]) == 93
    for r in doc["rules"]:
        assert r["event_types"], r["name"]
    union = set(doc["enabled_event_types"])
    # The enabled rules of all three files need these syscalls (reference §3.1, union minus
    # the types only sandbox's disabled rules use).
    assert {"execve", "execveat", "open", "openat", "openat2", "connect", "ptrace"} <= union
    assert "recvmsg" not in union and "recvfrom" not in union


@pytest.mark.parametrize("letter, name", [("S", STABLE), ("I", INCUBATING)])
def test_union_of_enabled_event_types_matches_the_reference(letter, name):
    """What the tracer would trace for a file alone (falco-fields.md §3.1)."""
    text = (shared_dir("reference") / "falco-fields.md").read_text()
    section = text[text.index("### 3.1"):text.index("### 3.2")]
    row = re.search(rf"^\| {letter} \(.+?\) \| \d+: (.+?) \|", section, flags=re.M)
    expected = {t.strip() for t in row.group(1).split(",")}
    res = load_rules([str(RULES_DIR / name)])
    assert res.ruleset.event_types() == frozenset(expected)
