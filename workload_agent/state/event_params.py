"""Event params built lazily: most events are dropped by the rules' event-type index
before any param is read, and the text forms are rendered only when printed."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..events.decode import (render_param)
from ..events.params import P
from ..rules.event import LazyList, Param, Process
from . import fds

if TYPE_CHECKING:
    from .tracker import StateTracker


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

    def text(self):
        plain, resolved = self._text or self._render()
        return resolved if resolved else plain


# Param types whose text is a function of the (int) value alone: no resolver (fd, pid,
# user and group names) and no time zone. Their texts are remembered per spec and value.
_PURE_TEXT = frozenset({"ERRNO", "FLAGS8", "FLAGS16", "FLAGS32", "ENUMFLAGS8", "ENUMFLAGS16",
                        "ENUMFLAGS32", "MODE", "SIGTYPE", "DYN", "INT8", "INT16", "INT32", "INT64",
                        "UINT8", "UINT16", "UINT32", "UINT64"})
_TEXTS: dict = {}   # id(spec) -> {value: text}; the specs are the tables' own, kept for good
_MISSING = object()


class _ParamList(LazyList):
    """Event.params, built on first use: most events are dropped by the rules' event-type
    index without any param being read, and building them is a third of an event's cost.
    ``seen``: (tracker, proc, tid), what the resolved forms are named from (a _Resolver,
    made when a param is first built)."""
    __slots__ = ("_src", "_one", "_seen")

    def __init__(self, values: dict, specs: dict, seen: tuple) -> None:
        super().__init__()
        self._src = (values, specs)
        self._one = None
        self._seen = seen

    def _resolver(self) -> "_Resolver":
        seen = self._seen
        if type(seen) is tuple:
            seen = self._seen = _Resolver(*seen)
        return seen

    def lookup(self, name: str):
        """One param by name, without building the others (rules read one or two)."""
        src = self._src
        if src is None:
            for p in list.__iter__(self):
                if p.name == name:
                    return p
            return None
        values, specs = src
        if name not in values:
            return None
        one = self._one
        if one is None:
            one = self._one = {}
        p = one.get(name)
        if p is None:
            v = values[name]
            p = one[name] = _LazyParam(specs.get(name) or _generic_spec(name, v), v, self._resolver())
        return p

    def text(self, name: str):
        """Event.argtext: what evt.arg.NAME reads (the resolved text, else the plain one,
        "<NA>" when not captured; None without that param), remembered per value for the
        types whose text depends on nothing else."""
        src = self._src
        if src is not None:
            values, specs = src
            v = values.get(name, _MISSING)
            if v is _MISSING:
                return None
            spec = specs.get(name)
            if type(v) is int and spec is not None and spec.type in _PURE_TEXT:
                memo = _TEXTS.get(id(spec))
                if memo is None:
                    memo = _TEXTS[id(spec)] = {}
                text = memo.get(v)
                if text is None:
                    plain, resolved = render_param(spec, v)
                    text = resolved if resolved else plain
                    if len(memo) < 4096:
                        memo[v] = text
                return text
        p = self.lookup(name)
        if p is None:
            return None
        text = p.text()
        return "<NA>" if text is None else text

    def _fill(self) -> None:
        src = self._src
        if src is not None:
            self._src = None
            values, specs = src
            resolver = self._resolver()
            list.extend(self, [_LazyParam(specs.get(k) or _generic_spec(k, v), v, resolver)
                               for k, v in values.items()])


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
        return fds.event_fd_text(self.proc.fds.get(fd))

    def comm(self, pid: int) -> str:
        p = self.t.threads.get(pid)
        return (p.name or "") if p is not None else ""

    def user_name(self, uid: int) -> str:
        return self.t.users.user(uid).name or "<NA>"

    def group_name(self, gid: int) -> str:
        return self.t.users.group(gid).name or "<NA>"


