"""Foreign processes: the ATTACH record of a process the tracer seized (its identity read
at the attach stop) or, in alert mode, one the scanner only noticed (read from /proc,
counted). Either way the process gets its exec session and an execve event stands for
the exec we could not see, so rules on spawned processes judge it like any other."""
from __future__ import annotations

from typing import Optional

from ..attach import sessions
from ..events import capture_kinds as K, facts
from ..events.decode import FsPath
from ..rules.event import Event, Process
from . import drift, procfs
from .process_tree import apply_facts, seed


def _nul_list(blob) -> list:
    if blob is None or blob.unreadable or not blob.data:
        return []
    items = blob.data.split(b"\0")
    if items[-1] == b"":
        items.pop()
    return [i.decode("utf-8", "surrogateescape") for i in items]


def _cgroups(blob) -> list:
    out = []
    if blob is None or blob.unreadable:
        return out
    for line in blob.data.decode("utf-8", "replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for name in (parts[1] or "unified").split(","):
            out.append((name[5:] if name.startswith("name=") else name, parts[2]))
    return out


class AttachParser:
    """Mixed into StateTracker. ``attach_results`` counts what became of each request."""

    def _attach(self, r) -> Optional[Event]:
        counts = self.__dict__.setdefault("attach_results", {})
        if r.ret < 0:
            why = {-1: "denied", -3: "gone", -16: "traced by another tracer"}.get(r.ret, "failed")
            counts[why] = counts.get(why, 0) + 1
            if r.ret not in (-1, -16):
                return None
            # Not ours to trace: still reported, from /proc, as in alert mode.
        tgid = r.tgid
        old = self.procs.get(tgid)
        if old is not None:   # a pid we still held for a process that is gone: reused
            self._remove_thread(old, tgid, True, self._reaper(old))
        p = self._attached_process(r, tgid)
        if p is None:
            counts["gone"] = counts.get("gone", 0) + 1
            return None
        counts["attached"] = counts.get("attached", 0) + 1
        ppid = getattr(p, "ppid", 0)
        parent = self.procs.get(ppid) if ppid and ppid != tgid else None
        p.parent = parent
        started = sessions.on_attach(p, parent)
        self._register(p)
        if r.tid != tgid:
            self._thread(r.tid, tgid)
        return self._spawned_event(p, r.ts_enter, started)

    def _attached_process(self, r, tgid: int) -> Optional[Process]:
        pf = facts.proc_facts(r.blobs)
        if pf is None:
            # Alert mode: nothing was stopped, so /proc now is the best there is.
            self.count_proc_read("foreign process (not attached)")
            p = seed(tgid, self.users, self.container, with_fds=True)
            if p is None:
                return None
            f = drift.exe_facts(f"/proc/{tgid}/exe", self.start_ns, p.user.uid if p.user else None)
        else:
            p = Process(pid=tgid, tid=tgid, container=self.container, name=pf.comm,
                        start_ts=procfs._BOOT_EPOCH_NS + pf.start_ticks * 1_000_000_000 // procfs._CLK_TCK)
            p.ppid = pf.ppid
            argv = _nul_list(r.blobs.get(K.SLOT_CMDLINE))
            p.exe = argv[0] if argv else pf.comm
            p.args = argv[1:]
            p.env = _nul_list(r.blobs.get(K.SLOT_ENVIRON))
            p.exepath = procfs.exe_path(facts.link_text(r.blobs, K.SLOT_EXE))
            cwd = facts.link_text(r.blobs, K.SLOT_CWD)
            p.cwd = None if cwd is None else cwd.rstrip("/") + "/"
            p.cgroups = _cgroups(r.blobs.get(K.SLOT_CGROUP))
            p.nthreads = 1
            apply_facts(p, pf, self.users)
            if p.vpid is None:
                p.vpid = p.vtid = tgid
            f = drift.facts_of(pf.exe, self.start_ns, p.user.uid if p.user else None)
        memfd = drift.is_memfd_path(p.exepath)
        p.exe_ino, p.exe_ino_ctime, p.exe_ino_mtime = f.ino, f.ctime, f.mtime
        p.is_exe_writable = f.writable
        p.is_exe_from_memfd = memfd
        p.is_exe_upper_layer = False if memfd else bool(f.upper)
        p.is_exe_lower_layer = self.container.id != "host" and not memfd and f.upper is False
        return p

    def _spawned_event(self, p: Process, ts: int, started) -> Optional[Event]:
        """The execve we could not see, as libsinsp would have reported it."""
        if started is not None:
            started.start_num = self._num + 1
        if self.wanted is not None and "execve" not in self.wanted:
            return None
        values = {"res": 0, "exe": p.exe, "comm": p.name,
                  "args": b"".join(a.encode("utf-8", "surrogateescape") + b"\0" for a in p.args),
                  "env": b"".join(e.encode("utf-8", "surrogateescape") + b"\0" for e in p.env),
                  "filename": FsPath(p.exepath) if p.exepath else None,
                  "pgft_maj": p.pfmajor, "pgft_min": p.pfminor, "vm_size": p.vmsize,
                  "vm_rss": p.vmrss, "vm_swap": p.vmswap}
        values.update(self.proc_params(p.pid, "execve", 0) or {})
        return self._event("execve", ts, p.pid, p, 0, values, self._specs("execve"), None, "process")


def _h_exec(t, p, tid, r, values, ret):
    """execve's state change, then: the first program ECS Exec's worker runs starts a session."""
    from .parse_process import _h_exec as exec_image

    out = exec_image(t, p, tid, r, values, ret)
    if ret == 0:
        started = sessions.on_exec(p)
        if started is not None:
            started.start_num = t._num + 1   # the execve event built right after this
    return out
