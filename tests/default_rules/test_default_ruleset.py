"""The default ruleset (rules/): loads cleanly, every rule is documented and tagged,
and tracing it stays cheap."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from workload_agent.rules.loader import load_rules

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))

TECHNIQUE = re.compile(r"^(T\d{4}(\.\d{3})?|TA\d{4})$")
TACTICS = {
    "mitre_reconnaissance", "mitre_resource_development", "mitre_initial_access",
    "mitre_execution", "mitre_persistence", "mitre_privilege_escalation",
    "mitre_defense_evasion", "mitre_credential_access", "mitre_discovery",
    "mitre_lateral_movement", "mitre_collection", "mitre_command_and_control",
    "mitre_exfiltration", "mitre_impact",
}
# Syscalls a busy server makes per request or per packet: a rule needing one of them
# would stop every workload on them.
HOT_SYSCALLS = {
    "read", "write", "readv", "writev", "pread", "pwrite", "preadv", "pwritev", "sendto",
    "sendmsg", "sendmmsg", "recvfrom", "recvmsg", "recvmmsg", "close", "mmap", "munmap",
    "mprotect", "brk", "futex", "poll", "ppoll", "select", "pselect6", "epoll_wait",
    "epoll_pwait", "epoll_ctl", "nanosleep", "clock_nanosleep", "stat", "fstat", "lstat",
    "newfstatat", "statx", "lseek", "getdents64", "fcntl", "ioctl", "accept", "accept4",
}
# Each traced syscall is one more comparison in the seccomp filter that every call walks;
# + the agent-defense rules' rare syscalls (signals, pidfd, process_vm_*, clone/clone3),
# which do not widen what the tracer stops on (detect.traced_syscalls: the guard stops them)
MAX_EVENT_TYPES = 60


@pytest.fixture(scope="module")
def ruleset():
    result = load_rules([str(RULES_DIR)])
    assert result.ok, "\n".join(m.text for m in result.messages)
    return result.ruleset


def test_there_are_several_themed_files():
    assert len(RULE_FILES) >= 3


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_each_file_validates_without_warnings(path):
    # Loaded after its predecessors, as Falco loads several -r files: each file's
    # lists and macros must be used by the time that file is compiled.
    upto = [str(p) for p in RULE_FILES if p.name <= path.name]
    result = load_rules(upto)
    assert result.ok
    assert [f"{m.position_text()} {m.code}" for m in result.messages] == []


def test_cli_validate_reports_ok_and_no_warnings():
    proc = subprocess.run([sys.executable, "-m", "workload_agent", "rules", "validate",
                           str(RULES_DIR)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdicts = [ln for ln in proc.stdout.splitlines() if ln.startswith(str(RULES_DIR))]
    assert len(verdicts) == len(RULE_FILES)
    assert all(ln.endswith(": Ok") for ln in verdicts), proc.stdout
    assert "warning" not in proc.stdout.lower()


def test_every_rule_is_documented_and_tagged(ruleset):
    assert len(ruleset.rules) >= 25
    problems = []
    for rule in ruleset.rules:
        tags = set(rule.tags)
        if len(rule.desc.split()) < 12:
            problems.append(f"{rule.name}: desc too short")
        if not tags:
            problems.append(f"{rule.name}: no tags")
        if not tags & TACTICS:
            problems.append(f"{rule.name}: no mitre_<tactic> tag")
        if not any(TECHNIQUE.match(t) for t in tags):
            problems.append(f"{rule.name}: no MITRE technique/tactic id tag")
        if "%" not in rule.output_text:
            problems.append(f"{rule.name}: output has no fields")
        if not rule.enabled:
            problems.append(f"{rule.name}: disabled by default")
    assert problems == []


def test_every_rule_names_its_event_types(ruleset):
    assert [r.name for r in ruleset.rules if r.event_types is None] == []


def test_event_type_union_is_small_and_avoids_hot_syscalls(ruleset):
    union = set(ruleset.event_types())
    assert len(union) <= MAX_EVENT_TYPES, sorted(union)
    assert union & HOT_SYSCALLS == set()
    # the things the ruleset is about
    assert {"execve", "openat", "connect", "ptrace", "mount"} <= union


def test_describe_prints_the_union(ruleset):
    proc = subprocess.run([sys.executable, "-m", "workload_agent", "rules", "describe",
                           "-r", str(RULES_DIR)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("Event types of the enabled rules:")]
    assert len(line) == 1
    printed = {t.strip() for t in line[0].split(":", 1)[1].split(",")}
    assert printed == set(ruleset.event_types())
    print(line[0])


def test_rule_names_do_not_collide_with_upstream_names(ruleset):
    # Our rules must be loadable beside Falco's files without silently replacing them.
    from tests.rules.upstream_files import NAMES, load

    try:
        upstream = {it.get("rule") or it.get("macro") or it.get("list")
                    for name in NAMES for it in load(name)}
    except FileNotFoundError:
        pytest.skip("upstream falco-rules not found")
    ours = {r.name for r in ruleset.rules}
    ours |= {name for r in ruleset.rules for name in (*r.macros, *r.lists)}
    assert ours & upstream == set()


def test_loads_together_with_upstream_stable_rules():
    from tests.rules.upstream_files import upstream_file

    upstream = upstream_file()
    result = load_rules([str(upstream), str(RULES_DIR)])
    assert result.ok, "\n".join(m.text for m in result.messages)
    ours = load_rules([str(RULES_DIR)]).ruleset
    assert len(result.ruleset.rules) == 25 + len(ours.rules)


def test_the_doc_lists_the_event_types(ruleset):
    text = (REPO / "docs" / "default-rules.md").read_text()
    m = re.search(r"The rules need (\d+) event types: (.*?)\. None", text, flags=re.S)
    assert m, "docs/default-rules.md: event type list not found"
    listed = set(re.findall(r"[a-z_0-9]+", m.group(2).replace("`", " ")))
    union = set(ruleset.event_types())
    assert listed == union
    assert int(m.group(1)) == len(union)


def test_rules_of_a_file_go_from_most_to_least_severe(ruleset):
    # Falco's default matching stops at the first rule an event matches: when a
    # dropped binary in /tmp is run, the drift rule (CRITICAL) must win over the
    # temporary-directory rule (WARNING).
    by_file = {}
    for rule in ruleset.rules:
        by_file.setdefault(rule.file, []).append(rule.priority)
    assert len(by_file) == len(RULE_FILES)
    for name, prios in by_file.items():
        assert prios == sorted(prios), name


def test_every_rule_has_a_paragraph_in_the_doc(ruleset):
    text = (REPO / "docs" / "default-rules.md").read_text()
    assert [r.name for r in ruleset.rules if f"**{r.name}**" not in text] == []


def test_describe_shows_the_mitre_tags(ruleset):
    proc = subprocess.run([sys.executable, "-m", "workload_agent", "rules", "describe",
                           "-r", str(RULES_DIR)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    blocks = re.split(r"^Rule: ", proc.stdout, flags=re.M)
    assert len(blocks) >= len(ruleset.rules)
    for rule in ruleset.rules:
        block = next(b for b in blocks if b.split("\n", 1)[0].strip() == rule.name)
        tags = re.search(r"^  tags: (.*)$", block, re.M).group(1).split(", ")
        assert any(t.startswith("mitre_") for t in tags), rule.name
        assert any(TECHNIQUE.match(t) for t in tags), rule.name
