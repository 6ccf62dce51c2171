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
from typing import Callable, Dict, Optional, Set

from ..events import records as R
from ..events.decode import params_decoder
from ..events.display import syscall_name
from ..events.params import SPECS, param_types
from ..rules.event import Container, Event, Fd, Process
from . import fds, parse_attach, parse_fds, parse_identity, parse_net
from .container import start_ts_of
from .event_params import _ParamList
from .fd_lookup import FdLookup
from .parse_attach import AttachParser
from .parse_process import ProcessParser
from .threads import ThreadTable
from .rates import RATED_SYSCALLS as _RATE_TYPES, Rates
from .users import UserDb
from ..events.flags import AT_FDCWD
from .values import _s32
from ..events import capture_kinds as K

_HAS_EXIT = R.F_HAS_EXIT
_SLOT_FD = K.SLOT_FD
_new_event = object.__new__
_new_list = list.__new__
_PROC_PARAM_EVENTS = frozenset({"execve", "execveat", "clone", "clone3", "fork", "vfork",
                                "capset"})


class StateTracker(ThreadTable, FdLookup, ProcessParser, AttachParser):
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
        self._exec_facts: Dict[int, tuple] = {}            # tgid -> facts read at its exec stop
        self._cur_fds: Dict[int, int] = {}                 # fd number -> arg index with origin blobs
        self._cur_blobs: dict = {}
        #: /proc reads on the event path, by reason: only a fallback for what the tracer
        #: could not capture (processes that existed before the agent, old captures).
        self.proc_reads: Dict[str, int] = {}
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
        if kind == R.K_ATTACH:
            return self._attach(record)
        if kind == R.K_DROP:
            self._sweep()
        return None

    def _specs(self, name: str) -> Dict[str, object]:
        specs = self._param_specs.get(name)
        if specs is None:
            specs = self._param_specs[name] = param_types(name)
        return specs

    def _kind_of(self, arch: int, nr: int) -> tuple:
        """Everything the hot path needs about a syscall number, computed once."""
        name = syscall_name(arch, nr)
        info = fds.EVENT_INFO.get(name)
        spec = SPECS.get(name)
        kind = (name, self._handlers.get(name), info[0] if info else None,
                info[1] if info else None, name in _PROC_PARAM_EVENTS, self._specs(name),
                spec.success_event if spec is not None else None, params_decoder(name))
        self._kinds[(arch, nr)] = kind
        return kind

    def _event(self, etype: str, ts: int, tid: int, proc: Optional[Process], res, values: dict,
               specs: Dict[str, object], fd: Optional[Fd], category: Optional[str]) -> Event:
        self._num += 1
        data = values.get("data")
        # The param list, made without a call to its __init__ (what it holds set directly).
        params = _new_list(_ParamList)
        params._src = (values, specs)
        params._one = None
        params._seen = (self, proc, tid)
        # Event(...) sets every field one keyword at a time. The fields left at their
        # defaults are read from the class (a dataclass keeps them there), so only what
        # differs is stored, in one order every time (the stores stay specialised).
        ev = _new_event(Event)
        ev.type = etype
        ev.ts = ts
        ev.num = self._num
        ev.tid = tid
        ev.res = res
        ev.params = params
        ev.proc = proc
        ev.fd = fd
        ev.category = category
        ev.buffer = data if isinstance(data, bytes) else None
        ev.prev_ts = self._prev_ts
        ev.hostname = self.hostname
        ev.start_ts = self.start_ns
        ev.rawarg = values.get      # Event.rawarg, answered by the values themselves
        ev.argtext = params.text    # Event.argtext, remembering the pure texts
        self._prev_ts = ts
        if etype in _RATE_TYPES:
            self.rates.observe(ev)   # windowed counts (state/rates.py) for wa.rate.* fields
        return ev

    def _syscall(self, r) -> Event:
        kind = self._kinds.get((r.arch, r.nr)) or self._kind_of(r.arch, r.nr)
        name, handler, category, fdref, wants_proc_params, specs, success_event, decode = kind
        ret = r.ret if r.flags & _HAS_EXIT else None
        tid = r.tid
        if self._exec_moved and tid in self._exec_moved and name.startswith("exec"):
            tid = self._exec_moved.pop(tid)   # exec from a thread: it now has the leader's tid
        proc = self.threads.get(tid) or self._thread(tid, r.tgid)
        blobs = r.blobs
        self._cur_blobs = blobs
        self._cur_fds = {_s32(r.args[k - _SLOT_FD]): k - _SLOT_FD
                         for k in blobs if _SLOT_FD <= k < _SLOT_FD + 6} \
            if blobs and max(blobs) >= _SLOT_FD else {}
        # proc_params come below, from the state as this event leaves it
        values = decode(r.args, ret, blobs, self, tid)
        fd = handler(self, proc, tid, r, values, ret) if handler is not None else None
        if fd is None and fdref is not None:
            fd = self._event_fd(proc, tid, name, fdref, values, ret)
        if wants_proc_params:
            self.fill_proc_params(values, tid, name, ret)
        if ret is None:
            ts, res = r.ts_enter, None
        else:
            ts = r.ts_exit or r.ts_enter
            res = values.get("res", ret)
            if not isinstance(res, int):
                res = ret
        etype = success_event if success_event and ret == 0 else name
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
        return Fd(num, typechar=fds.GUESSED_TYPECHAR.get(name, "o"), name="")



# ---- per-syscall state changes: handler(tracker, proc, tid, record, values, ret) -> event fd ----
_HANDLERS: Dict[str, Callable] = {
    "execve": parse_attach._h_exec, "execveat": parse_attach._h_exec,
    "open": parse_fds._h_open, "openat": parse_fds._h_open, "openat2": parse_fds._h_open, "creat": parse_fds._h_open,
    "open_by_handle_at": lambda t, p, tid, r, v, ret: (t._fd(p, tid, ret) if ret is not None and ret >= 0 else None),
    "close": parse_fds._h_close, "close_range": parse_fds._h_close_range,
    "dup": parse_fds._h_dup, "dup2": parse_fds._h_dup, "dup3": parse_fds._h_dup, "fcntl": parse_fds._h_fcntl,
    "pipe": parse_fds._h_pipe, "pipe2": parse_fds._h_pipe, "socketpair": parse_net._h_socketpair, "socket": parse_net._h_socket,
    "connect": parse_net._h_connect, "accept": parse_net._h_accept, "accept4": parse_net._h_accept, "bind": parse_net._h_bind,
    "listen": parse_net._h_listen, "sendto": parse_net._h_send, "sendmsg": parse_net._h_send,
    "recvfrom": parse_net._h_recv, "recvmsg": parse_net._h_recv, "memfd_create": parse_fds._h_memfd,
    "chdir": parse_identity._h_chdir, "fchdir": parse_identity._h_fchdir,
    "setuid": parse_identity._h_setuid, "setreuid": parse_identity._h_setuid, "setresuid": parse_identity._h_setuid,
    "setgid": parse_identity._h_setuid, "setregid": parse_identity._h_setuid, "setresgid": parse_identity._h_setuid,
    "capset": parse_identity._h_capset, "unshare": parse_identity._h_userns, "setns": parse_identity._h_userns, "setsid": parse_identity._h_setsid,
    "setpgid": parse_identity._h_setpgid,
    "prctl": parse_identity._h_prctl,
}
_HANDLERS.update({name: parse_fds._h_anon for name in fds.ANON_TYPES})

