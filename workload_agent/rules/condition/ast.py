"""Condition syntax tree.

Nodes are immutable and compare by structure only: ``offset`` (the 0-based index
of the node in the condition text it came from) is excluded from equality so a
tree re-parsed from its printed form equals the original.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple, Union


class Node:
    __slots__ = ()

    def __getstate__(self):
        # The remembered hash (_cached_hash) stays in this process: str hashes differ
        # from one process to the next.
        state = self.__dict__
        if "_hash" in state:
            state = {k: v for k, v in state.items() if k != "_hash"}
        return state


def _cached_hash(cls):
    """Hash a tree once: a dataclass's own hash walks the whole subtree every time, and a
    rule group counts every sub-condition of its rules (rules/group.py)."""
    plain = cls.__hash__

    def __hash__(self):
        d = self.__dict__
        h = d.get("_hash")
        if h is None:
            h = d["_hash"] = plain(self)
        return h
    cls.__hash__ = __hash__
    return cls


@dataclass(frozen=True)
class And(Node):
    children: Tuple[Node, ...]
    offset: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class Or(Node):
    children: Tuple[Node, ...]
    offset: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class Not(Node):
    child: Node
    offset: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class MacroRef(Node):
    """A bare identifier where a check is expected: a macro reference."""
    name: str
    offset: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class Field(Node):
    """A field as written: ``name`` is the dotted name (``evt.arg.flags`` keeps its
    dotted suffix, the registry splits it), ``arg`` the bracket argument if any."""
    name: str
    arg: Optional[str] = None
    offset: int = field(default=-1, compare=False)

    @property
    def text(self) -> str:
        return self.name if self.arg is None else f"{self.name}[{self.arg}]"


@dataclass(frozen=True)
class Literal(Node):
    """A string or number value, unescaped; numbers keep their source spelling."""
    value: str
    offset: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class Transform(Node):
    """``name(args...)``: a transformer (tolower, toupper, b64, basename, len, join,
    concat, getopt) or ``val`` (use another field's value as the right operand).
    Arguments are Field, Transform or (for join/concat/getopt) Literal nodes."""
    name: str
    args: Tuple[Node, ...]
    offset: int = field(default=-1, compare=False)


@dataclass(frozen=True)
class ListLit(Node):
    values: Tuple[str, ...]
    offset: int = field(default=-1, compare=False)
    item_offsets: Tuple[int, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ListRef(Node):
    """A bare identifier on the right of a list operator: an unsubstituted list name."""
    name: str
    offset: int = field(default=-1, compare=False)


Operand = Union[Field, Transform]
Value = Union[Literal, ListLit, ListRef, Transform, None]


@dataclass(frozen=True)
class Check(Node):
    """``lhs op rhs``; ``rhs`` is None for ``exists``. ``modifier`` is one of
    oneof/anyof/allof when the right side is a list given to a string operator."""
    lhs: Node
    op: str
    rhs: Optional[Node] = None
    modifier: Optional[str] = None
    offset: int = field(default=-1, compare=False)


for _cls in (And, Or, Not, MacroRef, Field, Literal, Transform, ListLit, ListRef, Check):
    _cached_hash(_cls)
del _cls
