"""Whether the agent may look for foreign processes at all: it must be the container's
init. Apart from scanner.py so that a run that is not (most runs outside a container)
decides it without importing the scanner and its thread machinery."""
from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs milliseconds at every container start
if TYPE_CHECKING:
    from typing import Optional

#: Minimal inits that may run the agent as PID 2 (docker --init, ECS initProcessEnabled,
#: podman --init): the agent's namespace is still the container's.
KNOWN_INITS = frozenset({"tini", "docker-init", "dumb-init", "catatonit", "tini-static"})


def scope(pid: Optional[int] = None, ppid: Optional[int] = None, proc: str = "/proc"):
    """(active, why not, pids never to touch). Foreign processes are the container's only
    when the agent is its init, or the child of a minimal init; elsewhere (a shell on a
    host) every other process of the machine would look foreign."""
    me = os.getpid() if pid is None else pid
    parent = os.getppid() if ppid is None else ppid
    if me == 1:
        return True, "", {1}
    if parent == 1:
        try:
            with open(f"{proc}/1/comm", encoding="utf-8", errors="replace") as fh:
                init = fh.read().strip()
        except OSError:
            init = ""
        if init in KNOWN_INITS:
            return True, "", {1, me}
        return False, (f"the agent is not the container's init: PID 1 is {init or '?'}, not one "
                       f"of {', '.join(sorted(KNOWN_INITS))}"), set()
    return False, "the agent is not the container's init (PID 1)", set()
