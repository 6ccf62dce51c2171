"""Tokens of the condition language and a cursor that recognises them.

The language is lexed on demand by the parser (what a bare word means depends on
where it stands), so this module holds the token shapes and a Scanner with the
primitive "try to read X here" operations.
"""
from __future__ import annotations

import re
from typing import Optional, Tuple

from ..errors import ConditionError

# Whitespace between tokens (Falco's set: space, tab, backspace, CR, LF).
BLANKS = " \t\b\r\n"

UNARY_OPS = ("exists",)
NUM_OPS = ("<=", "<", ">=", ">")
# Symbolic operators need nothing after them; word operators need a blank.
STR_SYMBOL_OPS = ("==", "=", "!=")
STR_WORD_OPS = ("glob", "iglob", "contains", "icontains", "bcontains", "startswith",
                "bstartswith", "endswith", "regex")
LIST_OPS = ("intersects", "in", "pmatch")
STR_OPS = STR_SYMBOL_OPS + STR_WORD_OPS
ALL_OPS = UNARY_OPS + NUM_OPS + STR_OPS + LIST_OPS

MODIFIERS = ("oneof", "anyof", "allof")

# Transformer name -> argument shape: "x" a field or transformer, "s" a string
# literal, "x+" two or more fields/transformers/literals.
TRANSFORMERS = {
    "tolower": ("x",),
    "toupper": ("x",),
    "b64": ("x",),
    "basename": ("x",),
    "len": ("x",),
    "join": ("s", "x"),
    "concat": ("x+",),
    "getopt": ("x", "s"),
}
VAL = "val"
KEYWORDS = ("and", "or", "not")

_IDENT = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")
_FIELDNAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(?:\.[a-zA-Z]+[a-zA-Z0-9_]*)+")
_FIELD_ARG_BARE = re.compile(r"[^ \t\b\r\n\[\]\"']+")
_HEXNUM = re.compile(r"0[xX][0-9a-zA-Z]+")
_NUMBER = re.compile(r"[+\-]?[0-9]+\.?[0-9]*(?:[eE][+\-][0-9]+)?")
_BARESTR = re.compile(r"[^ \t\b\r\n()\"'=,]+")
_NOT_BLANK = re.compile(r"not[ \t\b\r\n]+")

IDENT_RE = re.compile(r"\A[a-zA-Z]+[a-zA-Z0-9_]*\Z")
FIELDNAME_RE = re.compile(r"\A" + _FIELDNAME.pattern + r"\Z")
FIELD_ARG_BARE_RE = re.compile(r"\A" + _FIELD_ARG_BARE.pattern + r"\Z")
BARESTR_RE = re.compile(r"\A" + _BARESTR.pattern + r"\Z")
NUMBER_RE = re.compile(r"\A(?:" + _HEXNUM.pattern + "|" + _NUMBER.pattern + r")\Z")
FIELDNAME_PREFIX = _FIELDNAME

_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "\\": "\\", "/": "/",
                   # Falco accepts "\ " and reads it as a backslash (kept for the
                   # upstream sandbox rule `proc.args contains "\ "`).
                   " ": "\\"}


def unescape(body: str, quote: str, offset: int) -> str:
    """Decode the inside of a quoted string; ``offset`` is where ``body`` starts."""
    if "\\" not in body:
        return body
    out = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise ConditionError("unterminated escape sequence", offset + i)
        e = body[i + 1]
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e in "\"'":
            if e != quote:
                raise ConditionError(f"invalid \\{e} escape in {quote}-quoted string", offset + i)
            out.append(e)
            i += 2
        elif e == "x":
            hh = body[i + 2:i + 4]
            if len(hh) != 2 or any(ch not in "0123456789abcdefABCDEF" for ch in hh):
                raise ConditionError("invalid \\x escape: expected two hex digits", offset + i)
            out.append(chr(int(hh, 16)))
            i += 4
        else:
            raise ConditionError(f"unsupported string escape sequence: \\{e}", offset + i)
    return "".join(out)


def quote(value: str) -> str:
    """The canonical double-quoted spelling of ``value`` (inverse of unescape)."""
    out = ['"']
    for c in value:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\b":
            out.append("\\b")
        elif c == "\f":
            out.append("\\f")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


class Scanner:
    """A cursor over the condition text."""

    __slots__ = ("text", "pos", "last")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.last = ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def blank(self) -> bool:
        t, p, n = self.text, self.pos, len(self.text)
        start = p
        while p < n and t[p] in BLANKS:
            p += 1
        self.pos = p
        return p > start

    def literal(self, s: str) -> bool:
        if self.text.startswith(s, self.pos):
            self.pos += len(s)
            self.last = s
            return True
        return False

    def regex(self, rx: "re.Pattern[str]") -> Optional[str]:
        m = rx.match(self.text, self.pos)
        if m is None:
            return None
        self.pos = m.end()
        self.last = m.group(0)
        return self.last

    def word(self, w: str) -> bool:
        """``w`` followed by a blank (the blank is not consumed)."""
        end = self.pos + len(w)
        if self.text.startswith(w, self.pos) and end < len(self.text) and self.text[end] in BLANKS:
            self.pos = end
            self.last = w
            return True
        return False

    def not_keyword(self) -> bool:
        return self.regex(_NOT_BLANK) is not None

    def identifier(self) -> Optional[str]:
        return self.regex(_IDENT)

    def field_name(self) -> Optional[str]:
        return self.regex(_FIELDNAME)

    def field_arg_bare(self) -> Optional[str]:
        return self.regex(_FIELD_ARG_BARE)

    def number(self) -> Optional[str]:
        return self.regex(_HEXNUM) or self.regex(_NUMBER)

    def bare_string(self) -> Optional[str]:
        return self.regex(_BARESTR)

    def quoted_string(self) -> Optional[str]:
        """Read a '...' or "..." string; returns its unescaped value."""
        t = self.text
        start = self.pos
        if start >= len(t) or t[start] not in "\"'":
            return None
        q = t[start]
        i = start + 1
        n = len(t)
        while i < n:
            c = t[i]
            if c == "\\":
                i += 2
                continue
            if c == q:
                value = unescape(t[start + 1:i], q, start + 1)
                self.pos = i + 1
                self.last = t[start:i + 1]
                return value
            i += 1
        raise ConditionError("unterminated quoted string", start)

    def ahead(self, rx: "re.Pattern[str]") -> Tuple[Optional[str], int]:
        """Match ``rx`` at the cursor without moving."""
        m = rx.match(self.text, self.pos)
        return (m.group(0), m.end()) if m else (None, self.pos)
