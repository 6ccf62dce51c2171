"""Noticing processes in the agent's PID namespace that the tracer does not follow.

Nothing tells a process with only SYS_PTRACE that another process entered its namespace,
so this polls, cheaply: /proc/loadavg's last field is the last pid allocated in the
reader's pid namespace (a 2 us read). A C thread (csrc/attach.c, the watcher) reads it
every PERIOD and wakes this thread only when a new pid is one the tracer does not follow;
the new pids are then looked at here, one /proc/PID/status each. A full /proc listing
runs every FULL_PERIOD as the backstop (pids that wrapped, or that the tracer knew a
moment too late). A process is foreign when no thread of ours traces it (TracerPid): a workload
child is traced from its first instruction, so this has no race with the workload.

What to do with a foreign process is the mode (--attach-foreign):
trace   ask the tracer thread to seize it (csrc/attach.c); its ATTACH record follows
alert   report it without tracing it: an ATTACH record with the facts /proc gives now;
        one still the runtime's helper (nsenter, runc init) once it has exec'd
never   this scanner does not run
"""
from __future__ import annotations

import os
import threading
import time

TYPE_CHECKING = False  # typing costs milliseconds at every container start
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Set

from ..events import records as R
from .scope import KNOWN_INITS, scope  # noqa: F401 - scope() is this module's too
from .sessions import RUNTIME_HELPERS

MODES = ("trace", "alert", "never")

#: The first look after a process enters comes within PERIOD (see docs/tracer.md for the
#: measured exec-to-attach delay); the full listing every FULL_PERIOD; this thread wakes
#: at least every IDLE_WAIT (to notice it should stop).
PERIOD = 0.01
FULL_PERIOD = 1.0
IDLE_WAIT = 0.25
#: More new pids than this since the last look: list /proc instead of probing each.
MAX_PROBES = 64

_INIT_PIDNS = "pid:[4026531836]"   # the kernel's initial pid namespace (PROC_PID_INIT_INO)


class _Status:
    __slots__ = ("tgid", "ppid", "tracer", "kthread", "name")


def _status(pid: int) -> Optional[_Status]:
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            data = fh.read(4096)
    except OSError:
        return None
    s = _Status()
    s.tgid = s.ppid = s.tracer = -1
    s.kthread = False
    s.name = ""
    for line in data.split(b"\n"):
        key, _, value = line.partition(b":")
        if key == b"Name":
            s.name = value.strip().decode("utf-8", "replace")
        elif key == b"Tgid":
            s.tgid = int(value)
        elif key == b"PPid":
            s.ppid = int(value)
        elif key == b"TracerPid":
            s.tracer = int(value)
        elif key == b"Kthread":
            s.kthread = value.strip() == b"1"
    return s if s.tgid > 0 else None


