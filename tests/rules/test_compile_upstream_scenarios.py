"""Upstream stable rules fire on the events they describe, and not on benign ones."""
from __future__ import annotations

import pytest

from workload_agent.rules.compiler import compile_condition, event_types
from workload_agent.rules.event import Container, Event, Fd, Param, Process, User
from tests.rules.upstream_files import resolved_rules

CTR = Container(id="0123456789ab", name="web", repository="docker.io/library/nginx", tag="1")


def _rules():
    out = []
    for name, item, tree in resolved_rules("falco_rules.yaml"):
        if item.get("enabled", True):
            out.append((name, compile_condition(tree), event_types(tree)))
    return out


RULES = _rules()


def fired(event):
    return {name for name, pred, types in RULES
            if (types is None or event.type in types) and pred(event)}


def proc(name, exe=None, args=(), parent=None, container=None, **kw):
    base = dict(pid=300, user=User(0, "root"), loginuid=-1, tty=0, cwd="/root/", start_ts=1)
    base.update(kw)
    return Process(name=name, exe=exe or f"/usr/bin/{name}", exepath=exe or f"/usr/bin/{name}",
                   args=list(args), parent=parent, container=container, **base)


def shell_parent(container=None):
    runc = proc("runc", pid=10, container=container)
    return proc("bash", exe="/bin/bash", parent=runc, pid=20, container=container)


def openat(path, p, flags=1):
    return Event("openat", num=5, res=3, proc=p,
                 fd=Fd(3, type="file", typechar="f", name=path, nameraw=path),
                 params=[Param("fd", "3", f"<f>{path}", 3), Param("dirfd", "-100", "AT_FDCWD", -100),
                         Param("name", path), Param("flags", str(flags), None, flags)])


def execve(p):
    return Event("execve", num=5, res=0, proc=p, params=[Param("res", "0", None, 0)])


SCENARIOS = [
    ("cat reads /etc/shadow",
     openat("/etc/shadow", proc("cat", args=["/etc/shadow"], parent=shell_parent())),
     {"Read sensitive file untrusted"}),
    ("cat reads /etc/hosts", openat("/etc/hosts", proc("cat", parent=shell_parent())), set()),
    ("write-only open of /etc/shadow",
     openat("/etc/shadow", proc("cat", parent=shell_parent()), flags=2), set()),
    ("terminal shell in a container",
     execve(proc("bash", exe="/bin/bash", parent=proc("runc", pid=9, container=CTR), container=CTR,
                 tty=34816)),
     {"Terminal shell in container"}),
    ("shell without a tty in a container",
     execve(proc("bash", exe="/bin/bash", parent=proc("runc", pid=9, container=CTR), container=CTR)),
     set()),
    ("binary run from /dev/shm",
     execve(proc("x", exe="/dev/shm/x", parent=shell_parent())), {"Execution from /dev/shm"}),
    ("dropped binary in a container",
     execve(proc("evil", parent=shell_parent(CTR), container=CTR, is_exe_upper_layer=True)),
     {"Drop and execute new binary in container"}),
    ("packet socket in a container",
     Event("socket", num=5, res=4, proc=proc("sniff", parent=shell_parent(CTR), container=CTR),
           fd=Fd(4, type=None, typechar="o"),
           params=[Param("fd", "4"), Param("domain", "17", "AF_PACKET", 17)]),
     {"Packet socket created in container"}),
    ("ptrace attach",
     Event("ptrace", num=5, res=0, proc=proc("gdb", parent=shell_parent()),
           params=[Param("res", "0"), Param("request", "16", "PTRACE_ATTACH", 16)]),
     {"PTRACE attached to process"}),
    ("ptrace peek is fine",
     Event("ptrace", num=5, res=0, proc=proc("gdb", parent=shell_parent()),
           params=[Param("res", "0"), Param("request", "2", "PTRACE_PEEKDATA", 2)]), set()),
    ("symlink over /etc/shadow",
     Event("symlinkat", num=5, res=0, proc=proc("ln", parent=shell_parent()),
           params=[Param("res", "0"), Param("target", "/etc/shadow"),
                   Param("linkdirfd", "-100", "AT_FDCWD"), Param("linkpath", "s", "/tmp/s")]),
     {"Create Symlink Over Sensitive Files"}),
    ("stdout redirected to a socket in a container",
     Event("dup2", num=5, res=1, proc=proc("sh", exe="/bin/sh", parent=shell_parent(CTR),
                                              container=CTR),
           fd=Fd(1, type="ipv4", typechar="4", name="10.0.0.2:4444->10.0.0.9:80",
                 cip="10.0.0.2", sip="10.0.0.9", cport=4444, sport=80, l4proto="tcp"),
           params=[Param("res", "1"), Param("oldfd", "3"), Param("newfd", "1")]),
     {"Redirect STDOUT/STDIN to Network Connection in Container"}),
]


@pytest.mark.parametrize("title,event,expected", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenario(title, event, expected):
    assert fired(event) == expected
