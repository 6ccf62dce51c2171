"""Tracer records -> Falco events carrying full process/fd/user/container state.

The order is libsinsp's: the record's state change is applied first, then the
event is built (so on a successful execve proc.* is the new image, on open the
new fd is in the table); failed calls change nothing and are events too. What
must outlive the evaluation (the fd a close removes, the thread a procexit
removes) is removed at the start of the next ``process`` call: the caller
evaluates (and formats) each event before handing the tracker the next record.
"""
from __future__ import annotations

import os
import socket as _socket
import time
from typing import Callable, Dict, List, Optional, Set

from ..events import records as R
from ..events.decode import (FsPath, decode_params, normalize_path, render_param,
                             resolve_relative)
from ..events.display import syscall_name
from ..events.flags import AT_FDCWD, CLONE_LINUX, F_DUPFD, F_DUPFD_CLOEXEC
from ..events.params import P, event_type, param_types
from ..events.sockaddr import AF_INET, AF_INET6, AF_UNIX, SockAddr, SockTuple
from ..rules.event import Container, Event, Fd, Param, Process
from . import drift, fds as F, procfs
from .container import start_ts_of
from .process_tree import apply_stat, apply_status, fork_child, seed
from .rates import Rates
from .sockets import socket_names
from .users import UserDb

_CLONE_FILES = CLONE_LINUX.get("CLONE_FILES", 0x400)
_CLONE_PARENT = CLONE_LINUX.get("CLONE_PARENT", 0x8000)
_CLONE_NEWPID = CLONE_LINUX.get("CLONE_NEWPID", 0x20000000)
_CLONE_NEWUSER = CLONE_LINUX.get("CLONE_NEWUSER", 0x10000000)
_AT_EMPTY_PATH = 0x1000
_F_SETFD = 2
_FD_CLOEXEC = 1
_MFD_CLOEXEC = 1
_CLOSE_RANGE_CLOEXEC = 4
_PR_SET_CHILD_SUBREAPER = 36
_EINPROGRESS = 115
_CAP_ALL = (1 << 41) - 1
_PTRACE_EVENT_VFORK = 2
_NO_UID = (-1, 0xFFFFFFFF)
_MACHINE = os.uname().machine
_HAS_EXIT = R.F_HAS_EXIT
_PROC_PARAM_EVENTS = frozenset({"execve", "execveat", "clone", "clone3", "fork", "vfork",
                                "capset"})

#: procexit's params (Falco's layout; not a syscall, so not in events.params).
_PROCEXIT = (P("status", "ERRNO", ("none",)), P("ret", "ERRNO", ("none",)),
             P("sig", "SIGTYPE", ("none",)), P("core", "UINT8", ("none",)),
             P("reaper_tid", "PID", ("none",)))
_PROCEXIT_SPECS = {p.name: p for p in _PROCEXIT}
_EXECVE_FLAG_BITS = (("is_exe_writable", 1), ("is_exe_upper_layer", 2),
                     ("is_exe_from_memfd", 4), ("is_exe_lower_layer", 8))


class _LazyParam(Param):
    """A param whose text is rendered only if a rule or output reads it."""

    def __init__(self, spec, value, resolver) -> None:  # noqa: D107 - no dataclass init
        self.name = spec.name
        self.raw = value
        self._spec = spec
        self._resolver = resolver
        self._text = None

    def _render(self):
        if self._text is None:
            self._text = render_param(self._spec, self.raw, self._resolver)
        return self._text

    @property
    def plain(self):  # type: ignore[override]
        return self._render()[0]

    @property
    def resolved(self):  # type: ignore[override]
        return self._render()[1]


