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


def test_derived_value_is_kept_for_the_same_rules_selection_and_params(cache_dir, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    built = []

    def build(tag):
        built.append(tag)
        return {"value": tag}

    rs = load_rules_cached([str(f)]).ruleset
    assert cache.derived(rs, "thing", ("a",), lambda: build(1)) == {"value": 1}
    # a later start: the rules from the cache, the derived value too
    rs = load_rules_cached([str(f)]).ruleset
    assert cache.derived(rs, "thing", ("a",), lambda: build(2)) == {"value": 1}
    assert built == [1]
    # other params, another selection of the same rules, other rules: built again
    assert cache.derived(rs, "thing", ("b",), lambda: build(3)) == {"value": 3}
    rs.set_enabled([("disable", "rule", "etc open")])
    assert cache.derived(rs, "thing", ("a",), lambda: build(4)) == {"value": 4}
    f.write_text(RULE.replace("proc.name = cat", "proc.name = dog"))
    rs = load_rules_cached([str(f)]).ruleset
    assert cache.derived(rs, "thing", ("a",), lambda: build(5)) == {"value": 5}
    assert built == [1, 3, 4, 5]


def test_derived_without_the_cache_is_built_each_time(cache_dir, tmp_path, monkeypatch):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    fresh = load_rules([str(f)], compile_each=False).ruleset  # not from the cache: no key
    assert [cache.derived(fresh, "thing", (), lambda i=i: i) for i in range(2)] == [0, 1]
    assert not any(e.startswith("thing-") for e in entries(cache_dir))
    monkeypatch.setenv("WORKLOAD_AGENT_RULES_CACHE", "off")
    rs = load_rules_cached([str(f)]).ruleset
    assert [cache.derived(rs, "thing", (), lambda i=i: i) for i in range(2)] == [0, 1]


def test_damaged_derived_entry_is_rebuilt(cache_dir, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(RULE)
    rs = load_rules_cached([str(f)]).ruleset
    cache.derived(rs, "thing", (), lambda: 1)
    (entry,) = [e for e in entries(cache_dir) if e.startswith("thing-")]
    (cache_dir / entry).write_bytes(b"\x80\x05garbage")
    assert cache.derived(rs, "thing", (), lambda: 2) == 2
    assert cache.derived(rs, "thing", (), lambda: 3) == 2
    os.chmod(cache_dir / entry, 0o666)   # writable by others: never read
    assert cache.derived(rs, "thing", (), lambda: 4) == 4


def test_cached_prefilter_is_the_compiled_one(cache_dir, monkeypatch):
    """The prefilter the agent starts with, for the upstream and the default rules at two
    selections, two syscall sets and two starts: compiled on the first start, from the
    cache on the next, each equal to a fresh compile for that start (the exec program's
    drift test carries it) and none served for another selection or syscall set."""
    from workload_agent import detect
    from workload_agent.events.arch import native_arch
    from workload_agent.tracer import prefilter as pf

    compile_prefilter = pf.compile_prefilter
    starts = (1_700_000_000_123_456_789, 1_800_000_000_987_654_321)
    want = {}
    for files in (UPSTREAM, detect.default_rules_paths()):
        for min_priority in ("WARNING", "DEBUG"):
            load_rules_cached(files, min_priority=min_priority)   # fills the rules entry
            rs = load_rules_cached(files, min_priority=min_priority).ruleset
            names, _ = detect.traced_syscalls(rs, native_arch())
            for syscalls in (tuple(names), tuple(n for n in names if n != "openat")):
                for start in starts + (None,):
                    fresh = compile_prefilter(rs, syscalls, keep=detect.IDENTITY_SYSCALLS, start_ns=start)
                    want[tuple(files), min_priority, syscalls, start] = (fresh.programs, fresh.exec_program)
                    got = detect.prefilter_for(rs, syscalls, start)
                    assert (got.programs, got.exec_program) == (fresh.programs, fresh.exec_program)
                    assert (got.quiet_failed_exec, got.quiet_hold) == (fresh.quiet_failed_exec,
                                                                       fresh.quiet_hold)
    assert len({repr(w[0]) for w in want.values()}) >= 6   # the variants differ
    # the default rules' drift rule puts the start into the exec program
    drift = [w[1] for k, w in want.items() if k[0] != tuple(UPSTREAM) and k[3] == starts[0]]
    assert any(starts[0] in {a[1] for c in prog for a in c} for prog in drift if prog)
    assert len([e for e in entries(cache_dir) if e.startswith("prefilter-")]) == 16

    def no_compile(*a, **k):
        raise AssertionError("compiled again")

    monkeypatch.setattr(pf, "compile_prefilter", no_compile)
    for (files, min_priority, syscalls, start), programs in want.items():
        rs = load_rules_cached(list(files), min_priority=min_priority).ruleset
        got = detect.prefilter_for(rs, syscalls, start)
        assert (got.programs, got.exec_program) == programs
