"""Rules that name a legacy call (open, mkdir, chmod...) on an architecture that lacks it.

aarch64 has only the *at forms: libc's open() is openat there, mkdir() is mkdirat. A rule
on `open` must still see opens, so there the legacy name also means its replacement, in
the traced set, in the rule index and in the condition itself. x86_64 has both and keeps
Falco's exact semantics.
"""
import json
import os
import subprocess
import sys

import pytest

from workload_agent import detect
from workload_agent.events.params import AT_FORMS, SPECS, equivalents, native_arch
from workload_agent.events.syscall_table import SYSCALLS
from workload_agent.rules import compiler
from workload_agent.rules.event import Event, Param
from workload_agent.rules.loader import load_rules

LEGACY_RULES = """
- rule: Legacy open of a marker
  desc: names only the legacy call
  condition: evt.type = open and fd.name endswith /wa-marker
  output: "marker opened (file=%fd.name evt=%evt.type)"
  priority: WARNING
- rule: Legacy mkdir
  desc: d
  condition: evt.type in (mkdir) and evt.arg.path endswith /wa-dir
  output: "mkdir %evt.arg.path (evt=%evt.type)"
  priority: WARNING
- rule: Anything but chmod
  desc: a negated legacy name
  condition: evt.type != chmod and evt.type = fchmodat
  output: "fchmodat"
  priority: NOTICE
"""


def load(text, monkeypatch=None, arch=None):
    if arch is not None:
        monkeypatch.setattr(compiler, "_AT_FORMS", equivalents(arch))
    res = load_rules(["t.yaml"], contents={"t.yaml": text})
    assert res.ok, [m.as_text() for m in res.errors]
    return res.ruleset


def test_every_replacement_exists_where_the_legacy_call_does_not():
    for arch, table in SYSCALLS.items():
        for old, new in equivalents(arch).items():
            assert old not in table, (arch, old)
            assert any(n in table for n, _ in new), (arch, old, new)
    assert equivalents("x86_64") == {}
    assert set(equivalents("aarch64")) == set(AT_FORMS)
    for new in AT_FORMS.values():
        assert all(n in SPECS for n, _ in new)


def test_traced_set_on_aarch64_takes_the_replacements(monkeypatch):
    rs = load(LEGACY_RULES, monkeypatch, "x86_64")  # rules compiled elsewhere, traced here
    names, _ = detect.traced_syscalls(rs, "aarch64")
    assert {"openat", "mkdirat"} <= set(names)
    assert not set(names) & set(AT_FORMS)  # no name aarch64 does not have
    assert all(n in SYSCALLS["aarch64"] for n in names)


def test_traced_set_on_x86_64_is_unchanged(monkeypatch):
    names, _ = detect.traced_syscalls(load(LEGACY_RULES, monkeypatch, "x86_64"), "x86_64")
    assert {"open", "mkdir"} <= set(names)
    assert "mkdirat" not in names  # the legacy-only rule does not pull in the *at form


def test_rule_index_and_condition_follow_the_arch(monkeypatch):
    rs = load(LEGACY_RULES, monkeypatch, "aarch64")
    rule = rs.by_name["Legacy mkdir"]
    assert rule.event_types == frozenset({"mkdir", "mkdirat"})
    at = Event(type="mkdirat", params=[Param("path", "/tmp/wa-dir")])
    other = Event(type="mkdirat", params=[Param("path", "/tmp/elsewhere")])
    assert [r.name for r in rs.match(at, "all")] == ["Legacy mkdir"]
    assert rs.match(other, "all") == []
    # `!= chmod` means "neither chmod nor its replacement" there
    assert rs.match(Event(type="fchmodat"), "all") == []

    rs86 = load(LEGACY_RULES, monkeypatch, "x86_64")
    assert rs86.by_name["Legacy mkdir"].event_types == frozenset({"mkdir"})
    assert rs86.match(at, "all") == []
    assert [r.name for r in rs86.match(Event(type="fchmodat"), "all")] == ["Anything but chmod"]


@pytest.mark.skipif("open" in SYSCALLS.get(native_arch(), {"open": 0}),
                    reason="this machine has the legacy calls (x86_64): the *at-only path runs on aarch64 "
                           "(tools/arm64-check)")
def test_live_rule_on_open_sees_openat(tmp_path, mode_args):
    rules = tmp_path / "r.yaml"
    rules.write_text(LEGACY_RULES)
    marker = tmp_path / "wa-marker"
    marker.write_text("x")
    alerts = tmp_path / "alerts.jsonl"
    p = subprocess.run([sys.executable, "-m", "workload_agent", "run", "-r", str(rules), "--json",
                        "--alerts-to", str(alerts), *mode_args, "--",
                        "sh", "-c", f"cat {marker} >/dev/null; mkdir {tmp_path}/wa-dir"],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    got = [json.loads(x) for x in alerts.read_text().splitlines()]
    by_rule = {a["rule"]: a for a in got}
    assert set(by_rule) == {"Legacy open of a marker", "Legacy mkdir"}, got
    assert by_rule["Legacy open of a marker"]["output_fields"]["evt.type"] == "openat"
    assert by_rule["Legacy mkdir"]["output_fields"]["evt.type"] == "mkdirat"


def flags(text):
    return [Param("flags", text)]


def test_replacements_keep_the_legacy_calls_meaning(monkeypatch):
    """creat is an openat that creates, truncates and writes; rmdir an unlinkat with
    AT_REMOVEDIR, unlink one without; fork a clone without CLONE_VM (not a thread)."""
    text = "".join(f"""
- rule: On {name}
  desc: d
  condition: evt.type = {name}
  output: "{name}"
  priority: NOTICE
""" for name in ("creat", "unlink", "rmdir", "fork", "vfork"))
    rs = load(text, monkeypatch, "aarch64")

    def hits(etype, flag_text):
        return sorted(r.name for r in rs.match(Event(type=etype, params=flags(flag_text)), "all"))

    assert hits("openat", "O_RDONLY|O_CLOEXEC") == []
    assert hits("openat", "O_WRONLY|O_CREAT|O_APPEND") == []
    assert hits("openat", "O_WRONLY|O_CREAT|O_TRUNC") == ["On creat"]
    assert hits("unlinkat", "") == ["On unlink"]
    assert hits("unlinkat", "AT_REMOVEDIR") == ["On rmdir"]
    assert hits("clone", "CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_THREAD") == []
    assert hits("clone", "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID") == ["On fork"]
    assert hits("clone", "CLONE_VM|CLONE_VFORK") == ["On vfork"]
    # the legacy events themselves still match (a capture from x86_64 replayed here)
    assert hits("creat", "") == ["On creat"]
    assert rs.by_name["On creat"].event_types == frozenset({"creat", "openat"})