class ForeignScanner(threading.Thread):
    """Runs beside the consumer; `take()` hands the main loop the alert-mode notices."""

    def __init__(self, tracer, mode: str, *, skip: Set[int], warn: Callable[[str], None],
                 period: float = PERIOD, full_period: float = FULL_PERIOD) -> None:
        super().__init__(name="foreign-scanner", daemon=True)
        if mode not in ("trace", "alert"):
            raise ValueError(f"mode {mode!r}")
        self.tracer = tracer
        self.mode = mode
        self.skip = set(skip) | {os.getpid()}
        self.warn = warn
        self.period = period
        self.full_period = full_period
        self.stopping = threading.Event()
        self.counts: Dict[str, int] = {"scans": 0, "full scans": 0, "probes": 0,
                                       "requested": 0, "noticed": 0}
        self._seen: Set[int] = set()          # tgids already decided on
        self._asked: Dict[int, float] = {}    # tgid -> when we asked the tracer for it
        self._waiting: Dict[int, tuple] = {}  # child -> (parent, since): see _act
        self._held: Dict[int, tuple] = {}     # alert mode: tgid -> (parent, since): see _notice
        self._notices: List[R.Record] = []
        self._lock = threading.Lock()
        self._last_pid = -1
        self._next_full = 0.0
        self._denied_warned = False
        self._kernel_threads = False
        try:
            self._kernel_threads = os.readlink("/proc/self/ns/pid") == _INIT_PIDNS
        except OSError:
            pass
        self._loadavg = os.open("/proc/loadavg", os.O_RDONLY | os.O_CLOEXEC)

    # ---- the thread ------------------------------------------------------------------

    def run(self) -> None:
        try:
            watched = self.tracer.scan_start(self.period)
            while not self.stopping.is_set():
                if not watched:   # no watcher thread: poll from here
                    self.stopping.wait(self.period)
                else:
                    wait = self.period if self._waiting or self._held else min(IDLE_WAIT, max(
                        0.0, self._next_full - time.monotonic()))
                    self.tracer.scan_wait(wait)
                if not self.stopping.is_set():
                    self.scan_once()
        finally:
            os.close(self._loadavg)

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join()
        self.tracer.scan_stop()

    def take(self) -> list:
        """Alert-mode notices since the last call (ATTACH records without facts)."""
        if not self._notices:
            return []
        with self._lock:
            out, self._notices = self._notices, []
        return out

    # ---- one look --------------------------------------------------------------------

    def _last_allocated(self) -> int:
        try:
            return int(os.pread(self._loadavg, 128, 0).split()[-1])
        except (OSError, ValueError, IndexError):
            return -1

    def scan_once(self) -> None:
        now = time.monotonic()
        if self._waiting:
            self._release(now)
        if self._held:
            self._release_held(now)
        if self.counts["requested"] and not self._denied_warned:
            self._check_denied()
        last = self._last_allocated()
        full = now >= self._next_full or last < 0 or self._last_pid < 0
        if not full and last == self._last_pid:
            return
        self.counts["scans"] += 1
        if full or last < self._last_pid or last - self._last_pid > MAX_PROBES:
            self.counts["full scans"] += 1
            self._next_full = now + self.full_period
            try:
                pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
            except OSError:
                pids = []
            self._seen &= set(pids)   # forget the gone, so a reused pid is looked at again
        else:
            pids = range(self._last_pid + 1, last + 1)
        self._last_pid = last
        found = []
        names: Dict[int, str] = {}
        for pid in pids:
            if pid in self.skip or pid in self._seen or self.tracer.knows(pid):
                continue
            self.counts["probes"] += 1
            st = _status(pid)
            if st is None:
                continue   # gone already: ours (short-lived) or foreign, nothing to do
            tgid = st.tgid
            if tgid != pid:
                if tgid in self.skip or tgid in self._seen or self.tracer.knows(tgid):
                    continue
                st = _status(tgid)
                if st is None:
                    continue
            if st.tracer > 0 and os.path.exists(f"/proc/self/task/{st.tracer}"):
                continue   # ours: a workload process
            if self._kernel_threads and (st.kthread or tgid == 2 or st.ppid == 2):
                self._seen.add(tgid)
                continue
            self._seen.add(tgid)
            found.append((tgid, st.ppid))
            names[tgid] = st.name
        if found:
            self._act(_parents_first(found), dict(found), names)

    #: How long a child waits for its parent's ATTACH record before it is asked for anyway
    #: (the parent could not be attached). A parent that is gone releases it at once. On a
    #: loaded machine seizing the parent took over 50 ms, and a child asked for before its
    #: parent was announced started a session of its own (tests/attach/test_exec_live.py).
    PARENT_WAIT = 0.5

    def _ask(self, tgid: int, now: float) -> None:
        self.counts["requested"] += 1
        self._asked[tgid] = now
        if len(self._asked) > 4096:   # only recent requests matter (parents of new children)
            for old in sorted(self._asked, key=self._asked.get)[:2048]:
                del self._asked[old]
        self.tracer.attach(tgid)

    def _check_denied(self) -> None:
        if self.tracer.attach_stats()["denied"]:
            self._denied_warned = True
            self.warn("cannot attach to processes that entered the container from outside "
                      "(PTRACE_SEIZE not permitted: the agent needs the SYS_PTRACE "
                      "capability): they are reported, not traced")

    def _release(self, now: float) -> None:
        for child, (parent, since) in list(self._waiting.items()):
            if self.tracer.announced(parent) or now - since > self.PARENT_WAIT or \
                    not os.path.exists(f"/proc/{parent}"):
                del self._waiting[child]
                self._ask(child, now)

    #: Alert mode: how long a process that is still the runtime's helper (nsenter, runc
    #: init) is held back waiting for its exec before it is reported as it is.
    HELPER_WAIT = 2.0

    def _act(self, found, ppids=None, names=None) -> None:
        ppids = ppids or {}
        if self.mode == "trace":
            now = time.monotonic()
            for tgid in found:
                parent = ppids.get(tgid, 0)
                if (parent in self._asked or parent in self._waiting) and not self.tracer.announced(parent):
                    # Its parent's ATTACH record must go out first, or the child would not
                    # find the session to join: ask for it once that one is out.
                    self._waiting[tgid] = (parent, now)
                    continue
                self._ask(tgid, now)
            return
        self._asked.clear()
        now = time.monotonic()
        ready = []
        for tgid in found:   # parents first
            parent = ppids.get(tgid, 0)
            if (names or {}).get(tgid) in RUNTIME_HELPERS or parent in self._held:
                # Seen between the runtime helper's fork and its exec: a session rooted at
                # the helper starts at that exec, which alert mode never sees. So it is
                # reported once it runs the session's program; its children after it.
                self._held[tgid] = (parent, now)
            else:
                ready.append(tgid)
        self._notice(ready)

    def _release_held(self, now: float) -> None:
        ready = []
        for tgid, (parent, since) in list(self._held.items()):   # parents first
            if parent in self._held:
                continue
            st = _status(tgid)
            if st is None:
                del self._held[tgid]   # gone before its exec: nothing ran in the container
            elif st.name not in RUNTIME_HELPERS or now - since > self.HELPER_WAIT:
                del self._held[tgid]
                ready.append(tgid)
        self._notice(ready)

    def _notice(self, tgids: List[int]) -> None:
        if not tgids:
            return
        now = time.time_ns()
        # Read now: a short-lived process is gone by the time the consumer looks (the
        # empty record of one already gone is counted as such by the state).
        notices = [self.tracer.notice(tgid) or
                   R.Record(R.K_ATTACH, 0, now, 0, tgid, tgid, -1, 0, 0, (0,) * 6, 0, {})
                   for tgid in tgids]
        self.counts["noticed"] += len(notices)
        with self._lock:
            self._notices.extend(notices)


