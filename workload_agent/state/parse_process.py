"""Process events: clone, exec (the new image from the facts read at the exec stop),
exit; and the params only process state knows (execve's and clone's)."""
from __future__ import annotations

import os
from typing import Optional

from ..events import capture_kinds as K, facts
from ..events import records as R
from ..events.decode import (FsPath)
from ..events.display import syscall_name
from ..events.flags import CLONE_LINUX
from ..events.params import P, SPECS
from ..rules.event import Event, Process
from . import drift, procfs
from .process_tree import apply_facts, apply_stat, apply_status, fork_child
from .threads import REAPER_IF_NEEDED
from .values import _s32, _split

_CLONE_FILES = CLONE_LINUX.get("CLONE_FILES", 0x400)
_CLONE_PARENT = CLONE_LINUX.get("CLONE_PARENT", 0x8000)
_CLONE_NEWPID = CLONE_LINUX.get("CLONE_NEWPID", 0x20000000)
_AT_EMPTY_PATH = 0x1000
_PTRACE_EVENT_VFORK = 2
_MACHINE = os.uname().machine
_EXECVE_FLAG_BITS = (("is_exe_writable", 1), ("is_exe_upper_layer", 2),
                     ("is_exe_from_memfd", 4), ("is_exe_lower_layer", 8))
#: procexit's params (Falco's layout; not a syscall, so not in events.params).
_PROCEXIT = (P("status", "ERRNO", ("none",)), P("ret", "ERRNO", ("none",)),
             P("sig", "SIGTYPE", ("none",)), P("core", "UINT8", ("none",)),
             P("reaper_tid", "PID", ("none",)))
_PROCEXIT_SPECS = {p.name: p for p in _PROCEXIT}


_CGROUPS_PARAM: dict = {}


def _cgroups_param(cgroups) -> bytes:
    """execve/clone's cgroups param; the same few lists are inherited by every process."""
    key = tuple(cgroups)
    text = _CGROUPS_PARAM.get(key)
    if text is None:
        if len(_CGROUPS_PARAM) >= 256:
            _CGROUPS_PARAM.clear()
        text = _CGROUPS_PARAM[key] = b"".join(f"{s}={path}".encode() + b"\0" for s, path in cgroups)
    return text


# execve's params that only process state knows, all filled by exec_params (below).
_EXEC_STATE_PARAMS = ("tid", "pid", "ptid", "cwd", "fdlimit", "cgroups", "uid", "gid", "tty",
                      "vpgid", "pgid", "loginuid", "cap_inheritable", "cap_permitted",
                      "cap_effective", "flags", "exe_ino", "exe_ino_ctime", "exe_ino_mtime",
                      "trusted_exepath")


def _state_filled(name: str) -> bool:
    """Whether every layout of ``name`` has each of _EXEC_STATE_PARAMS with no source of
    its own (so the decoder leaves them None and exec_params may set them all)."""
    spec = SPECS.get(name)
    if spec is None:
        return False
    for layout in (spec.params, spec.success_params):
        if layout is None:
            continue
        ctx = {p.name for p in layout if p.src[0] == "ctx"}
        names = {p.name for p in layout}
        # proc_params' other exec keys must not be in it: the general merge would fill them.
        if not ctx.issuperset(_EXEC_STATE_PARAMS) or "comm" not in names \
                or names & {"vtid", "vpid", "pidns_init_start_ts"}:
            return False
    return True


_EXEC_FAST = frozenset(n for n in ("execve", "execveat") if _state_filled(n))


