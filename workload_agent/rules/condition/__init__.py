"""The Falco condition language: syntax tree, parser, printer and tree queries.

Use from the loader:

- ``parse_condition(text) -> Node``; raises only ``ConditionError`` (``offset`` is a
  0-based index into ``text``). Lists must already be substituted textually; a
  bare identifier left on the right of in/intersects/pmatch parses as ``ListRef``
  (see ``list_refs``), a bare identifier in check position as ``MacroRef``.
- ``macro_refs(tree)`` / ``list_refs(tree)`` -> ``[(name, offset)]`` in text order.
- ``substitute_macros(tree, {name: tree})`` replaces MacroRefs (no recursion into
  the inserted trees: substitute macros in definition order).
- ``print_condition(tree)`` canonical text (parse(print(t)) == t), for `describe`.
- ``fields_used(tree)``, ``unsafe_na_checks(tree)``.
- Compiling and event types: ``workload_agent.rules.compiler`` (compile_condition,
  validate_condition, event_types).
"""
from __future__ import annotations

from .ast import And, Check, Field, ListLit, ListRef, Literal, MacroRef, Node, Not, Or, Transform
from .parser import parse_condition
from .printer import print_condition
from .walk import (fields_used, iter_nodes, list_refs, macro_refs, substitute_macros,
                   unsafe_na_checks)

__all__ = [
    "And", "Check", "Field", "ListLit", "ListRef", "Literal", "MacroRef", "Node", "Not", "Or",
    "Transform", "parse_condition", "print_condition", "fields_used", "iter_nodes", "list_refs",
    "macro_refs", "substitute_macros", "unsafe_na_checks",
]