class _ParamList(list):
    """Event.params, built on first use: most events are dropped by the rules' event-type
    index without any param being read, and building them is a third of an event's cost."""
    __slots__ = ("_src",)

    def __init__(self, values: dict, specs: dict, resolver: "_Resolver") -> None:
        super().__init__()
        self._src = (values, specs, resolver)

    def _fill(self) -> None:
        src = self._src
        if src is not None:
            self._src = None
            values, specs, resolver = src
            list.extend(self, [_LazyParam(specs.get(k) or _generic_spec(k, v), v, resolver)
                               for k, v in values.items()])

    def __iter__(self):
        self._fill()
        return list.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return list.__len__(self)

    def __getitem__(self, i):
        self._fill()
        return list.__getitem__(self, i)

    def __repr__(self) -> str:
        self._fill()
        return list.__repr__(self)

    def __eq__(self, other) -> bool:
        self._fill()
        return list.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


def _generic_spec(pname: str, value):
    """A param the table does not describe (ours, e.g. procexit's): typed by its value."""
    return P(pname, "BYTEBUF" if isinstance(value, bytes) else
             "INT64" if isinstance(value, int) else "CHARBUF", ("none",))


class _Resolver:
    """Names for resolved param forms, seen from the event's process."""
    __slots__ = ("t", "proc", "tid")

    def __init__(self, tracker: "StateTracker", proc: Optional[Process], tid: int) -> None:
        self.t = tracker
        self.proc = proc
        self.tid = tid

    def fd_name(self, fd: int) -> str:
        if self.proc is None:
            return ""
        return F.event_fd_text(self.proc.fds.get(fd))

    def comm(self, pid: int) -> str:
        p = self.t.threads.get(pid)
        return (p.name or "") if p is not None else ""

    def user_name(self, uid: int) -> str:
        return self.t.users.user(uid).name or "<NA>"

    def group_name(self, gid: int) -> str:
        return self.t.users.group(gid).name or "<NA>"


