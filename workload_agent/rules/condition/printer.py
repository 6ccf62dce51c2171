"""Canonical text of a condition tree: parse(print(t)) == t."""
from __future__ import annotations

from . import lexer as lx
from .ast import And, Check, Field, ListLit, ListRef, Literal, MacroRef, Node, Not, Or, Transform


def print_condition(node: Node) -> str:
    return _expr(node)


def _expr(node: Node) -> str:
    if isinstance(node, Or):
        return " or ".join(_wrap(c, (Or,)) for c in node.children)
    if isinstance(node, And):
        return " and ".join(_wrap(c, (And, Or)) for c in node.children)
    if isinstance(node, Not):
        # "not not x" would re-parse as x, so a negated negation keeps its parentheses.
        return "not " + _wrap(node.child, (And, Or, Not))
    if isinstance(node, MacroRef):
        return node.name
    if isinstance(node, Check):
        return _check(node)
    if isinstance(node, (Field, Transform, Literal, ListLit, ListRef)):
        return _operand(node)
    raise TypeError(f"not a condition node: {node!r}")


def _wrap(node: Node, kinds) -> str:
    text = _expr(node)
    return f"({text})" if isinstance(node, kinds) else text


def _check(node: Check) -> str:
    lhs = _operand(node.lhs)
    if node.rhs is None:
        return f"{lhs} {node.op}"
    if node.modifier:
        return f"{lhs} {node.op} {node.modifier} {_operand(node.rhs)}"
    if isinstance(node.rhs, Literal) and node.op in lx.NUM_OPS:
        return f"{lhs} {node.op} {node.rhs.value}"
    return f"{lhs} {node.op} {_operand(node.rhs)}"


def _operand(node: Node) -> str:
    if isinstance(node, Field):
        if node.arg is None:
            return node.name
        arg = node.arg if lx.FIELD_ARG_BARE_RE.match(node.arg) else lx.quote(node.arg)
        return f"{node.name}[{arg}]"
    if isinstance(node, Transform):
        # Literal arguments are always quoted: bare they could read back as fields.
        args = (lx.quote(a.value) if isinstance(a, Literal) else _operand(a) for a in node.args)
        return f"{node.name}({', '.join(args)})"
    if isinstance(node, Literal):
        return string_value(node.value)
    if isinstance(node, ListLit):
        return "(" + ", ".join(string_value(v) for v in node.values) + ")"
    if isinstance(node, ListRef):
        return node.name
    return f"({_expr(node)})"


def string_value(value: str) -> str:
    """A string value bare when that reads back the same, else quoted."""
    if (lx.BARESTR_RE.match(value) and value not in lx.MODIFIERS
            and not any(value.startswith(t + "(") for t in lx.TRANSFORMERS)):
        return value
    return lx.quote(value)
