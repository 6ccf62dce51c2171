"""Rule output formats (``%field`` substitution) and Falco-shaped alert lines."""
from __future__ import annotations

import json
import os
import re
import socket
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from .compiler import Operand, compile_operand
from .condition import lexer as lx
from .condition.parser import _Parser
from .errors import COMPILE_OUTPUT, ConditionError
from .fields import REGISTRY, Registry
from .fields import types as T
from .fields.evt import iso8601_utc
from .priority import Priority, parse_priority

NA = "<NA>"

# Falco's default append_output: the container plugin's suggested fields.
SUGGESTED_OUTPUT = ("container_id=%container.id container_name=%container.name "
                    "container_image_repository=%container.image.repository "
                    "container_image_tag=%container.image.tag k8s_pod_name=%k8s.pod.name "
                    "k8s_ns_name=%k8s.ns.name")

# Old rules' %container.info prints nothing.
_EMPTY_FIELDS = frozenset(("container.info",))
_WIDTH = re.compile(r"[0-9]+")
_TRANSFORMER = re.compile(r"(" + "|".join(lx.TRANSFORMERS) + r")\(")


class _Slot:
    __slots__ = ("key", "operand", "width")

    def __init__(self, key: str, operand: Optional[Operand], width: int) -> None:
        self.key = key
        self.operand = operand
        self.width = width


class OutputFormat:
    """A compiled output format."""

    def __init__(self, fmt: str, parts: List[Union[str, _Slot]]) -> None:
        self.format = fmt
        self._parts = parts
        self._slots = [p for p in parts if isinstance(p, _Slot) and p.operand is not None]

    @property
    def field_names(self) -> List[str]:
        seen: Dict[str, None] = {}
        for s in self._slots:
            seen.setdefault(s.key, None)
        return list(seen)

    def render(self, event: Any) -> str:
        out = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if part.operand is None:
                text = ""
            else:
                v = part.operand.get(event)
                text = NA if v is None else T.to_text(v)
            out.append(text.ljust(part.width) if part.width else text)
        return "".join(out)

    def fields(self, event: Any) -> Dict[str, Any]:
        """Typed values by field as written (None when unavailable), JSON-ready."""
        return {s.key: T.to_json(s.operand.get(event)) for s in self._slots}


def compile_output(fmt: str, registry: Optional[Registry] = None) -> OutputFormat:
    """Compile an output format; ConditionError (LOAD_ERR_COMPILE_OUTPUT) for bad fields."""
    if not isinstance(fmt, str):
        raise ConditionError("output must be a string", -1, code=COMPILE_OUTPUT)
    reg = REGISTRY if registry is None else registry
    parts: List[Union[str, _Slot]] = []
    literal: List[str] = []
    i, n = 0, len(fmt)
    while i < n:
        c = fmt[i]
        if c != "%":
            literal.append(c)
            i += 1
            continue
        slot, end = _field_at(fmt, i, reg)
        if slot is None:
            literal.append(c)
            i += 1
            continue
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(slot)
        i = end
    if literal:
        parts.append("".join(literal))
    return OutputFormat(fmt, parts)


def _field_at(fmt: str, at: int, reg: Registry) -> Tuple[Optional[_Slot], int]:
    """Parse ``%[width]field`` at ``at``; (None, at) when no field follows."""
    p = _Parser(fmt)
    s = p.s
    s.pos = at + 1
    width = 0
    m = _WIDTH.match(fmt, s.pos)
    if m:
        width = int(m.group(0))
        s.pos = m.end()
    start = s.pos
    try:
        if _TRANSFORMER.match(fmt, start):
            node = p.parse_transformer()
        elif s.field_name() is not None:
            name = s.last
            if name in _EMPTY_FIELDS:
                return _Slot(name, None, width), s.pos
            name = _known_prefix(name, reg)
            s.pos = start + len(name)
            node = p.parse_field_rest(name, start)
        else:
            return None, at
        operand = compile_operand(node, reg, COMPILE_OUTPUT, output=True)
    except ConditionError as exc:
        raise ConditionError(exc.message, exc.offset, code=COMPILE_OUTPUT, field=exc.field,
                             kind=exc.kind) from None
    if operand.filter_only:
        raise ConditionError(f"field {operand.text} can only be used in conditions", start,
                             code=COMPILE_OUTPUT, kind="argument")
    return _Slot(fmt[start:s.pos], operand, width), s.pos


def _known_prefix(name: str, reg: Registry) -> str:
    """Like Falco's formatter, take the longest known field at the start of a
    dotted word ("%proc.name.x" is proc.name followed by ".x"); an unknown name
    is kept whole so the error names it."""
    head = name
    while head not in reg and "." in head:
        head = head.rpartition(".")[0]
    return head if head in reg and "." in head else name


def _priority(priority: Union[Priority, str]) -> Priority:
    return priority if isinstance(priority, Priority) else parse_priority(priority)


def alert_text(time_ns: int, priority: Union[Priority, str], message: str) -> str:
    """``<ISO-8601 UTC time>: <Priority> <message>`` as Falco prints it."""
    return f"{iso8601_utc(time_ns, zulu=False)}: {_priority(priority).long} {message}"


def default_hostname() -> str:
    return os.environ.get("FALCO_HOSTNAME") or socket.gethostname()


def alert_json(time_ns: int, priority: Union[Priority, str], message: str, rule: str,
               output_fields: Optional[Dict[str, Any]] = None, tags: Iterable[str] = (),
               source: str = "syscall", hostname: Optional[str] = None) -> str:
    """One JSON alert line in Falco's shape (keys in Falco's order)."""
    # Falco serialises with sorted object keys (top level and output_fields alike).
    fields = dict(output_fields or {})
    fields["evt.time"] = time_ns
    fields = {k: fields[k] for k in sorted(fields)}
    doc = {
        "hostname": default_hostname() if hostname is None else hostname,
        "output": message,
        "output_fields": fields,
        "priority": _priority(priority).long,
        "rule": rule,
        "source": source,
        "tags": sorted(set(tags)),
        "time": iso8601_utc(time_ns, zulu=True),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