class StateTracker:
    """Keeps libsinsp-like state from tracer records; ``process`` returns Falco events.

    ``users``: a UserDb, or a directory holding passwd and group (default /etc).
    ``start_ns``: the agent's start (epoch ns); executables changed later are drift.

    It is also the ``ctx`` of events.decode.decode_params (cwd, fd_path,
    sock_local, sock_peer, proc_params).
    """

    def __init__(self, container: Container, *, agent_pid: Optional[int] = None,
                 users=None, start_ns: Optional[int] = None) -> None:
        self.container = container
        self.agent_pid = os.getpid() if agent_pid is None else agent_pid
        if users is None or isinstance(users, str):
            # a directory holding passwd and group (default: the container's /etc)
            etc = users or "/etc"
            users = UserDb(os.path.join(etc, "passwd"), os.path.join(etc, "group"))
        self.users = users
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        self.hostname = _socket.gethostname()
        self.threads: Dict[int, Process] = {}     # tid -> its process
        self.procs: Dict[int, Process] = {}       # tgid -> process
        self.tids: Dict[int, Set[int]] = {}       # tgid -> live tids
        self.subreapers: Set[int] = set()
        self._num = 0
        self._prev_ts: Optional[int] = None
        self._after: Optional[Callable[[], None]] = None   # removal deferred past evaluation
        self._changed: Optional[Fd] = None                 # fd whose name_changed to reset
        self._exec_moved: Dict[int, int] = {}              # former tid -> leader (exec from thread)
        self._defer_proc_params = False
        self._param_specs: Dict[str, Dict[str, object]] = {}
        self._kinds: Dict[tuple, tuple] = {}
        #: Event types to build events for (e.g. the ruleset's); None: all. Records of
        #: other types still update the state but return None, which saves building them.
        self.wanted: Optional[frozenset] = None
        self._local_ips = {"127.0.0.1", "::1"}
        self._handlers = _HANDLERS
        self.rates = Rates()
        # Every traced process shares the agent's pid namespace, whose init is pid 1.
        self._pidns_start = container.start_ts or start_ts_of(1)
        self._seed(self.agent_pid, with_fds=False)

    # ---- process lookup ----------------------------------------------------------------

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

    # ---- the decode context ------------------------------------------------------------

    def cwd(self, tid) -> Optional[str]:
        p = self.threads.get(tid)
        return None if p is None else p.cwd

    def _fd(self, p: Process, tid: int, num: int) -> Optional[Fd]:
        """The table entry, else (inherited or untraced) from /proc/TID/fd/NUM."""
        fd = p.fds.get(num)
        if fd is None and num >= 0:
            link = procfs.readlink(f"/proc/{tid}/fd/{num}")
            if link is not None:
                fd = F.fd_from_link(num, link)
                if link.startswith("socket:"):
                    self._resolve_socket(p, fd)
                p.fds[num] = fd
        return fd

    def _resolve_socket(self, p: Process, fd: Fd) -> None:
        local, peer = socket_names(p.pid, fd.num)
        end = local or peer
        if end is None:
            return
        if end.family == AF_UNIX:
            fd.type, fd.typechar = "unix", "u"
            F.set_unix(fd, None, (peer.path if peer else None) or local.path if local else "")
            return
        fd.type = "ipv4" if end.family == AF_INET else "ipv6"
        fd.typechar = F.TYPECHAR[fd.type]
        fd.sotype = "tcp"
        if local is not None and peer is not None and peer.is_ip and peer.port:
            F.set_tuple(fd, local.ip, local.port or 0, peer.ip, peer.port or 0, server=False,
                        client_is_local=True)
        elif local is not None and local.is_ip:
            F.set_bound(fd, local.ip, local.port or 0)
        fd.name_changed = False

    def fd_path(self, tid, fd) -> Optional[str]:
        p = self.threads.get(tid)
        if p is None:
            return None
        entry = self._fd(p, tid, fd)
        if entry is None or entry.type not in ("file", "directory"):
            return None
        return entry.name

    def _sock_end(self, tid, fd, which: int) -> Optional[SockAddr]:
        p = self.threads.get(tid)
        if p is None:
            return None
        entry = p.fds.get(fd)
        cached = getattr(entry, "_ends", None) if entry is not None else None
        if cached is None:
            cached = socket_names(p.pid, fd)
            if entry is not None:
                entry._ends = cached
        return cached[which]

    def sock_local(self, tid, fd) -> Optional[SockAddr]:
        return self._sock_end(tid, fd, 0)

    def sock_peer(self, tid, fd) -> Optional[SockAddr]:
        return self._sock_end(tid, fd, 1)

    def proc_params(self, tid, name, ret) -> Optional[dict]:
        """The params only process state knows (execve/clone/capset), from current state."""
        if self._defer_proc_params:
            return None
        p = self.threads.get(tid)
        if p is None:
            return None
        if name in ("execve", "execveat", "clone", "clone3", "fork", "vfork"):
            out = {
                "tid": tid, "pid": p.pid, "ptid": p.parent.pid if p.parent else 0,
                "cwd": p.cwd, "fdlimit": p.fdlimit, "comm": p.name,
                "cgroups": b"".join(f"{s}={path}".encode() + b"\0" for s, path in p.cgroups),
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

    # ---- records -----------------------------------------------------------------------

    def process(self, record) -> Optional[Event]:
        """The Falco event for one record (None for records that are state only)."""
        if self._after is not None:
            self._after()
            self._after = None
        if self._changed is not None:
            self._changed.name_changed = False
            self._changed = None
        kind = record.kind
        if kind == R.K_SYSCALL:
            return self._syscall(record)
        if kind == R.K_CLONE:
            return self._clone(record)
        if kind == R.K_EXEC:
            self._exec_record(record)
            return None
        if kind == R.K_EXIT:
            return self._exit(record)
        if kind == R.K_DROP:
            self._sweep()
        return None

    def _sweep(self) -> None:
        """After dropped records some exits went unseen: forget processes that are gone."""
        for pid, p in list(self.procs.items()):
            if not os.path.exists(f"/proc/{pid}"):
                self._remove_thread(p, pid, True, self._reaper(p))

    def _specs(self, name: str) -> Dict[str, object]:
        specs = self._param_specs.get(name)
        if specs is None:
            specs = self._param_specs[name] = param_types(name)
        return specs

    def _kind_of(self, arch: int, nr: int) -> tuple:
        """Everything the hot path needs about a syscall number, computed once."""
        name = syscall_name(arch, nr)
        info = F.EVENT_INFO.get(name)
        kind = (name, self._handlers.get(name), info[0] if info else None,
                info[1] if info else None, name in _PROC_PARAM_EVENTS, self._specs(name))
        self._kinds[(arch, nr)] = kind
        return kind

    def _event(self, etype: str, ts: int, tid: int, proc: Optional[Process], res, values: dict,
               specs: Dict[str, object], fd: Optional[Fd], category: Optional[str]) -> Event:
        self._num += 1
        params = _ParamList(values, specs, _Resolver(self, proc, tid))
        data = values.get("data")
        ev = Event(type=etype, ts=ts, num=self._num, tid=tid, res=res, params=params, proc=proc,
                   fd=fd, hostname=self.hostname, category=category,
                   buffer=data if isinstance(data, bytes) else None, start_ts=self.start_ns,
                   prev_ts=self._prev_ts)
        self._prev_ts = ts
        self.rates.observe(ev)   # windowed counts (state/rates.py) for wa.rate.* fields
        return ev

    def _syscall(self, r) -> Event:
        kind = self._kinds.get((r.arch, r.nr)) or self._kind_of(r.arch, r.nr)
        name, handler, category, fdref, wants_proc_params, specs = kind
        ret = r.ret if r.flags & _HAS_EXIT else None
        tid = r.tid
        if self._exec_moved and tid in self._exec_moved and name.startswith("exec"):
            tid = self._exec_moved.pop(tid)   # exec from a thread: it now has the leader's tid
        proc = self.threads.get(tid) or self._thread(tid, r.tgid)
        self._defer_proc_params = True
        try:
            values = decode_params(name, r.args, ret, r.blobs, self, tid=tid)
        finally:
            self._defer_proc_params = False
        fd = handler(self, proc, tid, r, values, ret) if handler is not None else None
        if fd is None and fdref is not None:
            fd = self._event_fd(proc, tid, name, fdref, values, ret)
        if wants_proc_params:
            for k, v in (self.proc_params(tid, name, ret) or {}).items():
                if k in values and values[k] is None:
                    values[k] = v
        if ret is None:
            ts, res = r.ts_enter, None
        else:
            ts = r.ts_exit or r.ts_enter
            res = values.get("res", ret)
            if not isinstance(res, int):
                res = ret
        etype = event_type(name, ret)
        if self.wanted is not None and etype not in self.wanted:
            return None
        return self._event(etype, ts, tid, proc, res, values, specs, fd, category)

    def _event_fd(self, p: Process, tid: int, name: str, ref: str, values, ret) -> Optional[Fd]:
        """The fd the event's fd.* fields describe when no state change produced it (§1.10)."""
        if ref == "ret":
            num = ret if ret is not None else -1
        elif ref == "dup":
            num = ret if ret is not None and ret >= 0 else values.get("oldfd")
        else:
            num = values.get(ref)
        if not isinstance(num, int):
            return None
        if num == AT_FDCWD:
            return Fd(AT_FDCWD, typechar="o", name="")
        entry = self._fd(p, tid, num) if num >= 0 else None
        if entry is not None:
            return entry
        return Fd(num, typechar=F.GUESSED_TYPECHAR.get(name, "o"), name="")

    # ---- process events ------------------------------------------------------------------

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
        reaper = self._reaper(p) if last else None
        if p is not None:
            self._after = lambda: self._remove_thread(p, tid, last, reaper)
        if self.wanted is not None and "procexit" not in self.wanted:
            return None
        values = {"status": st, "ret": code, "sig": sig, "core": core,
                  "reaper_tid": reaper.pid if reaper is not None else 0}
        return self._event("procexit", r.ts_enter, tid, p, None, values, _PROCEXIT_SPECS, None,
                           "process")

    def _reaper(self, p: Process) -> Optional[Process]:
        for a in p.ancestors():
            if a.pid in self.subreapers:
                return a
        for a in p.ancestors():
            if a.vpid == 1:
                return a
        return self.procs.get(1)

    def _remove_thread(self, p: Process, tid: int, last: bool, reaper: Optional[Process]) -> None:
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
        if self.procs.get(p.pid) is p:
            del self.procs[p.pid]
        for q in self.procs.values():
            if q.parent is p:
                q.parent = reaper

    # ---- execve --------------------------------------------------------------------------

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
        # Facts the record does not carry, from /proc while it still shows this image.
        st = procfs.read_stat(p.pid)
        link = None
        if st is not None and st.comm == p.name:
            apply_stat(p, st)
            apply_status(p, procfs.read_status(p.pid), self.users)
            link = procfs.readlink(f"/proc/{p.pid}/exe")
        exepath = procfs.exe_path(link)
        if exepath is None and path is not None and not memfd:
            exepath = drift.kernel_exe_path(stat_path) if path.startswith("/") else path
        memfd = memfd or drift.is_memfd_path(exepath)
        if memfd and (exepath is None or not exepath.startswith("memfd:")):
            entry = old_fds.get(dirfd if dirfd is not None else via_fd if via_fd is not None else -1)
            exepath = "memfd:" + (entry.name if entry is not None and entry.name else "")
        p.exepath = exepath
        facts = drift.exe_facts(stat_path, self.start_ns, p.user.uid if p.user else None)
        p.exe_ino, p.exe_ino_ctime, p.exe_ino_mtime = facts.ino, facts.ctime, facts.mtime
        p.is_exe_writable = facts.writable
        p.is_exe_from_memfd = memfd
        p.is_exe_upper_layer = False if memfd else bool(facts.upper)
        # In a container an executable present since start is an image (lower) layer file;
        # outside one Falco sees no overlayfs and sets neither flag.
        in_container = self.container.id != "host"
        p.is_exe_lower_layer = (in_container and not memfd and facts.upper is False)
        # CLOEXEC fds are gone (a table shared with a vfork parent is copied first).
        if any(getattr(fd, "cloexec", False) for fd in old_fds.values()):
            p.fds = {n: fd for n, fd in old_fds.items() if not getattr(fd, "cloexec", False)}
        self._link_leaders(p)


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def _split(data: bytes) -> List[str]:
    items = data.split(b"\0")
    if items and items[-1] == b"":
        items.pop()
    return [i.decode("utf-8", "surrogateescape") for i in items]


# ---- per-syscall state changes: handler(tracker, proc, tid, record, values, ret) -> event fd ----

def _ok(ret) -> bool:
    return ret is not None and ret >= 0


def _h_exec(t: StateTracker, p, tid, r, values, ret):
    if ret == 0:
        t.exec_image(p, tid, r, values)
    return None


def _h_open(t: StateTracker, p, tid, r, values, ret):
    name = values.get("name") if "name" in values else values.get("path")
    path = str(name) if name is not None else None
    raw = name.raw if isinstance(name, FsPath) else path
    flags = values.get("flags") or 0
    if _ok(ret):
        fd = F.file_fd(ret, path, raw, flags if isinstance(flags, int) else 0)
        fd.name_changed = True
        t._changed = fd
        p.fds[ret] = fd
        return fd
    ename = syscall_name(r.arch, r.nr)
    failed = Fd(-1, typechar=F.GUESSED_TYPECHAR.get(ename, "o"),
                name=normalize_path(path) if path and path.startswith("/") else (path or ""),
                nameraw=raw)
    return failed


def _h_close(t: StateTracker, p, tid, r, values, ret):
    num = values.get("fd")
    if not isinstance(num, int):
        return None
    fd = t._fd(p, tid, num)
    table = p.fds

    def remove():
        if fd is not None and table.get(num) is fd:
            del table[num]
    t._after = remove
    return fd if fd is not None else Fd(num, typechar="o", name="")


def _h_close_range(t: StateTracker, p, tid, r, values, ret):
    if ret != 0:
        return None
    first, last, flags = r.args[0] & 0xFFFFFFFF, r.args[1] & 0xFFFFFFFF, r.args[2]
    for num in [n for n in p.fds if first <= n <= last]:
        if flags & _CLOSE_RANGE_CLOEXEC:
            p.fds[num].cloexec = True
        else:
            del p.fds[num]
    return None


def _h_dup(t: StateTracker, p, tid, r, values, ret):
    old = values.get("oldfd")
    if not isinstance(old, int):
        return None
    src = t._fd(p, tid, old)
    if not _ok(ret):
        return src
    if src is None:
        src = Fd(old, typechar="o", name="")
    flags = values.get("flags") or 0
    new = F.copy_fd(src, ret, cloexec=bool(isinstance(flags, int) and flags & F.PPM_O_CLOEXEC))
    p.fds[ret] = new
    return new


def _h_fcntl(t: StateTracker, p, tid, r, values, ret):
    num, cmd = values.get("fd"), values.get("cmd")
    if not isinstance(num, int):
        return None
    src = t._fd(p, tid, num)
    if _ok(ret) and cmd in (F_DUPFD, F_DUPFD_CLOEXEC) and src is not None:
        p.fds[ret] = F.copy_fd(src, ret, cloexec=cmd == F_DUPFD_CLOEXEC)
    elif ret == 0 and cmd == _F_SETFD and src is not None:
        src.cloexec = bool(r.args[2] & _FD_CLOEXEC)
    return src


def _h_pipe(t: StateTracker, p, tid, r, values, ret):
    if ret != 0:
        return None
    flags = values.get("flags") or 0
    cloexec = bool(isinstance(flags, int) and flags & F.PPM_O_CLOEXEC)
    first = None
    for key in ("fd1", "fd2"):
        num = values.get(key)
        if isinstance(num, int) and num >= 0:
            p.fds[num] = F.new_fd(num, "pipe", "", cloexec)
            first = first or p.fds[num]
    return first


def _h_socketpair(t: StateTracker, p, tid, r, values, ret):
    if ret != 0:
        return None
    first = None
    for key in ("fd1", "fd2"):
        num = values.get(key)
        if isinstance(num, int) and num >= 0:
            p.fds[num] = F.socket_fd(num, r.args[0] & 0xFFFF, r.args[1] & 0xFFFFFFFF, 0)
            first = first or p.fds[num]
    return first


def _h_socket(t: StateTracker, p, tid, r, values, ret):
    if not _ok(ret):
        return None
    fd = F.socket_fd(ret, r.args[0] & 0xFFFF, r.args[1] & 0xFFFFFFFF, r.args[2] & 0xFFFFFFFF)
    p.fds[ret] = fd
    return fd


_SOCKET_TYPES = frozenset({"ipv4", "ipv6", "unix", "netlink", "socket"})


def _socket_entry(t: StateTracker, p, tid, num: int, family: Optional[int]) -> Optional[Fd]:
    fd = t._fd(p, tid, num)
    if fd is not None and fd.type not in _SOCKET_TYPES and family is not None:
        fd = None  # a stale entry (its close was not traced): the event proves it is a socket now
    if fd is None and family is not None:
        fd = F.socket_fd(num, family, _socket.SOCK_STREAM, 0)
        p.fds[num] = fd
    return fd


def _h_connect(t: StateTracker, p, tid, r, values, ret):
    num = values.get("fd")
    if not isinstance(num, int):
        return None
    addr = values.get("addr")
    fd = _socket_entry(t, p, tid, num, addr.family if isinstance(addr, SockAddr) else None)
    if fd is None or not (ret == 0 or ret == -_EINPROGRESS):
        return fd
    tup = values.get("tuple")
    if isinstance(tup, SockTuple):
        if tup.family == AF_UNIX:
            F.set_unix(fd, tup)
        elif tup.family in (AF_INET, AF_INET6):
            if tup.sip and tup.sip not in ("0.0.0.0", "::"):
                t._local_ips.add(tup.sip)
            F.set_tuple(fd, tup.sip, tup.sport or 0, tup.dip, tup.dport or 0, server=False,
                        client_is_local=True)
        if fd.name_changed:
            t._changed = fd
    return fd


def _h_accept(t: StateTracker, p, tid, r, values, ret):
    if not _ok(ret):
        return None
    lnum = _s32(r.args[0])
    listener = t._fd(p, tid, lnum)
    tup = values.get("tuple")
    flags = values.get("flags") or 0
    cloexec = bool(isinstance(flags, int) and flags & F.PPM_O_CLOEXEC)
    family = tup.family if isinstance(tup, SockTuple) else AF_INET
    fd = F.socket_fd(ret, family, _socket.SOCK_STREAM, 0)
    fd.cloexec = cloexec
    if listener is not None and getattr(listener, "sotype", None):
        fd.sotype = listener.sotype
    if isinstance(tup, SockTuple):
        if family == AF_UNIX:
            F.set_unix(fd, tup)
        else:
            sip, sport = tup.dip, tup.dport or 0
            if sip in ("0.0.0.0", "::", None):
                # A wildcard listener: the connection's own local address is the server end.
                local, _ = socket_names(p.pid, ret)
                if local is not None and local.is_ip:
                    sip, sport = local.ip, local.port or sport
            F.set_tuple(fd, tup.sip, tup.sport or 0, sip, sport, server=True,
                        client_is_local=tup.sip in t._local_ips)
    fd.name_changed = True
    t._changed = fd
    p.fds[ret] = fd
    return fd


def _h_bind(t: StateTracker, p, tid, r, values, ret):
    num = values.get("fd")
    if not isinstance(num, int):
        return None
    addr = values.get("addr")
    fd = _socket_entry(t, p, tid, num, addr.family if isinstance(addr, SockAddr) else None)
    if fd is None or ret != 0 or not isinstance(addr, SockAddr):
        return fd
    if addr.is_ip:
        F.set_bound(fd, addr.ip, addr.port or 0)
        if addr.ip not in ("0.0.0.0", "::"):
            t._local_ips.add(addr.ip)
    elif addr.family == AF_UNIX:
        F.set_unix(fd, None, addr.path)
    if fd.name_changed:
        t._changed = fd
    return fd


def _h_listen(t: StateTracker, p, tid, r, values, ret):
    num = values.get("fd")
    fd = t._fd(p, tid, num) if isinstance(num, int) else None
    if fd is not None and ret == 0:
        fd.is_server = True
    return fd


def _h_send(t: StateTracker, p, tid, r, values, ret):
    num = values.get("fd")
    fd = t._fd(p, tid, num) if isinstance(num, int) else None
    if fd is None or not _ok(ret) or fd.type not in ("ipv4", "ipv6"):
        return fd
    tup = values.get("tuple")
    # An unconnected (UDP) socket sending to a new peer takes that peer as its tuple.
    if isinstance(tup, SockTuple) and tup.family in (AF_INET, AF_INET6) and tup.dport \
            and not fd.is_server and (fd.sip, fd.sport) != (tup.dip, tup.dport):
        F.set_tuple(fd, tup.sip, tup.sport or 0, tup.dip, tup.dport, server=False,
                    client_is_local=True)
        if fd.name_changed:
            t._changed = fd
    fd.connected = True
    return fd


def _h_recv(t: StateTracker, p, tid, r, values, ret):
    num = values.get("fd")
    fd = t._fd(p, tid, num) if isinstance(num, int) else None
    if fd is None or not _ok(ret) or fd.type not in ("ipv4", "ipv6") or fd.name:
        return fd
    tup = values.get("tuple")
    if isinstance(tup, SockTuple) and tup.sport:
        # A datagram from a peer to this (bound) socket: the peer is the client.
        F.set_tuple(fd, tup.sip, tup.sport or 0, tup.dip, tup.dport or 0, server=True,
                    client_is_local=tup.sip in t._local_ips)
        t._changed = fd
    return fd


def _h_anon(t: StateTracker, p, tid, r, values, ret):
    name = syscall_name(r.arch, r.nr)
    if not _ok(ret) or (name == "bpf" and ret == 0):   # most bpf commands return 0, not an fd
        return None
    fd = F.new_fd(ret, F.ANON_TYPES[name], "")
    p.fds[ret] = fd
    return fd


def _h_memfd(t: StateTracker, p, tid, r, values, ret):
    if not _ok(ret):
        return None
    name = values.get("name")
    fd = F.new_fd(ret, "memfd", name if isinstance(name, str) else "",
                  bool(r.args[1] & _MFD_CLOEXEC))
    fd.name_changed = True
    t._changed = fd
    p.fds[ret] = fd
    return fd


def _h_chdir(t: StateTracker, p, tid, r, values, ret):
    if ret == 0:
        path = values.get("path")
        if isinstance(path, str):
            if not path.startswith("/"):
                path = resolve_relative(p.cwd, path) or path
            if path.startswith("/"):
                p.cwd = normalize_path(path).rstrip("/") + "/"
    return None


def _h_fchdir(t: StateTracker, p, tid, r, values, ret):
    num = values.get("fd")
    fd = t._fd(p, tid, num) if isinstance(num, int) else None
    if ret == 0:
        if fd is not None and fd.type in ("file", "directory") and fd.name:
            p.cwd = fd.name.rstrip("/") + "/"
        else:
            cwd = procfs.readlink(f"/proc/{tid}/cwd")
            if cwd is not None:
                p.cwd = cwd.rstrip("/") + "/"
    return fd


def _h_setuid(t: StateTracker, p, tid, r, values, ret):
    if ret != 0:
        return None
    name = syscall_name(r.arch, r.nr)
    key = {"setuid": "uid", "setreuid": "euid", "setresuid": "euid",
           "setgid": "gid", "setregid": "egid", "setresgid": "egid"}[name]
    v = values.get(key)
    if isinstance(v, int) and v not in _NO_UID:
        if "uid" in key:
            p.user = t.users.user(v)
        else:
            p.group = t.users.group(v)
    return None


def _h_capset(t: StateTracker, p, tid, r, values, ret):
    if ret == 0:
        status = procfs.read_status(tid)
        if status:
            apply_status(p, status, t.users)
    return None


def _h_userns(t: StateTracker, p, tid, r, values, ret):
    flags = r.args[1] if syscall_name(r.arch, r.nr) == "setns" else r.args[0]
    if ret == 0 and flags & _CLONE_NEWUSER:
        p.cap_inheritable = p.cap_permitted = p.cap_effective = _CAP_ALL
    return None


def _h_setsid(t: StateTracker, p, tid, r, values, ret):
    if _ok(ret):
        p.sid = p.vpgid = ret
        p.pgid = p.pid
        p.tty = 0
        p.session_leader = p.pgid_leader = p.vpgid_leader = p
    return None


def _h_prctl(t: StateTracker, p, tid, r, values, ret):
    if ret == 0 and _s32(r.args[0]) == _PR_SET_CHILD_SUBREAPER:
        if r.args[1]:
            t.subreapers.add(p.pid)
        else:
            t.subreapers.discard(p.pid)
    return None


_HANDLERS: Dict[str, Callable] = {
    "execve": _h_exec, "execveat": _h_exec,
    "open": _h_open, "openat": _h_open, "openat2": _h_open, "creat": _h_open,
    "open_by_handle_at": lambda t, p, tid, r, v, ret: (t._fd(p, tid, ret) if _ok(ret) else None),
    "close": _h_close, "close_range": _h_close_range,
    "dup": _h_dup, "dup2": _h_dup, "dup3": _h_dup, "fcntl": _h_fcntl,
    "pipe": _h_pipe, "pipe2": _h_pipe, "socketpair": _h_socketpair, "socket": _h_socket,
    "connect": _h_connect, "accept": _h_accept, "accept4": _h_accept, "bind": _h_bind,
    "listen": _h_listen, "sendto": _h_send, "sendmsg": _h_send,
    "recvfrom": _h_recv, "recvmsg": _h_recv, "memfd_create": _h_memfd,
    "chdir": _h_chdir, "fchdir": _h_fchdir,
    "setuid": _h_setuid, "setreuid": _h_setuid, "setresuid": _h_setuid,
    "setgid": _h_setuid, "setregid": _h_setuid, "setresgid": _h_setuid,
    "capset": _h_capset, "unshare": _h_userns, "setns": _h_userns, "setsid": _h_setsid,
    "prctl": _h_prctl,
}
_HANDLERS.update({name: _h_anon for name in F.ANON_TYPES})
