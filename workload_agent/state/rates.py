"""Per-process counts over a sliding time window, for rules about volume.

Falco's condition language judges one event at a time; a port scan or a mass
encryption is many ordinary events. Rather than extending the language, the state
keeps a few counters per process and each event carries a snapshot of them, taken
when it is processed (so it includes the event itself), read by the ``wa.rate.*``
fields (workload_agent/rules/fields/rates.py):

* ``connect_ports``: distinct remote ports the process called connect() on (any
  result: a refused connect is what a scan of closed ports produces);
* ``suffix_renames``: renames that only append an extension to a file's name
  (``report.pdf`` -> ``report.pdf.locked``), the signature of encrypting in place.

The window is ``WINDOW_NS`` of event time. Windows are trimmed as events arrive, and
every ``SWEEP_EVERY`` counted events those of processes quiet for a whole window
(exited ones included) are dropped, so memory stays bounded by the activity of the
last window.
"""
from __future__ import annotations

from collections import deque
from typing import Deque, Dict, Optional, Tuple

WINDOW_NS = 10_000_000_000
SWEEP_EVERY = 1024

_RENAMES = frozenset(("rename", "renameat", "renameat2"))
#: Every event of these types counts, whether a rule matches it or not: the prefilter
#: must never drop them (tracer/prefilter.py).
RATED_SYSCALLS = frozenset({"connect"}) | _RENAMES
_IP_FD_TYPES = frozenset(("ipv4", "ipv6"))


class RateSnapshot:
    """The counts one event saw (the ``wa_rates`` attribute of the event)."""

    __slots__ = ("connect_ports", "suffix_renames")

    def __init__(self, connect_ports: int, suffix_renames: int) -> None:
        self.connect_ports = connect_ports
        self.suffix_renames = suffix_renames


class _Window:
    """Timestamped keys of the last window; ``distinct`` counts different keys."""

    __slots__ = ("items", "counts")

    def __init__(self) -> None:
        self.items: Deque[Tuple[int, object]] = deque()
        self.counts: Dict[object, int] = {}

    def add(self, ts: int, key: object, window: int) -> None:
        self.items.append((ts, key))
        self.counts[key] = self.counts.get(key, 0) + 1
        self.trim(ts, window)

    def trim(self, now: int, window: int) -> None:
        items, counts = self.items, self.counts
        while items and items[0][0] <= now - window:
            _, key = items.popleft()
            left = counts[key] - 1
            if left:
                counts[key] = left
            else:
                del counts[key]

    def distinct(self) -> int:
        return len(self.counts)


def appended_suffix(old: Optional[str], new: Optional[str]) -> bool:
    """``new`` is ``old`` plus an extension (``a.txt`` -> ``a.txt.enc``)."""
    if not old or not new or len(new) <= len(old) + 1 or not new.startswith(old):
        return False
    rest = new[len(old):]
    return rest[0] == "." and "/" not in rest


class Rates:
    def __init__(self, window_ns: int = WINDOW_NS) -> None:
        self.window = window_ns
        self._ports: Dict[int, _Window] = {}
        self._renames: Dict[int, _Window] = {}
        self._until_sweep = SWEEP_EVERY

    def observe(self, ev) -> None:
        """Count the event for its process and attach the snapshot to it."""
        p = ev.proc
        if p is None:
            return
        pid, ts, etype = p.pid, ev.ts, ev.type
        if etype == "connect":
            fd = ev.fd
            if fd is not None and fd.type in _IP_FD_TYPES and fd.sport:
                self._window(self._ports, pid).add(ts, fd.sport, self.window)
        elif etype in _RENAMES:
            old, new = _arg(ev, "oldpath"), _arg(ev, "newpath")
            if appended_suffix(old, new):
                self._window(self._renames, pid).add(ts, new, self.window)
        else:
            return
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._sweep(ts)
        ev.wa_rates = RateSnapshot(self._count(self._ports, pid, ts),
                                   self._count(self._renames, pid, ts))

    def _sweep(self, now: int) -> None:
        self._until_sweep = SWEEP_EVERY
        for table in (self._ports, self._renames):
            for pid in [pid for pid, w in table.items()
                        if not w.items or w.items[-1][0] <= now - self.window]:
                del table[pid]

    def tracked(self) -> int:
        """Processes with a window held (for tests of the bound)."""
        return len(set(self._ports) | set(self._renames))

    @staticmethod
    def _window(table: Dict[int, _Window], pid: int) -> _Window:
        w = table.get(pid)
        if w is None:
            w = table[pid] = _Window()
        return w

    def _count(self, table: Dict[int, _Window], pid: int, ts: int) -> int:
        w = table.get(pid)
        if w is None:
            return 0
        w.trim(ts, self.window)
        return w.distinct()


def _arg(ev, name: str) -> Optional[str]:
    param = ev.param(name)
    value = param.text() if param is not None else None
    return value if isinstance(value, str) else None
