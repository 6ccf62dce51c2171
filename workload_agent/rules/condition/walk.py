"""Queries and rewrites over condition trees (macro references, fields, lists)."""
from __future__ import annotations

from typing import Dict, List, Tuple

from .ast import And, Check, Field, ListLit, ListRef, Literal, MacroRef, Node, Not, Or, Transform

NA_VALUE = "<NA>"


def iter_nodes(node: Node):
    """Every node of the tree, depth first, parents before children."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, (And, Or)):
            stack.extend(reversed(n.children))
        elif isinstance(n, Not):
            stack.append(n.child)
        elif isinstance(n, Check):
            if n.rhs is not None:
                stack.append(n.rhs)
            stack.append(n.lhs)
        elif isinstance(n, Transform):
            stack.extend(reversed(n.args))


def macro_refs(node: Node) -> List[Tuple[str, int]]:
    """(name, offset) of every macro reference, in text order."""
    return [(n.name, n.offset) for n in iter_nodes(node) if isinstance(n, MacroRef)]


def list_refs(node: Node) -> List[Tuple[str, int]]:
    """(name, offset) of every bare identifier used as a list value, in text order."""
    return [(n.name, n.offset) for n in iter_nodes(node) if isinstance(n, ListRef)]


def fields_used(node: Node) -> List[str]:
    """Fields as written (``proc.aname[2]``, ``evt.arg.flags``), first use first."""
    seen: Dict[str, None] = {}
    for n in iter_nodes(node):
        if isinstance(n, Field):
            seen.setdefault(n.text, None)
    return list(seen)


def substitute_macros(node: Node, mapping: Dict[str, Node]) -> Node:
    """Replace each MacroRef whose name is in ``mapping`` by its tree.

    Substituted trees are inserted as they are (not re-substituted); the caller
    resolves macros in definition order, so a macro's own tree is already expanded.
    """
    if isinstance(node, MacroRef):
        return mapping.get(node.name, node)
    if isinstance(node, And):
        return And(tuple(substitute_macros(c, mapping) for c in node.children), node.offset)
    if isinstance(node, Or):
        return Or(tuple(substitute_macros(c, mapping) for c in node.children), node.offset)
    if isinstance(node, Not):
        return Not(substitute_macros(node.child, mapping), node.offset)
    return node


def unsafe_na_checks(node: Node) -> List[Tuple[str, int]]:
    """(field, offset) of checks comparing a field with the literal "<NA>"
    (Falco warns LOAD_UNSAFE_NA_CHECK: such a value may mean "unavailable")."""
    out = []
    for n in iter_nodes(node):
        if isinstance(n, Check) and isinstance(n.lhs, Field):
            rhs = n.rhs
            if (isinstance(rhs, Literal) and rhs.value == NA_VALUE) or \
                    (isinstance(rhs, ListLit) and NA_VALUE in rhs.values):
                out.append((n.lhs.text, n.offset))
    return out
