"""The plain event-plus-state objects that field extractors read.

The tracer/state layer fills these; the rules engine only reads them. Every
attribute that may be unknown defaults to None, and None means "the field cannot
be extracted" (Falco's NULL: the check is false, output prints <NA>).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple


@dataclass(eq=False)
class User:
    uid: int
    name: Optional[str] = None       # None: not in the passwd db (fields render <NA>/root)
    homedir: Optional[str] = None
    shell: Optional[str] = None


@dataclass(eq=False)
class Group:
    gid: int
    name: Optional[str] = None


@dataclass(eq=False)
class Mount:
    source: str
    dest: str
    mode: str = ""
    rdwr: bool = True
    propagation: str = ""

    def text(self) -> str:
        return f"{self.source}:{self.dest}:{self.mode}:{'true' if self.rdwr else 'false'}:{self.propagation}"


@dataclass(eq=False)
class Container:
    """Container and pod metadata; ``id`` is "host" for host processes."""
    id: str = "host"
    full_id: Optional[str] = None
    name: Optional[str] = None
    type: Optional[str] = None
    image: Optional[str] = None
    image_id: Optional[str] = None
    repository: Optional[str] = None
    tag: Optional[str] = None
    digest: Optional[str] = None
    privileged: Optional[bool] = None
    mounts: Optional[List[Mount]] = None
    start_ts: Optional[int] = None
    ip: Optional[str] = None
    labels: Optional[Dict[str, str]] = None
    host_pid: Optional[bool] = None
    host_network: Optional[bool] = None
    host_ipc: Optional[bool] = None
    k8s_pod_name: Optional[str] = None
    k8s_ns_name: Optional[str] = None
    k8s_pod_uid: Optional[str] = None
    k8s_pod_sandbox_id: Optional[str] = None
    k8s_pod_labels: Optional[Dict[str, str]] = None
    k8s_pod_ip: Optional[str] = None


@dataclass(eq=False)
class Fd:
    """The file descriptor an event refers to (see falco-fields.md §1.10)."""
    num: int
    type: Optional[str] = None          # file, directory, ipv4, ipv6, unix, pipe, ...; None: not in table
    typechar: str = "o"
    name: Optional[str] = None
    nameraw: Optional[str] = None
    directory: Optional[str] = None     # None: derived from name/type
    l4proto: Optional[str] = None       # tcp, udp, icmp, raw, or the literal "<NA>"
    cip: Optional[str] = None
    sip: Optional[str] = None
    cport: Optional[int] = None
    sport: Optional[int] = None
    client_is_local: Optional[bool] = None  # which tuple end is this machine (for l*/r* fields)
    is_server: Optional[bool] = None
    connected: Optional[bool] = None
    name_changed: Optional[bool] = None
    dev: Optional[int] = None
    ino: Optional[int] = None
    is_upper_layer: Optional[bool] = None
    is_lower_layer: Optional[bool] = None

    @property
    def in_table(self) -> bool:
        return self.type is not None


class LazyList(list):
    """A list whose items are built on first use (``_fill``): most events are dropped by
    the rules' event-type index before anything reads their params."""
    __slots__ = ()

    def _fill(self) -> None:
        raise NotImplementedError

    def __iter__(self):
        self._fill()
        return list.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return list.__len__(self)

    def __getitem__(self, i):
        self._fill()
        return list.__getitem__(self, i)

    def __bool__(self) -> bool:
        self._fill()
        return list.__len__(self) > 0

    def __eq__(self, other) -> bool:
        self._fill()
        return list.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._fill()
        return list.__repr__(self)

    def __reduce_ex__(self, protocol):
        self._fill()
        return (list, (list(list.__iter__(self)),))


