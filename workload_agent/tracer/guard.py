"""Guarded syscalls: the policy the C core's generic guard (csrc/guard.c) runs at the stop.

Two kinds of calls are guarded:

- calls aimed at the agent itself: a signal to its pid or one of its threads (kill,
  tkill, tgkill, rt_[tg]sigqueueinfo, pidfd_send_signal on a pidfd or /proc dir fd of the
  agent), pidfd_open, ptrace and process_vm_readv/writev on it, and an open of
  /proc/<agent>/mem. With --self-protect deny (the default) they fail with EPERM; with
  alert they go on. Either way the record is flagged and the tracee waits at the stop
  until the consumer has handled it, so the alert is out before the call takes effect.
- calls that would escape tracing: clone with CLONE_UNTRACED, clone3 (its flags are in
  memory, which another thread can change after we read it: always refused with ENOSYS,
  glibc falls back to clone; recorded when the flags ask for CLONE_UNTRACED),
  PTRACE_TRACEME, and with --foreign-arch deny any syscall through another ABI.

The deny decision is made here, in Python, once: C only evaluates the compiled rules.
"""
from __future__ import annotations

import errno
import os

TYPE_CHECKING = False  # typing costs milliseconds at every container start
if TYPE_CHECKING:
    from typing import Iterable, List, Optional

from ..events.syscall_table import SYSCALLS

# Must match enum wa_guard_match / wa_guard_rule_flag in csrc/guard.h (checked by a test).
G_ALWAYS, G_ARG_EQ, G_ARG_MASK, G_MEM_MASK, G_AGENT_TASK, G_AGENT_PIDFD, G_AGENT_PROCFILE = range(7)
GR_DENY = 1
GR_RECORD = 2

CLONE_UNTRACED = 0x00800000
PTRACE_TRACEME = 0

# What agent.guard says for each kind of hit.
SIGNAL, PTRACE, MEMORY, PIDFD = "signal", "ptrace", "memory", "pidfd"
UNTRACED_CLONE, TRACEME, FOREIGN_ARCH = "untraced-clone", "traceme", "foreign-arch"
AIMED_AT_AGENT = frozenset({SIGNAL, PTRACE, MEMORY, PIDFD})
# The /proc/<agent>/ files whose open counts as an attack on the agent.
PROC_FILES = ("mem",)


class GuardRule:
    """One call the guard checks (a plain class: see core.CaptureSpec)."""

    __slots__ = ("label", "syscall", "match", "arg", "deny_errno", "record", "value", "dirfd_arg")

    def __init__(self, label: str, syscall: str, match: int, arg: int = 0, deny_errno: int = 0,
                 record: bool = True, value: int = 0, dirfd_arg: int = -1):
        self.label = label            # agent.guard
        self.syscall = syscall
        self.match = match
        self.arg = arg
        self.deny_errno = deny_errno  # 0: let the call go on
        self.record = record
        self.value = value
        self.dirfd_arg = dirfd_arg


# (syscall, match, argument, dirfd argument, label): calls aimed at the agent.
_AT_AGENT = (
    ("kill", G_AGENT_TASK, 0, -1, SIGNAL),
    ("tkill", G_AGENT_TASK, 0, -1, SIGNAL),
    ("tgkill", G_AGENT_TASK, 0, -1, SIGNAL),
    ("tgkill", G_AGENT_TASK, 1, -1, SIGNAL),
    ("rt_sigqueueinfo", G_AGENT_TASK, 0, -1, SIGNAL),
    ("rt_tgsigqueueinfo", G_AGENT_TASK, 0, -1, SIGNAL),
    ("rt_tgsigqueueinfo", G_AGENT_TASK, 1, -1, SIGNAL),
    ("pidfd_send_signal", G_AGENT_PIDFD, 0, -1, SIGNAL),
    ("pidfd_open", G_AGENT_TASK, 0, -1, PIDFD),
    ("ptrace", G_AGENT_TASK, 1, -1, PTRACE),
    ("process_vm_readv", G_AGENT_TASK, 0, -1, MEMORY),
    ("process_vm_writev", G_AGENT_TASK, 0, -1, MEMORY),
)
# The open family is guarded when it is traced anyway: the check rides on stops the rules
# take (the shipped rules take them); it costs nothing more there.
_OPENS = (("open", 0, -1), ("creat", 0, -1), ("openat", 1, 0), ("openat2", 1, 0))


