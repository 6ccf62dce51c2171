"""Inline test events: a mapping of Falco fields to values, turned into an Event.

``{evt.type: openat, fd.name: /etc/shadow, proc.name: cat, proc.pname: bash}`` builds
an openat event of a `cat` process whose parent is `bash`, with /etc/shadow open on
its fd. Each settable field has one setter below; after building, every given field
is read back through the real field registry, so a value the event does not yield
(a setter bug, a derived field set inconsistently) is an error, not a silent pass.

Unnamed parts get plain defaults: process pid 1000 run by root (uid 0), on the host
(container.id = host), parent pid 999; an fd given by name is a file on fd 3.
"""
from __future__ import annotations

import re
import shlex
from typing import Any, Callable, Dict, List, Optional

from ..rules.event import Container, Event, Fd, Group, Param, Process, User

DEFAULT_PID = 1000
_INDEXED = re.compile(r"^([a-z0-9_.]+)\[([0-9]+)\]$")
_TYPECHAR = {"file": "f", "directory": "d", "ipv4": "4", "ipv6": "6", "unix": "u", "pipe": "p",
             "event": "e", "signalfd": "s", "eventpoll": "l", "inotify": "i", "timerfd": "t",
             "netlink": "n", "bpf": "b", "userfault": "r", "io_uring": "r", "memfd": "m"}


class InlineEventError(ValueError):
    pass


class _Builder:
    def __init__(self, num: int) -> None:
        self.ev = Event("openat", num=num, ts=1_700_000_000_000_000_000 + num * 1000)
        self.proc: Optional[Process] = None
        self.fd: Optional[Fd] = None
        self.res_given = False
        self.open_bits = 0

    def process(self) -> Process:
        if self.proc is None:
            self.proc = Process(DEFAULT_PID, tid=DEFAULT_PID, vpid=DEFAULT_PID, vtid=DEFAULT_PID,
                                user=User(0, "root"), group=Group(0, "root"), loginuid=-1,
                                container=Container(), cwd="/")
            self.ev.proc = self.proc
            self.ev.tid = DEFAULT_PID
        return self.proc

    def ancestor(self, level: int) -> Process:
        p = self.process()
        for i in range(level):
            if p.parent is None:
                p.parent = Process(p.pid - 1, tid=p.pid - 1, vpid=p.pid - 1, user=p.user,
                                   group=p.group, loginuid=-1, container=p.container, cwd="/")
            p = p.parent
        return p

    def file(self) -> Fd:
        if self.fd is None:
            self.fd = Fd(3, type="file", typechar="f")
            self.ev.fd = self.fd
            self.process().fds[3] = self.fd
        return self.fd