@dataclass(eq=False)
class Process:
    """A thread and the process view of it that proc.*/thread.*/user.* fields read."""
    pid: int
    tid: Optional[int] = None
    vpid: Optional[int] = None
    vtid: Optional[int] = None
    parent: Optional["Process"] = None
    name: Optional[str] = None           # comm, at most 15 characters
    exe: Optional[str] = None            # argv[0]
    exepath: Optional[str] = None
    args: List[str] = field(default_factory=list)   # argv[1:]
    env: List[str] = field(default_factory=list)    # "K=V" entries
    cwd: Optional[str] = None            # with a trailing "/"
    tty: Optional[int] = None
    sid: Optional[int] = None
    vpgid: Optional[int] = None
    pgid: Optional[int] = None
    loginuid: Optional[int] = None       # -1 when unset
    user: Optional[User] = None
    group: Optional[Group] = None
    loginuser: Optional[User] = None
    cap_inheritable: Optional[int] = None
    cap_permitted: Optional[int] = None
    cap_effective: Optional[int] = None
    start_ts: Optional[int] = None       # epoch ns of the clone
    is_exe_writable: Optional[bool] = None
    is_exe_upper_layer: Optional[bool] = None
    is_exe_lower_layer: Optional[bool] = None
    is_exe_from_memfd: Optional[bool] = None
    exe_ino: Optional[int] = None
    exe_ino_ctime: Optional[int] = None
    exe_ino_mtime: Optional[int] = None
    pidns_init_start_ts: Optional[int] = None
    cgroups: List[Tuple[str, str]] = field(default_factory=list)
    fdlimit: Optional[int] = None
    vmsize: Optional[int] = None
    vmrss: Optional[int] = None
    vmswap: Optional[int] = None
    pfmajor: Optional[int] = None
    pfminor: Optional[int] = None
    nthreads: Optional[int] = None
    fds: Dict[int, Fd] = field(default_factory=dict)
    container: Optional[Container] = None
    session_leader: Optional["Process"] = None
    vpgid_leader: Optional["Process"] = None
    pgid_leader: Optional["Process"] = None
    exec_session: Optional[Any] = None     # attach.sessions.ExecSession, inherited at fork

    def ancestors(self):
        """Parent, grandparent, ... (stops at a loop)."""
        seen = {id(self)}
        p = self.parent
        while p is not None and id(p) not in seen:
            seen.add(id(p))
            yield p
            p = p.parent

    def ancestor(self, level: int) -> Optional["Process"]:
        """0 = self, 1 = parent, ..."""
        p: Optional[Process] = self
        for _ in range(level):
            if p is None:
                return None
            p = p.parent
        return p


@dataclass(eq=False)
class Param:
    """One exit-event parameter's value: plain text, resolved text (flag names, errno
    name, fd <f>/path, absolute path...) when there is one, and the raw value. (Its type
    and source are events.params.ParamSpec.)"""
    name: str
    plain: Optional[str]                 # None: present but not captured (<NA>)
    resolved: Optional[str] = None
    raw: Any = None

    def text(self) -> Optional[str]:
        return self.resolved if self.resolved else self.plain


@dataclass(eq=False)
class Event:
    type: str
    ts: int = 0                          # epoch ns
    num: int = 1
    tid: int = 0
    cpu: int = 0
    dir: str = "<"
    res: Optional[int] = None            # return value; None if the event has none
    params: List[Param] = field(default_factory=list)
    proc: Optional[Process] = None       # None: thread unknown
    fd: Optional[Fd] = None              # None: not an fd event
    hostname: str = ""
    source: str = "syscall"
    category: Optional[str] = None
    is_async: bool = False
    buffer: Optional[bytes] = None       # the `data` param of I/O events
    start_ts: int = 0                    # capture start (evt.reltime)
    prev_ts: Optional[int] = None        # previous event's time (evt.deltatime)
    _by_name: Optional[Dict[str, Param]] = field(default=None, repr=False)

    def param(self, name: str) -> Optional[Param]:
        by_name = self._by_name
        if by_name is None:
            lookup = getattr(self.params, "lookup", None)
            if lookup is not None:   # params built lazily (state.event_params): just this one
                return lookup(name)
            by_name = self._by_name = {p.name: p for p in self.params}
        return by_name.get(name)

    def rawarg(self, name: str):
        """Param ``name``'s raw value, None when the event has no such param (what
        evt.rawarg.NAME and the open flags read). The state tracker's events carry the
        decoded values' own ``dict.get`` under this name instead (one C call)."""
        # self.param(name), without the call (a replayed event's params look names up)
        if self._by_name is None and (lookup := getattr(self.params, "lookup", None)) is not None:
            p = lookup(name)
        else:
            p = self.param(name)
        return None if p is None else p.raw

    def argtext(self, name: str) -> Optional[str]:
        """Param ``name``'s text as evt.arg.NAME reads it: the resolved form, else the
        plain one, "<NA>" when not captured; None when the event has no such param. The
        state tracker's events carry their param list's own (remembering) version."""
        if self._by_name is None and (lookup := getattr(self.params, "lookup", None)) is not None:
            p = lookup(name)
        else:
            p = self.param(name)
        if p is None:
            return None
        text = (p.resolved or p.plain) if type(p) is Param else p.text()   # no call for a plain Param
        return "<NA>" if text is None else text
