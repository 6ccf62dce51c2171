"""The compiled-rules cache: a hit gives the ruleset a full load gives, a changed file
or an unsafe cache directory is never served from it, and an unusable one costs nothing."""
from __future__ import annotations

import os

import pytest

from tests.rules.test_compile_upstream_scenarios import CTR, openat, proc, shell_parent
from tests.rules.upstream_files import NAMES, rules_dir
from workload_agent.rules import cache
from workload_agent.rules.cache import CachedLoad, load_rules_cached
from workload_agent.rules.loader import load_rules

UPSTREAM = [str(rules_dir() / n) for n in NAMES]
RULE = """
- macro: m_open
  condition: evt.type = openat and fd.name startswith /etc
- rule: etc open
  desc: d
  condition: m_open and proc.name = cat
  output: "%proc.name opened %fd.name"
  priority: WARNING
"""


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("WORKLOAD_AGENT_RULES_CACHE", str(d))
    return d


def entries(d):
    return sorted(p for p in os.listdir(d) if p.endswith(".pickle")) if d.is_dir() else []


def summary(ruleset):
    return [(r.name, r.enabled, r.priority, r.event_types, r.condition, r.output_text, r.file, r.line)
            for r in ruleset.rules]


def test_hit_gives_the_loaded_ruleset(cache_dir):
    first = load_rules_cached(UPSTREAM, min_priority="WARNING")
    assert not isinstance(first, CachedLoad) and first.ok
    assert len(entries(cache_dir)) == 1
    second = load_rules_cached(UPSTREAM, min_priority="WARNING")
    assert isinstance(second, CachedLoad)
    assert summary(second.ruleset) == summary(first.ruleset)
    assert [w.as_text() for w in second.warnings] == [w.as_text() for w in first.warnings]
    # Selections are applied on each load, not stored.
    third = load_rules_cached(UPSTREAM, min_priority="DEBUG")
    assert isinstance(third, CachedLoad)
    assert len(third.ruleset.enabled_rules) > len(second.ruleset.enabled_rules)

    ev = openat("/etc/shadow", proc("cat", parent=shell_parent(CTR), container=CTR))
    fired = second.ruleset.match(ev, "all")
    assert [r.name for r in fired] == [r.name for r in first.ruleset.match(ev, "all")] != []
    for got, want in zip(fired, first.ruleset.match(ev, "all")):
        assert got.evaluate(ev) and got.output.render(ev) == want.output.render(ev)


def test_changed_content_is_a_miss(cache_dir, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    assert not isinstance(load_rules_cached([str(f)]), CachedLoad)
    assert isinstance(load_rules_cached([str(f)]), CachedLoad)
    f.write_text(RULE.replace("proc.name = cat", "proc.name = dog"))
    result = load_rules_cached([str(f)])
    assert not isinstance(result, CachedLoad)
    ev = openat("/etc/passwd", proc("dog", parent=shell_parent(CTR), container=CTR))
    assert [r.name for r in result.ruleset.match(ev)] == ["etc open"]
    assert len(entries(cache_dir)) == 2


def test_errors_are_not_stored(cache_dir, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULE.replace("proc.name = cat", "proc.nope = cat"))
    assert not load_rules_cached([str(f)]).ok
    assert not load_rules_cached([str(f)]).ok
    assert entries(cache_dir) == []


def test_unwritable_or_off_costs_nothing(tmp_path, monkeypatch):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    blocker = tmp_path / "file"
    blocker.write_text("")
    for setting in (str(blocker / "sub"), "off"):
        monkeypatch.setenv("WORKLOAD_AGENT_RULES_CACHE", setting)
        for _ in range(2):
            result = load_rules_cached([str(f)])
            assert result.ok and not isinstance(result, CachedLoad)
            assert [r.name for r in result.ruleset.rules] == ["etc open"]


def test_shared_directory_is_not_read(cache_dir, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    load_rules_cached([str(f)])
    os.chmod(cache_dir, 0o777)
    assert not isinstance(load_rules_cached([str(f)]), CachedLoad)
    os.chmod(cache_dir, 0o700)
    (entry,) = entries(cache_dir)
    os.chmod(cache_dir / entry, 0o666)
    assert not isinstance(load_rules_cached([str(f)]), CachedLoad)


def test_damaged_entry_is_a_miss(cache_dir, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    load_rules_cached([str(f)])
    (entry,) = entries(cache_dir)
    (cache_dir / entry).write_bytes(b"\x80\x05garbage")
    result = load_rules_cached([str(f)])
    assert result.ok and not isinstance(result, CachedLoad)
    assert isinstance(load_rules_cached([str(f)]), CachedLoad)  # rewritten whole


def test_same_result_as_the_loader(cache_dir):
    fresh = load_rules(UPSTREAM, compile_each=False)
    load_rules_cached(UPSTREAM)
    assert summary(load_rules_cached(UPSTREAM).ruleset) == summary(fresh.ruleset)
    assert cache.cache_dir() == str(cache_dir)
