"""Condition text as Falco builds it before parsing, remembering where each character came from.

Falco never parses a rule's condition as written: appends join strings with a
space, exceptions wrap it as `(COND) and not (...)`, and list names are
replaced textually. Parse errors therefore carry offsets into text that exists
nowhere in the file. `CondText` keeps the pieces the text was built from (each
tied to the YAML scalar or item that produced it) and `Substituted` keeps the
edits the list pass made, so that any offset can be traced back to a file
line and column.
"""
from __future__ import annotations

from dataclasses import dataclass

BLANKS = " \t\n\r"
DELIMS = BLANKS + "(),="
# Operators whose right-hand side is a list: an exception value for them is parenthesised.
LIST_OPERATORS = ("in", "intersects", "pmatch")
MODIFIERS = ("oneof", "anyof", "allof")


@dataclass(frozen=True)
class Origin:
    """Where a piece of condition text comes from.

    `scalar` is the YAML scalar node whose decoded value holds the text (offsets
    map through it), or None for synthesized text, which maps to `index` (the
    character index, in `source`, of the item that caused it).
    """

    source: object  # yaml_positions.SourceFile
    scalar: object = None
    index: int = 0


class CondText:
    """Immutable concatenation of (text, origin, offset-in-origin) pieces."""

    __slots__ = ("pieces", "text")

    def __init__(self, pieces=()):
        self.pieces = tuple(pieces)
        self.text = "".join(p[0] for p in self.pieces)

    @classmethod
    def scalar(cls, text: str, origin: Origin) -> "CondText":
        return cls(((text, origin, 0),))

    @classmethod
    def synthetic(cls, text: str, origin: Origin) -> "CondText":
        return cls(((text, Origin(origin.source, None, origin.index), 0),))

    def __add__(self, other: "CondText") -> "CondText":
        return CondText(self.pieces + other.pieces)

    def locate(self, offset: int) -> tuple:
        """(origin, offset within the origin's scalar value) for a character offset."""
        pos = 0
        last = None
        for text, origin, base in self.pieces:
            if offset < pos + len(text):
                return origin, base + (offset - pos)
            pos += len(text)
            last = (origin, base + len(text))
        if last is None:
            return None, 0
        return last


def quote_item(item: str) -> str:
    """Falco quotes an item with a space in it unless it already starts with a quote."""
    if " " in item and item[:1] not in ('"', "'"):
        return '"' + item + '"'
    return item


def paren_item(item: str) -> str:
    return item if item.startswith("(") else "(" + item + ")"


def is_list_operator(op: str) -> bool:
    words = op.split()
    if len(words) == 2 and words[1] in MODIFIERS:
        return True
    return op in LIST_OPERATORS


class Substituted:
    """The text after list substitution and the edits that map its offsets back."""

    __slots__ = ("text", "edits")

    def __init__(self, text: str, edits: list):
        self.text = text
        # (new_start, new_end, old_start, old_end, old_name_start), in the order applied
        self.edits = edits

    def original_offset(self, offset: int) -> int:
        """Offset in the substituted text -> offset in the text before substitution.

        Anywhere inside a replacement maps to the list name that was replaced.
        """
        for new_start, new_end, old_start, old_end, name_at in reversed(self.edits):
            if offset >= new_end:
                offset += (old_end - old_start) - (new_end - new_start)
            elif offset >= new_start:
                offset = name_at
        return offset


def substitute_lists(text: str, lists) -> tuple:
    """Replace every list name in `text`, list by list in definition order, as Falco does.

    `lists` yields (name, items) with items already expanded. A name is replaced
    only when bounded by the string ends or one of DELIMS; the blanks around it
    are consumed and the items, joined by ", ", are put back between single
    spaces. Returns (Substituted, names of the lists used).
    """
    edits = []
    used = []
    for name, items in lists:
        start = text.find(name)
        if start < 0:
            continue
        n = len(name)
        hit = False
        while start >= 0:
            end = start + n
            if (start == 0 or text[start - 1] in DELIMS) and (end >= len(text) or text[end] in DELIMS):
                name_at = start
                while start > 0 and text[start - 1] in BLANKS:
                    start -= 1
                while end < len(text) and text[end] in BLANKS:
                    end += 1
                sub = ", ".join(quote_item(v) for v in items)
                if not sub:  # an empty list also takes one neighbouring comma away
                    if start > 0 and text[start - 1] == ",":
                        start -= 1
                    elif end < len(text) and text[end] == ",":
                        end += 1
                head = text[:start] + " " if start > 0 else ""
                text = head + sub + " " + text[end:]
                edits.append((start, len(head) + len(sub) + 1, start, end, name_at))
                start += len(sub) + 1
                hit = True
            start = text.find(name, start + 1)
        if hit:
            used.append(name)
    return Substituted(text, edits), used


def exception_condition(ex) -> str:
    """The text Falco adds for one exception, or "" when it has no values.

    `ex` has .fields/.comps (Entry: is_list, item, items) and .values (list of Entry).
    Raises ValueError with Falco's message for mismatched shapes.
    """
    if not ex.fields.is_list:
        parts = []
        for val in ex.values:
            if val.is_list:
                raise ValueError("Expected values array to contain a list of strings")
            parts.append(quote_item(val.item))
        if not parts:
            return ""
        return "(" + ex.fields.item + " " + ex.comps.item + " (" + ", ".join(parts) + "))"
    alternatives = []
    for values in ex.values:
        if not values.is_list or len(values.items) != len(ex.fields.items):
            raise ValueError("Fields and values lists must have equal length")
        checks = []
        for field_e, comp_e, val in zip(ex.fields.items, ex.comps.items, values.items):
            if val.is_list:
                rhs = "(" + ", ".join(quote_item(v.item) for v in val.items) + ")"
            elif is_list_operator(comp_e.item):
                rhs = paren_item(val.item)
            else:
                rhs = quote_item(val.item)
            checks.append(field_e.item + " " + comp_e.item + " " + rhs)
        # Falco's builder leaves a space after "(" and two after "and".
        alternatives.append("( " + " and  ".join(checks) + ")")
    if not alternatives:
        return ""
    return "(" + " or ".join(alternatives) + ")"
