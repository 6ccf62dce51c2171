"""YAML with positions: compose a rules file into PyYAML nodes and map places back to the file.

PyYAML's composer keeps a start mark (character index, line, column) on every
node, which is what every load message needs. A condition error, though, is an
offset into the *decoded* scalar value; `scalar_char_index` walks the decoded
value alongside the raw source of the scalar to find the file character that
produced it. That works for plain, single/double-quoted and block scalars,
because each decoded character either appears literally in the source or comes
from an escape (double quotes) or a folded line break (any whitespace).
"""
from __future__ import annotations

import bisect
from typing import Optional

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # libyaml is ~10x faster to compose, and loading is paid at every container start
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

NULL_TAG = "tag:yaml.org,2002:null"

__all__ = [
    "MappingNode", "Node", "ScalarNode", "SequenceNode", "SourceFile", "compose_documents",
    "is_null", "mapping_get", "mapping_keys", "scalar_char_index",
]


class SourceFile:
    """A rules file's text plus a line table to turn character indexes into line/column."""

    def __init__(self, name: str, content: str):
        self.name = name
        self.content = content
        self._line_starts = [0]
        find = content.find
        i = find("\n")
        while i >= 0:
            self._line_starts.append(i + 1)
            i = find("\n", i + 1)

    def line_col(self, index: int) -> tuple:
        """0-based (line, column) of a character index."""
        index = max(0, min(index, len(self.content)))
        line = bisect.bisect_right(self._line_starts, index) - 1
        return line, index - self._line_starts[line]


def compose_documents(content: str) -> list:
    """Every document's root node (None for an empty document). Raises yaml.YAMLError."""
    return list(yaml.compose_all(content, Loader=_Loader))


def is_null(node: Optional[Node]) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG and not node.style


def mapping_get(node: MappingNode, key: str) -> Optional[Node]:
    """The value of the first pair whose scalar key is `key` (as yaml-cpp's lookup does)."""
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return v
    return None


def mapping_keys(node: MappingNode) -> list:
    """(key text, key node) pairs of a mapping, in file order; non-scalar keys are skipped."""
    return [(k.value, k) for k, _ in node.value if isinstance(k, ScalarNode)]


_SIMPLE_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
    "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85",
    "_": "\xa0", "L": "\u2028", "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def _escape_at(src: str, i: int) -> tuple:
    """Decode the double-quoted escape starting at src[i] == '\\': (produced text, length)."""
    if i + 1 >= len(src):
        return "", 1
    c = src[i + 1]
    if c in _HEX_ESCAPES:
        n = _HEX_ESCAPES[c]
        try:
            return chr(int(src[i + 2:i + 2 + n], 16)), 2 + n
        except ValueError:
            return "", 2
    if c in "\r\n":  # escaped line break: joins lines, produces nothing
        return "", 2
    return _SIMPLE_ESCAPES.get(c, c), 2


def scalar_char_index(node: ScalarNode, content: str, offset: int) -> int:
    """File character index of character `offset` of the scalar's decoded value.

    An offset at or past the end of the value maps just after the last character
    that produced it (where "unexpected end of input" happens).
    """
    value = node.value
    start = node.start_mark.index
    end = node.end_mark.index if node.end_mark is not None else len(content)
    if end <= start:
        end = len(content)
    dq = node.style == '"'
    i = start
    if node.style in ("'", '"'):
        i += 1  # the opening quote produces nothing
    elif node.style in ("|", ">"):
        nl = content.find("\n", i)  # the header line (indicator, chomping, indent) produces nothing
        i = nl + 1 if 0 <= nl < end else i
    offset = max(offset, 0)
    if offset >= len(value):
        # End of input: just after the last character that shows (not a trailing line break).
        stripped = len(value.rstrip())
        if stripped == 0:
            return i
        return scalar_char_index(node, content, stripped - 1) + 1
    for k in range(offset):
        c = value[k]
        matched = False
        while i < end:
            s = content[i]
            if dq and s == "\\":
                produced, n = _escape_at(content, i)
                if produced == c:
                    i += n
                    matched = True
                    break
                i += n
                continue
            if s == c or (c.isspace() and s.isspace()):
                i += 1
                matched = True
                break
            i += 1
        if not matched:  # could not align: point at the scalar rather than somewhere wrong
            return start
    # Skip what produces nothing before the target character (indentation, quotes, escapes).
    c = value[offset]
    j = i
    while j < end:
        s = content[j]
        if s == c or (c.isspace() and s.isspace()) or (dq and s == "\\"):
            return j
        j += 1
    return i
