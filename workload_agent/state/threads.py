"""The thread table: processes by tgid, threads by tid, their registration, the parents
they get when theirs exit, and the /proc fallback for a process the tracer never showed us
starting (counted: the normal path applies what the records carry)."""
from __future__ import annotations

import os
from typing import Optional

from ..rules.event import Process
from .process_tree import fork_child, seed


REAPER_IF_NEEDED = object()


class ThreadTable:
    """Mixed into StateTracker: ``threads``, ``procs``, ``tids``, ``subreapers`` and
    ``proc_reads`` are set up by its __init__."""

    def count_proc_read(self, reason: str) -> None:
        self.proc_reads[reason] = self.proc_reads.get(reason, 0) + 1


    def _register(self, p: Process) -> None:
        if p.pidns_init_start_ts is None:
            p.pidns_init_start_ts = self._pidns_start
        self.procs[p.pid] = p
        self.threads[p.pid] = p
        self.tids.setdefault(p.pid, set()).add(p.pid)
        self._link_leaders(p)

    def _link_leaders(self, p: Process) -> None:
        procs = self.procs
        p.session_leader = procs.get(p.sid) if p.sid is not None else None
        p.pgid_leader = procs.get(p.pgid) if p.pgid is not None else None
        p.vpgid_leader = p.pgid_leader

    def _seed(self, pid: int, with_fds: bool, depth: int = 0) -> Optional[Process]:
        p = seed(pid, self.users, self.container, with_fds)
        if p is None:
            return None
        self._register(p)
        ppid = getattr(p, "ppid", 0)
        if ppid > 0 and depth < 64:
            p.parent = self.procs.get(ppid) or self._seed(ppid, False, depth + 1)
        return p

    def _unseen(self, tgid: int) -> Process:
        """A traced process we never saw start: from /proc, else (already gone) a bare
        one. Everything traced descends from the agent, its parent when unknown."""
        self.count_proc_read("unseen process")
        p = self._seed(tgid, with_fds=True)
        if p is None:
            agent = self.procs.get(self.agent_pid)
            if agent is not None:   # the workload's main process is a fork of the agent
                p = fork_child(agent, tgid, 0, share_fds=False)
                p.fds = {}
            else:
                p = Process(pid=tgid, tid=tgid, container=self.container, nthreads=1)
            self._register(p)
        if p.parent is None and tgid != self.agent_pid:
            p.parent = self.procs.get(self.agent_pid)
        return p

    def _thread(self, tid: int, tgid: int) -> Process:
        p = self.threads.get(tid)
        if p is not None:
            return p
        p = self.procs.get(tgid)
        if p is None:
            p = self._unseen(tgid)
        if tid != p.pid:
            self.threads[tid] = p
            self.tids.setdefault(p.pid, set()).add(tid)
            p.nthreads = len(self.tids[p.pid])
        return p

    def _sweep(self) -> None:
        """After dropped records some exits went unseen: forget processes that are gone."""
        self.count_proc_read("drop sweep")
        for pid, p in list(self.procs.items()):
            if not os.path.exists(f"/proc/{pid}"):
                self._remove_thread(p, pid, True, self._reaper(p))

    def _reaper(self, p: Process) -> Optional[Process]:
        if self.subreapers:   # mostly none: every exit would walk the ancestry for nothing
            for a in p.ancestors():
                if a.pid in self.subreapers:
                    return a
        for a in p.ancestors():
            if a.vpid == 1:
                return a
        return self.procs.get(1)

    def _remove_thread(self, p: Process, tid: int, last: bool, reaper) -> None:
        """``reaper``: the process that adopts p's children, or REAPER_IF_NEEDED: found
        (as _reaper, before p leaves the table) only when p has children."""
        if self.threads.get(tid) is p:
            del self.threads[tid]
        tids = self.tids.get(p.pid)
        if tids is not None:
            tids.discard(tid)
            p.nthreads = len(tids)
        if not last:
            return
        for t in self.tids.pop(p.pid, ()):
            if self.threads.get(t) is p:
                del self.threads[t]
        orphans = [q for q in self.procs.values() if q.parent is p]
        if orphans and reaper is REAPER_IF_NEEDED:
            reaper = self._reaper(p)
        if self.procs.get(p.pid) is p:
            del self.procs[p.pid]
        for q in orphans:
            if q is not p:
                q.parent = reaper

