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


class _ParamList(LazyList):
    """Event.params, built on first use: most events are dropped by the rules' event-type
    index without any param being read, and building them is a third of an event's cost."""
    __slots__ = ("_src", "_one")

    def __init__(self, values: dict, specs: dict, resolver: "_Resolver") -> None:
        super().__init__()
        self._src = (values, specs, resolver)
        self._one = None

    def lookup(self, name: str):
        """One param by name, without building the others (rules read one or two)."""
        src = self._src
        if src is None:
            for p in list.__iter__(self):
                if p.name == name:
                    return p
            return None
        values, specs, resolver = src
        if name not in values:
            return None
        one = self._one
        if one is None:
            one = self._one = {}
        p = one.get(name)
        if p is None:
            v = values[name]
            p = one[name] = _LazyParam(specs.get(name) or _generic_spec(name, v), v, resolver)
        return p

    def _fill(self) -> None:
        src = self._src
        if src is not None:
            self._src = None
            values, specs, resolver = src
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