class ProcessParser:
    """Mixed into StateTracker."""

    def fill_proc_params(self, values: dict, tid, name: str, ret) -> None:
        """Set the params only process state knows (proc_params) where the decoder left
        them None, from the state as this event leaves it."""
        if name in _EXEC_FAST:
            p = self.threads.get(tid)
            if p is None:
                return
            # One update: the keys are there already (the decoder set them to None), so
            # Falco's order stays; every one of them had no other source.
            user, group = p.user, p.group
            flags = 0
            for attr, bit in _EXECVE_FLAG_BITS:
                if getattr(p, attr):
                    flags |= bit
            values.update(
                tid=tid, pid=p.pid, ptid=p.parent.pid if p.parent else 0, cwd=p.cwd,
                fdlimit=p.fdlimit, cgroups=_cgroups_param(p.cgroups),
                uid=user.uid if user else None, gid=group.gid if group else None, tty=p.tty,
                vpgid=p.vpgid, pgid=p.pgid, loginuid=p.loginuid,
                cap_inheritable=p.cap_inheritable, cap_permitted=p.cap_permitted,
                cap_effective=p.cap_effective, flags=flags, exe_ino=p.exe_ino,
                exe_ino_ctime=p.exe_ino_ctime, exe_ino_mtime=p.exe_ino_mtime,
                trusted_exepath=FsPath(p.exepath) if p.exepath else None)
            if values["comm"] is None:
                values["comm"] = p.name
            return
        for k, v in (self.proc_params(tid, name, ret) or {}).items():
            if k in values and values[k] is None:
                values[k] = v

    def proc_params(self, tid, name, ret) -> Optional[dict]:
        """The params only process state knows (execve/clone/capset), from current state."""
        p = self.threads.get(tid)
        if p is None:
            return None
        if name in ("execve", "execveat", "clone", "clone3", "fork", "vfork"):
            out = {
                "tid": tid, "pid": p.pid, "ptid": p.parent.pid if p.parent else 0,
                "cwd": p.cwd, "fdlimit": p.fdlimit, "comm": p.name,
                "cgroups": _cgroups_param(p.cgroups),
                "uid": p.user.uid if p.user else None, "gid": p.group.gid if p.group else None,
                "tty": p.tty, "vpgid": p.vpgid, "pgid": p.pgid, "loginuid": p.loginuid,
                "cap_inheritable": p.cap_inheritable, "cap_permitted": p.cap_permitted,
                "cap_effective": p.cap_effective, "vtid": p.vtid, "vpid": p.vpid,
                "pidns_init_start_ts": p.pidns_init_start_ts,
            }
            if name.startswith("exec"):
                flags = 0
                for attr, bit in _EXECVE_FLAG_BITS:
                    if getattr(p, attr):
                        flags |= bit
                out.update(flags=flags, exe_ino=p.exe_ino, exe_ino_ctime=p.exe_ino_ctime,
                           exe_ino_mtime=p.exe_ino_mtime,
                           trusted_exepath=FsPath(p.exepath) if p.exepath else None)
            else:
                out.update(exe=p.exe, args=b"".join(a.encode("utf-8", "surrogateescape") + b"\0"
                                                    for a in p.args))
            return out
        if name == "capset":
            return {"cap_inheritable": p.cap_inheritable, "cap_permitted": p.cap_permitted,
                    "cap_effective": p.cap_effective}
        if name == "open_by_handle_at" and ret is not None and ret >= 0:
            entry = p.fds.get(ret)
            return {"path": FsPath(entry.name)} if entry is not None and entry.name else None
        return None


    def _clone(self, r) -> Optional[Event]:
        parent_proc = self._thread(r.tid, r.tgid)
        child = r.extra
        flags = r.args[0]
        if parent_proc is None:
            return None
        if r.flags & R.F_THREAD:
            self.threads[child] = parent_proc
            tids = self.tids.setdefault(parent_proc.pid, set())
            tids.add(child)
            parent_proc.nthreads = len(tids)
            return None
        p = fork_child(parent_proc, child, r.ts_enter, share_fds=bool(flags & _CLONE_FILES))
        if flags & _CLONE_PARENT and parent_proc.parent is not None:
            p.parent = parent_proc.parent
        if flags & _CLONE_NEWPID:
            p.vpid = p.vtid = 1
        elif p.vpid is None:
            self.count_proc_read("clone vpid")
            status = procfs.read_status(child)
            vpid = procfs.status_ids(status, "NSpid")
            if vpid:
                p.vpid = p.vtid = vpid[-1]
        self.procs[child] = p
        self.threads[child] = p
        self.tids[child] = {child}
        # The child's side of the clone (res 0): Falco has one; glibc's fork() is a clone.
        etype = "vfork" if r.nr == _PTRACE_EVENT_VFORK and _MACHINE == "x86_64" else "clone"
        if self.wanted is not None and etype not in self.wanted:
            return None
        values = {"res": 0}
        values.update(self.proc_params(child, etype, 0) or {})
        from ..events.flags import clone_flags_to_ppm
        values["flags"] = clone_flags_to_ppm(flags)
        return self._event(etype, r.ts_enter, child, p, 0, values, self._specs(etype), None,
                           "process")

    def _exec_record(self, r) -> None:
        former = r.extra
        p = self._thread(r.tid, r.tgid)
        if p is None:
            return
        pf = facts.proc_facts(r.blobs)
        if pf is not None:
            # Applied with the execve event that follows (its argv, env and comm).
            self._exec_facts[p.pid] = (pf, facts.link_text(r.blobs, K.SLOT_EXE),
                                       facts.link_text(r.blobs, K.SLOT_CWD),
                                       facts.script_facts(r.blobs))
        if former != r.tid:
            self._exec_moved[former] = r.tid
        # Every other thread is gone (de_thread); the leader carries on.
        for tid in self.tids.get(p.pid, ()):
            if tid != p.pid:
                self.threads.pop(tid, None)
        self.tids[p.pid] = {p.pid}
        self.threads[p.pid] = p
        p.nthreads = 1

    def _exit(self, r) -> Optional[Event]:
        tid = r.tid
        p = self.threads.get(tid)
        st = r.extra & 0xFFFF   # a wait status; the record field is wider
        if os.WIFEXITED(st):
            code, sig = os.WEXITSTATUS(st), 0
        elif os.WIFSIGNALED(st):
            code, sig = 0, os.WTERMSIG(st)
        else:
            code, sig = 0, 0
        core = 1 if os.WIFSIGNALED(st) and os.WCOREDUMP(st) else 0
        last = p is not None and (tid == p.pid or self.tids.get(p.pid, {tid}) <= {tid})
        if p is not None:
            # The reaper is looked for only if a child needs it (most exits have none).
            self._after = lambda: self._remove_thread(p, tid, last, REAPER_IF_NEEDED if last else None)
        if self.wanted is not None and "procexit" not in self.wanted:
            return None
        reaper = self._reaper(p) if last else None
        values = {"status": st, "ret": code, "sig": sig, "core": core,
                  "reaper_tid": reaper.pid if reaper is not None else 0}
        return self._event("procexit", r.ts_enter, tid, p, None, values, _PROCEXIT_SPECS, None,
                           "process")


    def exec_image(self, p: Process, tid: int, r, values) -> None:
        """The new image after a successful execve/execveat."""
        old_fds = p.fds
        filename = values.get("filename")
        path = str(filename) if filename is not None else None
        memfd = False
        dirfd = None
        if r.nr is not None and syscall_name(r.arch, r.nr) == "execveat":
            dirfd = _s32(r.args[0])
            empty = r.blobs.get(1) is None or not r.blobs[1].data.split(b"\0", 1)[0]
            if empty and r.args[4] & _AT_EMPTY_PATH and dirfd >= 0:
                entry = old_fds.get(dirfd)
                memfd = entry is not None and entry.type == "memfd"
                path = "/proc/%d/fd/%d" % (p.pid, dirfd)
                values["comm"] = str(dirfd)    # the kernel names it /dev/fd/N
        stat_path = path
        via_fd = None
        if path is not None:
            stat_path, via_fd = drift.proc_path(path, p.pid)
            if via_fd is not None:
                entry = old_fds.get(via_fd)
                memfd = memfd or (entry is not None and entry.type == "memfd")
        exe = values.get("exe")
        args = values.get("args")
        env = values.get("env")
        p.exe = exe if isinstance(exe, str) else p.exe
        p.args = _split(args) if isinstance(args, bytes) else []
        if isinstance(env, bytes):
            p.env = _split(env)
        comm = values.get("comm")
        if isinstance(comm, str):
            p.name = comm[:15]
        captured = self._exec_facts.pop(p.pid, None)
        if captured is not None:
            pf, exe_link, cwd_link, script = captured
            apply_facts(p, pf, self.users)
            exepath = procfs.exe_path(exe_link)
            if cwd_link is not None:
                p.cwd = cwd_link.rstrip("/") + "/"
            file_facts = script or pf.exe
            facts = drift.facts_of(file_facts, self.start_ns, p.user.uid if p.user else None)
        else:
            # No facts from the stop (a capture made before they existed): read /proc now.
            self.count_proc_read("exec")
            st = procfs.read_stat(p.pid)
            link = None
            if st is not None and st.comm == p.name:
                apply_stat(p, st)
                apply_status(p, procfs.read_status(p.pid), self.users)
                link = procfs.readlink(f"/proc/{p.pid}/exe")
            exepath = procfs.exe_path(link)
            if exepath is None and path is not None and not memfd:
                exepath = drift.kernel_exe_path(stat_path) if path.startswith("/") else path
            facts = drift.exe_facts(stat_path, self.start_ns, p.user.uid if p.user else None)
        memfd = memfd or drift.is_memfd_path(exepath)
        if memfd and (exepath is None or not exepath.startswith("memfd:")):
            entry = old_fds.get(dirfd if dirfd is not None else via_fd if via_fd is not None else -1)
            exepath = "memfd:" + (entry.name if entry is not None and entry.name else "")
        p.exepath = exepath
        p.exe_ino, p.exe_ino_ctime, p.exe_ino_mtime = facts.ino, facts.ctime, facts.mtime
        p.is_exe_writable = facts.writable
        p.is_exe_from_memfd = memfd
        p.is_exe_upper_layer = False if memfd else bool(facts.upper)
        # In a container an executable present since start is an image (lower) layer file;
        # outside one Falco sees no overlayfs and sets neither flag.
        in_container = self.container.id != "host"
        p.is_exe_lower_layer = (in_container and not memfd and facts.upper is False)
        # CLOEXEC fds are gone (a table shared with a vfork parent is copied first).
        for fd in old_fds.values():
            if getattr(fd, "cloexec", False):
                p.fds = {n: fd for n, fd in old_fds.items() if not getattr(fd, "cloexec", False)}
                break
        self._link_leaders(p)




def _h_exec(t, p, tid, r, values, ret):
    if ret == 0:
        t.exec_image(p, tid, r, values)
    return None




HANDLERS = {"execve": _h_exec, "execveat": _h_exec}
