"""Reading and writing the documents we patch, keeping the user's formatting.

YAML goes through ruamel.yaml's round-trip mode (comments, key order, quotes, flow
style and CloudFormation short-form tags such as !Ref survive); its indentation is
chosen as the one that reproduces the input. JSON keeps key order and indent width.
"""
from __future__ import annotations

import functools
import io
import json
from dataclasses import dataclass
from typing import Any

from .errors import PatchError

# (mapping indent, sequence indent, dash offset): the common styles, most common first.
_INDENTS = ((2, 2, 0), (2, 4, 2), (4, 4, 0), (4, 6, 2), (4, 4, 2), (3, 3, 0))


@dataclass
class Document:
    kind: str                  # "yaml" or "json"
    docs: list                 # one or more top-level documents
    indent: Any = None         # YAML (map, seq, offset) or JSON indent width
    explicit_start: bool = False
    trailing_newline: bool = True

    def dump(self) -> str:
        if self.kind == "json":
            out = json.dumps(self.docs[0], indent=self.indent, ensure_ascii=False)
            return out + ("\n" if self.trailing_newline else "")
        return _dump_yaml(self.docs, self.indent, self.explicit_start)


def _yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap long lines (Sub strings, ARNs)
    return y


def _flow_safe(value: Any) -> bool:
    """Whether value can sit in a flow sequence without ruamel mis-emitting it.

    ruamel.yaml writes some plain scalars unquoted in flow context although they then
    read back differently (e.g. `[?(]`); quoted and tagged scalars are written safely.
    """
    from ruamel.yaml.comments import TaggedScalar
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    if isinstance(value, (DoubleQuotedScalarString, SingleQuotedScalarString, TaggedScalar)):
        return True
    if isinstance(value, (bool, int, float)) or value is None:
        return True
    return isinstance(value, str) and _plain_round_trips(str(value))


@functools.lru_cache(maxsize=4096)
def _plain_round_trips(text: str) -> bool:
    """Emit [text] in flow style and read it back: the emitter's own verdict, cached."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    seq = CommentedSeq([text])
    seq.fa.set_flow_style()
    y = YAML(typ="rt")
    y.width = 4096
    buf = io.StringIO()
    try:
        y.dump({"k": seq}, buf)
        back = YAML(typ="safe", pure=True).load(buf.getvalue())
    except Exception:
        return False
    return back == {"k": [text]}


@functools.lru_cache(maxsize=None)
def _representer():
    """A RoundTripRepresenter subclass (add_representer would change ruamel's class for everyone)."""
    from ruamel.yaml.representer import RoundTripRepresenter

    class Representer(RoundTripRepresenter):
        def represent_list(self, data):
            fa = getattr(data, "fa", None)
            if fa is not None and fa.flow_style() and not all(_flow_safe(v) for v in data):
                fa.set_block_style()
            return super().represent_list(data)

    def plain_list(representer, data: list):
        # lists we create are argv-like or short: flow style when every item allows it
        flow = all(_flow_safe(v) for v in data)
        return representer.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)

    Representer.add_representer(list, plain_list)
    from ruamel.yaml.comments import CommentedSeq

    Representer.add_representer(CommentedSeq, Representer.represent_list)
    return Representer


def _dump_yaml(docs: list, indent: tuple, explicit_start: bool) -> str:
    y = _yaml()
    y.Representer = _representer()
    y.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    y.explicit_start = explicit_start
    buf = io.StringIO()
    y.dump_all(docs, buf)
    return buf.getvalue()


