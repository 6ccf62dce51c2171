"""Every upstream rule compiles, with the event types falco-fields.md §3.2 lists."""
from __future__ import annotations

import pytest

from workload_agent.rules.compiler import compile_condition, event_types
from workload_agent.rules.event import Event, Process, User
from tests.rules.upstream_files import NAMES, resolved_rules

# falco-fields.md §3.2, a sample across files and shapes.
EXPECTED = {
    "Directory traversal monitored file read": {"open", "openat", "openat2"},
    "Run shell untrusted": {"execve", "execveat"},
    "Contact K8S API Server From Container": {"connect"},
    "Disallowed SSH Connection Non Standard Port": {"connect", "sendmsg", "sendto"},
    "Schedule Cron Jobs": {"execve", "execveat", "open", "openat", "openat2"},
    "System procs network activity": {"accept", "accept4", "connect", "listen"},
    "Delete or rename shell history": {"open", "openat", "openat2", "rename", "renameat",
                                       "renameat2", "rmdir", "unlink", "unlinkat"},
    "Create files below dev": {"creat", "open", "openat", "openat2"},
    "Create Hidden Files or Directories": {"mkdir", "mkdirat", "open", "openat", "openat2",
                                           "rename", "renameat", "renameat2", "rmdir", "unlink",
                                           "unlinkat"},
    "Unprivileged Delegation of Page Faults Handling to a Userspace Process": {"userfaultfd"},
    "BPF Program Not Profiled": {"bpf"},
    "Linux Kernel Module Injection Detected": {"finit_module", "init_module"},
}


@pytest.mark.parametrize("fname", NAMES)
def test_every_upstream_rule_compiles_and_has_event_types(fname):
    rules = resolved_rules(fname)
    assert rules
    ev = Event("execve", proc=Process(pid=1, name="true", user=User(0)), res=0)
    for name, _item, tree in rules:
        pred = compile_condition(tree)
        assert isinstance(pred(ev), bool)
        types = event_types(tree)
        assert types is not None and 0 < len(types) <= 11, (name, types)
        if name in EXPECTED:
            assert set(types) == EXPECTED[name], name


def test_all_expected_rules_were_seen():
    seen = {name for f in NAMES for name, _i, _t in resolved_rules(f)}
    assert set(EXPECTED) <= seen


# falco-fields.md §3.1: evt.type values reachable from each file's rules.
FILE_TYPES = {
    "falco_rules.yaml": "connect dup dup2 dup3 execve execveat finit_module init_module link linkat "
                        "open openat openat2 ptrace sendmsg sendto socket symlink symlinkat",
    "falco-incubating_rules.yaml": "accept accept4 bpf chmod connect creat execve execveat fchmod "
                                   "fchmodat listen open openat openat2 rename renameat renameat2 "
                                   "rmdir sendmsg sendto setns setuid unlink unlinkat unshare",
    "falco-sandbox_rules.yaml": "accept accept4 chmod connect creat execve execveat fchmod fchmodat "
                                "listen mkdir mkdirat open openat openat2 recvfrom recvmsg rename "
                                "renameat renameat2 rmdir sendmsg sendto unlink unlinkat userfaultfd",
}


@pytest.mark.parametrize("fname", NAMES)
def test_union_of_event_types_per_file_matches_reference(fname):
    union = set()
    for _n, _i, tree in resolved_rules(fname):
        union |= event_types(tree)
    assert union == set(FILE_TYPES[fname].split())
