"""docs/default-rules.md keeps a coverage matrix over Falco's upstream rules: every
upstream rule has a row, a covered row names rules we have, and each of those rules
has an attack scenario that must raise it."""
from __future__ import annotations

import re
from pathlib import Path

from workload_agent.rules.loader import load_rules

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "default-rules.md"
STATUSES = {"covered", "explained", "blind"}
SHORT = {"falco_rules.yaml": "stable", "falco-incubating_rules.yaml": "incubating",
         "falco-sandbox_rules.yaml": "sandbox"}


def _matrix():
    """{(file, upstream rule): (status, text)} from the doc's table."""
    text = DOC.read_text()
    start = text.index("## Coverage of the upstream Falco rules")
    end = text.index("\n## ", start + 1)
    rows = {}
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("Upstream rule", "---"):
            continue
        key = (cells[1], cells[0])
        assert key not in rows, f"two rows for {key}"
        rows[key] = (cells[2], cells[3])
    return text[start:end], rows


def _upstream_rules():
    from tests.rules.upstream_files import NAMES, upstream_file

    out = set()
    for name in NAMES:
        result = load_rules([str(upstream_file(name))])
        assert result.ok, "\n".join(m.text for m in result.messages)
        out |= {(SHORT[name], r.name) for r in result.ruleset.rules}
    return out


def _named_rules(text):
    """Rule names in a covered row: `;`-separated, each maybe followed by (a note)."""
    return [part.split(" (")[0].strip() for part in text.split(";")]


def test_every_upstream_rule_has_exactly_one_row():
    upstream = _upstream_rules()
    _, rows = _matrix()
    assert sorted(upstream - set(rows)) == [], "upstream rules without a row"
    assert sorted(set(rows) - upstream) == [], "rows for rules upstream does not have"


def test_rows_have_a_status_and_a_reason():
    _, rows = _matrix()
    bad = [k for k, (status, text) in rows.items() if status not in STATUSES or len(text) < 10]
    assert bad == []


def test_covered_rows_name_our_rules_and_each_has_a_scenario():
    from tests.scenarios.catalog import SCENARIOS

    ours = {r.name for r in load_rules([str(REPO / "rules")]).ruleset.rules}
    expected = {rule for s in SCENARIOS for rule in s.expect}
    _, rows = _matrix()
    unknown, untested = [], []
    for key, (status, text) in rows.items():
        if status != "covered":
            continue
        for name in _named_rules(text):
            if name not in ours:
                unknown.append((key, name))
            elif name not in expected:
                untested.append((key, name))
    assert unknown == [], "covered rows naming rules we do not have"
    assert untested == [], "covered rules without an attack scenario"


def test_the_counts_in_the_doc_match_the_table():
    section, rows = _matrix()
    m = re.search(r"Counts: (\d+) covered, (\d+) explained, (\d+) blind \((\d+) upstream rules\)",
                  section)
    assert m, "counts line not found"
    statuses = [status for status, _ in rows.values()]
    assert [int(g) for g in m.groups()] == [statuses.count("covered"), statuses.count("explained"),
                                           statuses.count("blind"), len(rows)]