def guard_rules(arch: str, traced: Iterable[str] = (), *, self_protect: str = "deny") -> List[GuardRule]:
    table = SYSCALLS[arch]
    traced = set(traced)
    deny = errno.EPERM if self_protect == "deny" else 0
    rules: List[GuardRule] = []
    for name, match, arg, dirfd, label in _AT_AGENT:
        rules.append(GuardRule(label, name, match, arg, deny, dirfd_arg=dirfd))
    for name, arg, dirfd in _OPENS:
        if name in traced:
            rules.append(GuardRule(MEMORY, name, G_AGENT_PROCFILE, arg, deny, dirfd_arg=dirfd))
    # Escaping the tracer is refused whatever --self-protect says: it was before, silently.
    rules.append(GuardRule(UNTRACED_CLONE, "clone", G_ARG_MASK, 0, errno.EPERM, value=CLONE_UNTRACED))
    rules.append(GuardRule(UNTRACED_CLONE, "clone3", G_MEM_MASK, 0, errno.ENOSYS, value=CLONE_UNTRACED))
    rules.append(GuardRule(UNTRACED_CLONE, "clone3", G_ALWAYS, 0, errno.ENOSYS, record=False))
    rules.append(GuardRule(TRACEME, "ptrace", G_ARG_EQ, 0, errno.EPERM, value=PTRACE_TRACEME))
    # TRACEME first: ptrace(TRACEME, pid-arg garbage) must not read as aimed at the agent.
    rules.sort(key=lambda r: r.label != TRACEME)
    return [r for r in rules if r.syscall in table]


def guarded_syscalls(rules: Iterable[GuardRule]) -> set:
    return {r.syscall for r in rules}


def agent_values() -> list:
    """Values that name the agent besides its pid and threads: kill(-1) signals every
    process, kill(-pgid) the agent's process group (which the workload shares)."""
    return [-1, -os.getpgrp()]


def build(ffi, rules: List[GuardRule], arch: str, *, foreign_deny: bool, ack_timeout_ms: int,
          agent_pid: Optional[int] = None):
    """The struct wa_guard for the C core."""
    table = SYSCALLS[arch]
    g = ffi.new("struct wa_guard *")
    if len(rules) > len(g.rules):
        raise ValueError(f"{len(rules)} guard rules: the core takes at most {len(g.rules)}")
    g.nrules = len(rules)
    g.agent_pid = os.getpid() if agent_pid is None else agent_pid
    values = agent_values()[:len(g.pids)]
    for i, v in enumerate(values):
        g.pids[i] = v
    g.npids = len(values)
    for i, name in enumerate(PROC_FILES[:len(g.names)]):
        g.names[i] = name.encode()
    g.nnames = min(len(PROC_FILES), len(g.names))
    for i, r in enumerate(rules):
        c = g.rules[i]
        c.nr = table[r.syscall]
        c.match = r.match
        c.arg = r.arg
        c.dirfd_arg = r.dirfd_arg
        c.flags = (GR_DENY if r.deny_errno else 0) | (GR_RECORD if r.record else 0)
        c.err = r.deny_errno
        c.value = r.value
    if foreign_deny:
        g.foreign_flags = GR_DENY | GR_RECORD
        g.foreign_err = errno.ENOSYS
    g.ack_timeout_ms = ack_timeout_ms
    return g


def label_of(labels: List[str], extra: int) -> str:
    """agent.guard for a flagged record: its extra is the rule index + 1 (past the end:
    the foreign-ABI guard)."""
    if 1 <= extra <= len(labels):
        return labels[extra - 1]
    return FOREIGN_ARCH
