"""Exec sessions: a process that entered the container from outside the workload's tree
(the root) and everything it starts. ECS Exec's own agent, bind-mounted by the platform
under /managed-agents/, is recognised and is not a session itself; what its session
worker starts is one."""
from __future__ import annotations

from typing import Optional

#: Where ECS mounts the SSM agent it runs for ECS Exec, and the names of its programs.
ECS_EXEC_DIR = "/managed-agents/execute-command/"
ECS_EXEC_AGENT_NAMES = frozenset({"amazon-ssm-agent", "ssm-agent-worker", "ssm-session-worker"})
ECS_EXEC_SESSION_WORKER = "ssm-session-worker"

#: What a container runtime runs in the namespace before it execs the command it was given
#: (runc exec's init, nsenter): attached that early, the session starts at that exec.
RUNTIME_HELPERS = frozenset({"nsenter", "runc", "runc:[2:INIT]", "runc:[1:CHILD]", "crun", "youki"})

#: proc.exec_session.kind values
KIND_EXEC = "exec"          # entered the namespace from outside: docker/kubectl exec, nsenter
KIND_ECS_EXEC = "ecs-exec"  # started by ECS Exec's session worker


class ExecSession:
    """Shared by every process of one session."""

    __slots__ = ("pid", "cmdline", "kind", "start_num", "pending")

    def __init__(self, pid: int, cmdline: str, kind: str, pending: bool = False) -> None:
        self.pid = pid            # the root process
        self.cmdline = cmdline    # the root's command line when the session was seen to start
        self.kind = kind
        self.start_num: Optional[int] = None   # evt.num of the event that starts it
        self.pending = pending    # the root is still the runtime's helper: starts at its exec

    def __repr__(self) -> str:
        return f"ExecSession(pid={self.pid}, kind={self.kind}, cmdline={self.cmdline!r})"


def is_ecs_exec_agent(p) -> bool:
    """One of ECS Exec's agent programs, run from the platform's mount: a copy of the same
    name elsewhere, or one written into the container after it started, is not."""
    path = p.exepath or ""
    if not path.startswith(ECS_EXEC_DIR):
        return False
    name = path.rsplit("/", 1)[-1]
    return name in ECS_EXEC_AGENT_NAMES and not p.is_exe_upper_layer


def _cmdline(p) -> str:
    return " ".join([p.name or ""] + list(p.args))


def _start(p, kind: str) -> Optional[ExecSession]:
    """A new session rooted at p; returned when it starts now (None while pending)."""
    pending = kind == KIND_EXEC and p.name in RUNTIME_HELPERS
    s = ExecSession(p.pid, _cmdline(p), kind, pending)
    p.exec_session = s
    return None if pending else s


def on_attach(p, parent) -> Optional[ExecSession]:
    """A process seen for the first time from outside the traced tree (attached or, in
    alert mode, scanned); parent: its parent if we know it. Returns the session it starts,
    None when it joins one (or is ECS Exec's agent, or a runtime helper about to exec)."""
    if is_ecs_exec_agent(p):
        p.exec_session = None
        return None
    if parent is not None and parent.exec_session is not None:
        p.exec_session = parent.exec_session
        return None
    if parent is not None and is_ecs_exec_agent(parent):
        return _start(p, KIND_ECS_EXEC)
    return _start(p, KIND_EXEC)


def on_exec(p) -> Optional[ExecSession]:
    """After a successful execve: the first program ECS Exec's session worker starts (its
    child, once it is no longer a copy of the worker) is the root of a session; a root
    attached while it was still the runtime's helper starts its session now."""
    s = p.exec_session
    if s is not None:
        if s.pending and s.pid == p.pid:
            s.pending = False
            s.cmdline = _cmdline(p)
            return s
        return None
    parent = p.parent
    if parent is None or not is_ecs_exec_agent(parent) or is_ecs_exec_agent(p):
        return None
    if (parent.exepath or "").rsplit("/", 1)[-1] != ECS_EXEC_SESSION_WORKER:
        return None
    return _start(p, KIND_ECS_EXEC)