def load(text: str, source: str, multi: bool = False) -> Document:
    """Parse JSON or YAML (auto-detected); errors name the file, line and column."""
    stripped = text.lstrip()
    if stripped.startswith("{") or stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PatchError(f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
        return Document("json", [data], _json_indent(text), trailing_newline=text.endswith("\n"))
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    y = _yaml()
    try:
        docs = list(y.load_all(text)) if multi else [y.load(text)]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise PatchError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except YAMLError as exc:
        raise PatchError(f"{source}: invalid YAML: {exc}") from None
    docs = [d for d in docs if d is not None] if multi else docs
    if not docs or docs[0] is None:
        raise PatchError(f"{source}: empty document")
    explicit = stripped.startswith("---")
    return Document("yaml", docs, _yaml_indent(text, docs, explicit), explicit)


def _json_indent(text: str) -> int:
    for line in text.splitlines()[1:]:
        if line.strip():
            return (len(line) - len(line.lstrip(" "))) or 2
    return 2


def _yaml_indent(text: str, docs: list, explicit: bool) -> tuple:
    """The indentation whose re-dump of the unchanged input matches it best."""
    import difflib

    best, best_score = _INDENTS[0], -1.0
    for cand in _INDENTS:
        try:
            out = _dump_yaml(docs, cand, explicit)
        except Exception:  # an exotic node the emitter refuses in this style
            continue
        if out == text:
            return cand
        score = difflib.SequenceMatcher(None, out.splitlines(), text.splitlines(), autojunk=False).ratio()
        if score > best_score:
            best, best_score = cand, score
    return best


# ---------------------------------------------------------------- comments that follow a node
#
# ruamel attaches the comment lines and blank lines that follow a block mapping to its
# deepest last key. When we append keys to a container, those lines would end up in the
# middle of it; so they are detached first and re-attached to the new deepest last key.

def _is_block(v: Any) -> bool:
    fa = getattr(v, "fa", None)
    return isinstance(v, (dict, list)) and len(v) > 0 and fa is not None and not fa.flow_style()


def _last_slot(node: Any, create: bool):
    """(comment entry list, position) where a comment after node would live, or None."""
    ca = getattr(node, "ca", None)
    if ca is None or not len(node):
        return None
    if isinstance(node, dict):
        key = list(node.keys())[-1]
        pos = 2
    else:
        key = len(node) - 1
        pos = 0
    value = node[key]
    if _is_block(value) and not getattr(getattr(value, "tag", None), "value", None):
        return _last_slot(value, create)
    if key not in ca.items:
        if not create:
            return None
        ca.items[key] = [None, None, None, None]
    return ca.items[key], pos


def detach_tail(node: Any) -> str | None:
    """Remove and return the lines following node (keeping an end-of-line comment)."""
    slot = _last_slot(node, create=False)
    if slot is None or slot[0][slot[1]] is None:
        return None
    entry, pos = slot
    tok = entry[pos]
    eol, nl, rest = tok.value.partition("\n")
    if not rest:
        return None
    if eol.strip():
        tok.value = eol + nl
    else:
        entry[pos] = None
    return rest


def attach_tail(node: Any, text: str | None) -> None:
    if not text:
        return
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    slot = _last_slot(node, create=True)
    if slot is None:
        return
    entry, pos = slot
    if entry[pos] is not None:
        entry[pos].value = entry[pos].value.rstrip("\n") + "\n" + text
    else:
        entry[pos] = CommentToken("\n" + text, CommentMark(0))


def hoist_item_tails(seq: Any) -> str | None:
    """Move each item's following lines to the next item's leading comment; return the last's."""
    if getattr(seq, "ca", None) is None:
        return None
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    tail = None
    for i, item in enumerate(seq):
        text = detach_tail(item)
        if i == len(seq) - 1:
            tail = text
        elif text:
            tokens = [CommentToken((line.strip() + "\n") if line.strip() else "\n",
                                   CommentMark(len(line) - len(line.lstrip())))
                      for line in text.split("\n")[:-1]]
            entry = seq.ca.items.setdefault(i + 1, [None, None, None, None])
            entry[1] = tokens + (entry[1] or [])
    return tail


def plain(node: Any) -> Any:
    """Content only: ruamel nodes as plain data, short-form tags as {"!Tag": value}.

    `--check` compares this, so an input that is instrumented but formatted differently
    from how we would write it (JSON indentation, YAML flow style) passes.
    """
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, dict):
        out: Any = {plain(k): plain(v) for k, v in node.items()}
    elif isinstance(node, list):
        out = [plain(v) for v in node]
    elif hasattr(node, "value") and tag:  # TaggedScalar
        out = plain(node.value)
    elif isinstance(node, str):
        out = str(node)
    else:
        out = node
    return {tag: out} if tag and tag.startswith("!") else out
