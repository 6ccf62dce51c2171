"""The Falco condition language: syntax tree, parser, printer and tree queries."""
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
