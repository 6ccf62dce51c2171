"""Recursive-descent parser for Falco conditions (grammar: falco-rules.md)."""
from __future__ import annotations

import re
from typing import List, Optional

from ..errors import ConditionError
from . import lexer as lx
from .ast import And, Check, Field, ListLit, ListRef, Literal, MacroRef, Node, Not, Or, Transform
from .lexer import Scanner

# Python frames per parenthesis level are few, but hostile input could still nest
# deeply; Falco itself stops at a small depth.
MAX_DEPTH = 100

# A modifier word is one only when a list follows: `(` or a list name (not a keyword).
_MODIFIER_AHEAD = re.compile(r"(oneof|anyof|allof)(?:[ \t\b\r\n]*\(|[ \t\b\r\n]+"
                             r"(?!(?:and|or|not)(?![a-zA-Z0-9_]))[a-zA-Z])")
_TRANSFORMER_AHEAD = re.compile(r"(" + "|".join(lx.TRANSFORMERS) + r")\(")
_VAL_AHEAD = re.compile(r"val\(")


def parse_condition(text: str) -> Node:
    """Parse a condition into its syntax tree; raises ConditionError with offset."""
    if not isinstance(text, str):
        raise ConditionError("condition must be a string", -1)
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise ConditionError("condition nested too deeply", -1) from None


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = Scanner(text)
        self.depth = 0

    def error(self, message: str, offset: Optional[int] = None) -> ConditionError:
        return ConditionError(message, self.s.pos if offset is None else offset)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"exceeded maximum nesting depth of {MAX_DEPTH}")

    def parse(self) -> Node:
        s = self.s
        s.blank()
        if s.at_end():
            raise ConditionError("condition is empty", 0)
        node = self.parse_or()
        s.blank()
        if not s.at_end():
            if s.last:
                raise self.error(f"unexpected token after '{s.last}', expecting 'or', 'and'")
            raise self.error("unexpected token, expecting 'or', 'and'")
        return node

    # -- boolean structure -------------------------------------------------
    def parse_or(self) -> Node:
        s = self.s
        s.blank()
        start = s.pos
        children = [self.parse_and()]
        s.blank()
        while s.literal("or"):
            children.append(self._operand_after_keyword("or"))
            s.blank()
        return children[0] if len(children) == 1 else Or(tuple(children), start)

    def parse_and(self) -> Node:
        s = self.s
        s.blank()
        start = s.pos
        children = [self.parse_not()]
        s.blank()
        while s.literal("and"):
            children.append(self._operand_after_keyword("and"))
            s.blank()
        return children[0] if len(children) == 1 else And(tuple(children), start)

    def _operand_after_keyword(self, kw: str) -> Node:
        s = self.s
        # A keyword must be followed by a blank or an opening parenthesis.
        if not s.blank() and s.peek() != "(":
            raise self.error(f"expected blank or '(' after '{kw}'")
        return self.parse_not() if kw == "and" else self.parse_and()

    def parse_not(self) -> Node:
        s = self.s
        s.blank()
        start = s.pos
        negate = False
        while s.not_keyword():
            negate = not negate
        if s.literal("not("):
            negate = not negate
            child = self.parse_group_rest(s.pos - 1)
        else:
            child = self.parse_check()
        return Not(child, start) if negate else child

    def parse_group_rest(self, open_offset: int) -> Node:
        """After '(' : an expression and the closing ')'."""
        self.enter()
        s = self.s
        s.blank()
        if s.peek() == ")":
            raise self.error("expected an expression, found ')'")
        node = self.parse_or()
        s.blank()
        if not s.literal(")"):
            if s.at_end():
                raise self.error(f"expected a ')' token to close the '(' at offset {open_offset}")
            raise self.error("expected a ')' token")
        self.depth -= 1
        return node

    # -- checks ------------------------------------------------------------
    def parse_check(self) -> Node:
        s = self.s
        s.blank()
        start = s.pos
        if s.literal("("):
            return self.parse_group_rest(start)
        if s.field_name() is not None:
            lhs = self.parse_field_rest(s.last, start)
            return self.parse_condition(lhs, start)
        name, _ = s.ahead(_TRANSFORMER_AHEAD)
        if name is not None:
            lhs = self.parse_transformer()
            return self.parse_condition(lhs, start)
        ident = s.identifier()
        if ident is not None:
            if ident in lx.KEYWORDS:
                raise self.error(f"unexpected keyword '{ident}': expected a '(' token, a field check, "
                                 "or an identifier", start)
            return MacroRef(ident, start)
        if s.at_end():
            raise self.error("unexpected end of condition: expected a '(' token, a field check, "
                             "or an identifier")
        raise self.error("expected a '(' token, a field check, or an identifier")

    def parse_field_rest(self, name: str, start: int) -> Field:
        s = self.s
        arg = None
        if s.literal("["):
            arg_at = s.pos
            arg = s.quoted_string()
            if arg is None:
                arg = s.field_arg_bare()
            if arg is None:
                raise self.error("expected a valid field argument: a quoted string or a bare string",
                                 arg_at)
            if not s.literal("]"):
                raise self.error("expected a ']' token")
        return Field(name, arg, start)

    def parse_transformer(self) -> Transform:
        """At ``name(`` of a transformer or val."""
        self.enter()
        s = self.s
        start = s.pos
        name = s.identifier()
        s.literal("(")
        args: List[Node] = []
        if name == lx.VAL:
            s.blank()
            at = s.pos
            if s.field_name() is None:
                raise self.error("expected a field within 'val' transformer", at)
            args.append(self.parse_field_rest(s.last, at))
        else:
            shape = lx.TRANSFORMERS[name]
            while True:
                s.blank()
                args.append(self.parse_transformer_arg(name, shape, len(args)))
                s.blank()
                if not s.literal(","):
                    break
            self.check_arity(name, shape, args, start)
        s.blank()
        if not s.literal(")"):
            raise self.error(f"expected a ')' token closing the '{name}' transformer")
        self.depth -= 1
        return Transform(name, tuple(args), start)

    def parse_transformer_arg(self, name: str, shape, index: int) -> Node:
        s = self.s
        at = s.pos
        if index < len(shape) and shape[index] == "s":
            value = s.quoted_string()
            if value is None:
                value = s.bare_string()
            if value is None:
                raise self.error(f"expected a string argument in '{name}'", at)
            return Literal(value, at)
        if s.field_name() is not None:
            return self.parse_field_rest(s.last, at)
        if s.ahead(_TRANSFORMER_AHEAD)[0] is not None:
            return self.parse_transformer()
        literal_ok = shape == ("x+",) or (index < len(shape) and shape[index] == "s")
        if literal_ok:
            value = s.quoted_string()
            if value is None:
                value = s.bare_string()
            if value is not None:
                return Literal(value, at)
            raise self.error(f"expected a field, a transformer or a string in '{name}'", at)
        raise self.error(f"expected a field or a nested transformer: one of "
                         f"{', '.join(repr(t) for t in lx.TRANSFORMERS)}", at)

    def check_arity(self, name: str, shape, args: List[Node], start: int) -> None:
        if shape == ("x+",):
            if len(args) < 2:
                raise self.error(f"'{name}' takes at least two arguments", start)
            return
        if len(args) != len(shape):
            raise self.error(f"'{name}' takes {len(shape)} argument{'s' if len(shape) > 1 else ''}, "
                             f"got {len(args)}", start)
        for arg, kind in zip(args, shape):
            if kind == "s" and not isinstance(arg, Literal):
                raise self.error(f"argument of '{name}' must be a string", arg.offset)
            if kind == "x" and isinstance(arg, Literal):
                raise self.error(f"argument of '{name}' must be a field or transformer", arg.offset)

    def parse_condition(self, lhs: Node, start: int) -> Check:
        s = self.s
        s.blank()
        op_at = s.pos
        for op in lx.UNARY_OPS:
            if s.literal(op):
                return Check(lhs, op, None, None, start)
        for op in lx.NUM_OPS:
            if s.literal(op):
                return Check(lhs, op, self.parse_num_value(), None, start)
        for op in lx.STR_SYMBOL_OPS:
            if s.literal(op):
                return self.parse_str_rhs(lhs, op, start)
        for op in lx.STR_WORD_OPS:
            if s.word(op):
                return self.parse_str_rhs(lhs, op, start)
        for op in lx.LIST_OPS:
            if s.literal(op):
                return Check(lhs, op, self.parse_list_value(), None, start)
        raise self.error("expected a valid check operator: one of "
                         + ", ".join(f"'{o}'" for o in lx.ALL_OPS), op_at)

    def parse_str_rhs(self, lhs: Node, op: str, start: int) -> Check:
        s = self.s
        s.blank()
        m = _MODIFIER_AHEAD.match(s.text, s.pos)
        if m is not None:
            s.identifier()
            return Check(lhs, op, self.parse_list_value(), m.group(1), start)
        return Check(lhs, op, self.parse_str_value(), None, start)

    def rhs_transformer(self) -> Optional[Transform]:
        s = self.s
        if s.ahead(_VAL_AHEAD)[0] is not None or s.ahead(_TRANSFORMER_AHEAD)[0] is not None:
            return self.parse_transformer()
        return None

    def parse_num_value(self) -> Node:
        s = self.s
        s.blank()
        at = s.pos
        t = self.rhs_transformer()
        if t is not None:
            return t
        if s.number() is not None:
            return Literal(s.last, at)
        raise self.error("expected a number value or a field with a valid transformer", at)

    def parse_str_value(self) -> Node:
        s = self.s
        s.blank()
        at = s.pos
        t = self.rhs_transformer()
        if t is not None:
            return t
        value = s.quoted_string()
        if value is None:
            value = s.bare_string()
        if value is None:
            raise self.error("expected a string value or a field with a valid transformer", at)
        return Literal(value, at)

    def parse_list_value(self) -> Node:
        s = self.s
        s.blank()
        at = s.pos
        if s.literal("("):
            values: List[str] = []
            offsets: List[int] = []
            s.blank()
            if not s.literal(")"):
                while True:
                    s.blank()
                    item_at = s.pos
                    value = s.quoted_string()
                    if value is None:
                        value = s.bare_string()
                    if value is None:
                        raise self.error("expected a string value in list", item_at)
                    values.append(value)
                    offsets.append(item_at)
                    s.blank()
                    if s.literal(")"):
                        break
                    if not s.literal(","):
                        raise self.error("expected ',' or ')' in list")
            return ListLit(tuple(values), at, tuple(offsets))
        t = self.rhs_transformer()
        if t is not None:
            return t
        ident = s.identifier()
        if ident is not None:
            if ident in lx.KEYWORDS:
                raise self.error(f"unexpected keyword '{ident}': expected a list", at)
            return ListRef(ident, at)
        raise self.error("expected a list, an identifier, or a field with a valid transformer", at)