def _text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _int(v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise InlineEventError(f"expected an integer, got {v!r}")
    try:
        return v if isinstance(v, int) else int(v, 0)
    except ValueError:
        raise InlineEventError(f"expected an integer, got {v!r}") from None


def _bool(v) -> bool:
    if isinstance(v, bool):
        return v
    if str(v).lower() in ("true", "false"):
        return str(v).lower() == "true"
    raise InlineEventError(f"expected true or false, got {v!r}")


def _words(v) -> List[str]:
    if isinstance(v, list):
        return [_text(x) for x in v]
    text = _text(v)
    try:
        return shlex.split(text)
    except ValueError as exc:  # shlex says what, never where
        raise InlineEventError(_unsplittable(text) or f"{exc} in {text!r}") from None


def _unsplittable(text: str) -> Optional[str]:
    """Why and where shell-like splitting of text fails (shlex.split's POSIX rules: a
    backslash escapes the next character, also inside double quotes; nothing inside
    single quotes); None when it does not fail that way."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 == n:
                return f"a backslash at character {i + 1} of {text!r} escapes nothing"
            i += 2
        elif c in "'\"":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if c == '"' and text[j] == "\\" else 1
            if j >= n:
                return (f"the quote {c} at character {i + 1} of {text!r} is never closed "
                        f"(give the words as a list to use it literally)")
            i = j + 1
        else:
            i += 1
    return None


def _set_cmdline(p: Process, v) -> None:
    words = _words(v)
    if not words:
        raise InlineEventError("a command line needs at least the program name")
    p.name = words[0][:15] if "/" not in words[0] else words[0].rsplit("/", 1)[1][:15]
    p.exe = words[0]
    p.args = words[1:]


def _proc(attr: str, conv: Callable[[Any], Any] = _text, level: int = 0):
    def set_(b: _Builder, v) -> None:
        setattr(b.ancestor(level), attr, conv(v))
    return set_


def _exe(level: int):
    def set_(b: _Builder, v) -> None:
        p = b.ancestor(level)
        p.exe = p.exepath = _text(v)
        if p.name is None:
            p.name = p.exe.rsplit("/", 1)[-1][:15]
    return set_


def _user(attr: str, conv=_text):
    def set_(b: _Builder, v) -> None:
        setattr(b.process().user, attr, conv(v))
    return set_


def _group(attr: str, conv=_text):
    def set_(b: _Builder, v) -> None:
        setattr(b.process().group, attr, conv(v))
    return set_


def _container(attr: str, conv=_text):
    def set_(b: _Builder, v) -> None:
        p = b.process()
        c = p.container
        if c.id == "host" and attr != "id":
            c.id = "0123456789ab"  # metadata implies a container
        setattr(c, attr, conv(v))
    return set_


def _image(b: _Builder, v) -> None:
    _container("image")(b, v)
    ref = _text(v)
    repo, sep, tag = ref.rpartition(":")
    if sep and "/" not in tag:
        b.process().container.repository, b.process().container.tag = repo, tag
    else:
        b.process().container.repository = ref


def _fd(attr: str, conv=_text):
    def set_(b: _Builder, v) -> None:
        setattr(b.file(), attr, conv(v))
    return set_


def _fd_num(b: _Builder, v) -> None:
    fd = b.file()
    fds = b.process().fds
    fds.pop(fd.num, None)
    fd.num = _int(v)
    fds[fd.num] = fd


def _fd_type(b: _Builder, v) -> None:
    fd = b.file()
    fd.type = _text(v)
    fd.typechar = _TYPECHAR.get(fd.type, "o")


def _fd_name(b: _Builder, v) -> None:
    fd = b.file()
    fd.name = fd.nameraw = _text(v)


def _res(b: _Builder, v) -> None:
    b.ev.res = _int(v)
    b.res_given = True


def _open_bit(bit: int):
    def set_(b: _Builder, v) -> None:
        if _bool(v):
            b.open_bits |= bit
    return set_


def _env(p_level: int = 0):
    def set_(b: _Builder, v) -> None:
        p = b.ancestor(p_level)
        if isinstance(v, dict):
            p.env = [f"{k}={_text(x)}" for k, x in v.items()]
        else:
            p.env = _words(v)
    return set_


# field as written -> setter(builder, value). Ancestor fields take [N] (see _indexed).
SETTERS: Dict[str, Callable[[_Builder, Any], None]] = {
    "evt.type": lambda b, v: setattr(b.ev, "type", _text(v)),
    "evt.dir": lambda b, v: setattr(b.ev, "dir", _text(v)),
    "evt.num": lambda b, v: setattr(b.ev, "num", _int(v)),
    "evt.rawtime": lambda b, v: setattr(b.ev, "ts", _int(v)),
    "evt.res": _res,
    "evt.rawres": _res,
    "evt.is_open_read": _open_bit(1),
    "evt.is_open_write": _open_bit(2),
    "proc.name": _proc("name"),
    "proc.exe": _proc("exe"),
    "proc.exepath": _exe(0),
    "proc.args": lambda b, v: setattr(b.process(), "args", _words(v)),
    "proc.cmdline": lambda b, v: _set_cmdline(b.process(), v),
    "proc.pid": _proc("pid", _int),
    "proc.vpid": _proc("vpid", _int),
    "thread.tid": lambda b, v: (setattr(b.process(), "tid", _int(v)), setattr(b.ev, "tid", _int(v))),
    "proc.cwd": _proc("cwd"),
    "proc.tty": _proc("tty", _int),
    "proc.sid": _proc("sid", _int),
    "proc.env": _env(),
    "proc.is_exe_writable": _proc("is_exe_writable", _bool),
    "proc.is_exe_upper_layer": _proc("is_exe_upper_layer", _bool),
    "proc.is_exe_from_memfd": _proc("is_exe_from_memfd", _bool),
    "proc.pname": _proc("name", level=1),
    "proc.pexe": _proc("exe", level=1),
    "proc.pexepath": _exe(1),
    "proc.pcmdline": lambda b, v: _set_cmdline(b.ancestor(1), v),
    "proc.ppid": _proc("pid", _int, level=1),
    "user.uid": _user("uid", _int),
    "user.name": _user("name"),
    "user.homedir": _user("homedir"),
    "user.shell": _user("shell"),
    "user.loginuid": _proc("loginuid", _int),
    "group.gid": _group("gid", _int),
    "group.name": _group("name"),
    "container.id": _container("id"),
    "container.name": _container("name"),
    "container.image": _image,
    "container.image.repository": _container("repository"),
    "container.image.tag": _container("tag"),
    "container.privileged": _container("privileged", _bool),
    "fd.num": _fd_num,
    "fd.name": _fd_name,
    "fd.type": _fd_type,
    "fd.typechar": _fd("typechar"),
    "fd.directory": _fd("directory"),
    "fd.l4proto": _fd("l4proto"),
    "fd.sip": _fd("sip"),
    "fd.cip": _fd("cip"),
    "fd.sport": _fd("sport", _int),
    "fd.cport": _fd("cport", _int),
}
# proc.aname[N] etc.: the Nth ancestor (1 = parent).
ANCESTOR_SETTERS = {"proc.aname": "name", "proc.aexe": "exe", "proc.apid": "pid", "proc.aexepath": "exepath"}


def _setter(key: str):
    m = _INDEXED.match(key)
    if m and m.group(1) in ANCESTOR_SETTERS:
        level = int(m.group(2))
        attr = ANCESTOR_SETTERS[m.group(1)]
        if attr == "exepath":
            return _exe(level)
        return _proc(attr, _int if attr == "pid" else _text, level=level)
    if key.startswith("evt.arg."):
        return lambda b, v: None  # params are added after the other fields (see _params)
    return SETTERS.get(key)


def settable_fields() -> List[str]:
    return sorted(SETTERS) + [f"{k}[N]" for k in ANCESTOR_SETTERS] + ["evt.arg.NAME"]


def _param(ev_type: str, name: str, v) -> Param:
    """A param as the tracker would have made it: flags tables give names <-> bits."""
    from ..events.flags import TABLES, render_flags
    from ..events.params import SPECS

    spec = SPECS.get(ev_type)
    table_name = next((p.table for p in spec.params if p.name == name), None) if spec else None
    table = TABLES.get(table_name) if table_name else None
    if isinstance(v, bool):
        return Param(name, _text(v), None, v)
    if isinstance(v, int):
        return Param(name, str(v), render_flags(v, table) if table else None, v)
    text = _text(v)
    if table is not None:
        names = dict(table)
        parts = [x.strip() for x in text.split("|") if x.strip()]
        if parts and all(x in names for x in parts):
            bits = 0
            for x in parts:
                bits |= names[x]
            return Param(name, str(bits), render_flags(bits, table), bits)
        raise InlineEventError(f"evt.arg.{name}: {text!r} is not a list of {table_name} names "
                               f"(like {' | '.join(n for n, _ in table[:3])})")
    try:
        raw: Any = int(text, 0)
    except ValueError:
        raw = text
    return Param(name, text, None, raw)


def build_event(fields: Dict[str, Any], num: int = 1) -> Event:
    """The Event the fields describe; InlineEventError naming the field when it cannot be built."""
    if not isinstance(fields, dict):
        raise InlineEventError(f"an inline event is a mapping of fields to values, not {type(fields).__name__}")
    b = _Builder(num)
    for key, value in fields.items():
        key = str(key)
        setter = _setter(key)
        if setter is None:
            raise InlineEventError(f"field {key} cannot be set in an inline event (settable: "
                                   f"{', '.join(settable_fields())})")
        try:
            setter(b, value)
        except InlineEventError as exc:
            raise InlineEventError(f"field {key}: {exc}") from None
    ev = b.ev
    from ..rules.fields import EVENT_TYPES

    if ev.type not in EVENT_TYPES:
        raise InlineEventError(f"field evt.type: unknown event type {ev.type!r}")
    params = [_param(ev.type, k[len("evt.arg."):], v) for k, v in fields.items()
              if str(k).startswith("evt.arg.")]
    if b.open_bits:
        flags = next((p for p in params if p.name == "flags"), None)
        if flags is None:
            params.append(_param(ev.type, "flags", b.open_bits))
        else:
            flags.raw = (flags.raw or 0) | b.open_bits
    ev.params = params
    if b.fd is not None and not b.res_given and _returns_fd(ev.type):
        ev.res = b.fd.num
    elif ev.res is None:
        ev.res = 0
    _check(fields, ev)
    return ev


def _returns_fd(ev_type: str) -> bool:
    from ..events.params import SPECS

    spec = SPECS.get(ev_type)
    return bool(spec and spec.params and spec.params[0].name == "fd" and spec.params[0].src == ("ret",))


def _check(fields: Dict[str, Any], ev: Event) -> None:
    """Every given field must read back as given through the registry."""
    from ..rules.fields import REGISTRY
    from ..rules.fields import types as T

    for key, want in fields.items():
        key = str(key)
        if key.startswith("evt.arg."):
            continue  # given as names or numbers: either is fine
        m = _INDEXED.match(key)
        bound = REGISTRY.bind(m.group(1), m.group(2)) if m else REGISTRY.bind(key, None)
        got = bound.get(ev)
        got_text = "<NA>" if got is None else T.to_text(got)
        want_text = " ".join(_words(want)) if key in ("proc.args", "proc.cmdline", "proc.pcmdline") \
            else _text(want)
        if key in ("proc.env",) or key.startswith("evt.is_open_") and not _bool(want):
            continue
        if got_text != want_text:
            raise InlineEventError(f"field {key}: set to {want_text!r} but the event yields {got_text!r}")