def _parents_first(found) -> List[int]:
    """tgids ordered so that a parent comes before its children (a session's members then
    find the session their parent started)."""
    ppid_of = dict(found)
    depth: Dict[int, int] = {}

    def d(pid: int, hops: int = 0) -> int:
        if pid not in ppid_of or hops > 64:
            return 0
        if pid not in depth:
            depth[pid] = 1 + d(ppid_of[pid], hops + 1)
        return depth[pid]

    return sorted(ppid_of, key=lambda p: (d(p), p))


def attaches_parents_first(batch: list) -> list:
    """The tracer announces each seized process at its first stop, in whatever order they
    stop: a child that a foreign shell forked before we looked can come before its parent.
    Its ATTACH record is its first, so the parent's is moved up to just before it (nothing
    of the parent comes before its own ATTACH either), and the child joins its session."""
    from ..events import facts

    where = {r.tgid: i for i, r in enumerate(batch) if r.kind == R.K_ATTACH and r.ret == 0}
    if len(where) < 2:
        return batch
    ppid = {}
    for tgid, i in where.items():
        pf = facts.proc_facts(batch[i].blobs)
        ppid[tgid] = pf.ppid if pf is not None else 0
    out: list = []
    done: Set[int] = set()

    def put(i: int, depth: int = 0) -> None:
        r = batch[i]
        parent = ppid.get(r.tgid, 0)
        if depth < 64 and parent in where and where[parent] > i and where[parent] not in done:
            put(where[parent], depth + 1)
        done.add(i)
        out.append(r)

    for i, r in enumerate(batch):
        if i in done:
            continue
        if r.kind == R.K_ATTACH and r.tgid in where:
            put(i)
        else:
            done.add(i)
            out.append(r)
    return out
