"""agent.* fields: what the agent's own guard saw and did at the syscall stop
(workload_agent/tracer/guard.py). Ours; Falco has no equivalent."""
from __future__ import annotations

from . import types as T
from .spec import FieldSpec, inline

_AIMED = frozenset({"signal", "ptrace", "memory", "pidfd"})


def _guard(e):
    return getattr(e, "agent_guard", "")


FIELDS = [
    FieldSpec("agent.guard", T.CHARBUF,
              "Which guard of the agent this call met: signal, ptrace, memory, pidfd (aimed at the "
              "agent), untraced-clone, traceme, foreign-arch (tracing evasion); empty if none.", _guard),
    FieldSpec("agent.targeted", T.BOOL,
              "true if the call was aimed at the agent itself: a signal, ptrace, pidfd or memory "
              "access on its pid or one of its threads, or an open of /proc/<agent>/mem.",
              inline(lambda e: _guard(e) in _AIMED,
                     "getattr(e, 'agent_guard', '') in " + repr(tuple(sorted(_AIMED))))),
    FieldSpec("agent.denied", T.BOOL,
              "true if the agent made the call fail (--self-protect deny, tracing evasion, "
              "--foreign-arch deny); evt.res holds the errno it returned.",
              lambda e: getattr(e, "agent_denied", False)),
]
