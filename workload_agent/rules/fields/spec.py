"""Field descriptions and the registry that binds a field as written in a rule
(name, bracket or dotted argument) to a fast extractor closure."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple

from ..errors import ConditionError

Getter = Callable[[Any], Any]

def inline(get: Getter, source: str, **names: Any) -> Getter:
    """Mark ``get`` as the expression ``source`` on ``e`` (the event), which a rule group
    (rules/group.py) writes into its code instead of calling ``get``. The source must give
    exactly what ``get(e)`` gives; it may bind names starting with "_" as temporaries, and
    read ``names`` (helpers, constants: each name starts with "_w_" and means one thing
    wherever it is used)."""
    get.inline = source  # type: ignore[attr-defined]
    if names:
        get.inline_names = names  # type: ignore[attr-defined]
    return get


def derive_inline(derive: Callable[[Any, Any], Any], template: str, **names: Any):
    """Mark a ``via`` derivation ``derive(e, v)`` as the expression ``template`` in which
    ``{v}`` stands for the base value's source (used once: bind it with a walrus to read it
    twice) and ``e`` for the event; ``names`` as for ``inline``."""
    derive.inline_derive = template  # type: ignore[attr-defined]
    if names:
        derive.inline_names = names  # type: ignore[attr-defined]
    return derive


def via(get: Getter, base_key: str, base: Getter, derive: Callable[[Any, Any], Any]) -> Getter:
    """Mark ``get`` as ``derive(e, base(e))``: a rule group extracts ``base`` once per
    event for every field derived from it (``base_key`` names that value; it starts with
    NUL so that it never equals a field's text)."""
    get.via = ("\0" + base_key, base, derive)  # type: ignore[attr-defined]
    return get


# How a field takes an argument.
ARG_NONE = "none"
ARG_INDEX = "index"          # [N]
ARG_KEY = "key"              # [KEY]
ARG_INDEX_OR_KEY = "index_or_key"
ARG_FORMS = (ARG_NONE, ARG_INDEX, ARG_KEY, ARG_INDEX_OR_KEY)

# How a field with several values compares (see falco-fields.md).
MULTI_ANY = "any"            # proc.aname etc. without index: true if any ancestor matches
MULTI_EITHER = "either"      # fd.ip/fd.port/fd.net: client or server end; != means both differ
MULTI_LIST = "list"          # list fields: `in` = every value in the set, intersects = some


@dataclass(frozen=True)
class FieldSpec:
    """One field. ``extractor`` is ``event -> value`` for fields without argument,
    else a factory ``arg -> (event -> value)`` (arg is int for an index, str for a
    key or dotted suffix). A value of None means the field is unavailable."""
    name: str
    type: str
    desc: str
    extractor: Callable[..., Any]
    arg: str = ARG_NONE
    arg_required: bool = False
    dotted: bool = False                   # also accepts NAME.SUFFIX as key argument
    event_types: Optional[frozenset] = None  # events that provide it; None = any
    live: bool = True                      # the tracer/state layer can fill it
    multi: Optional[str] = None            # without argument (see MULTI_*)
    multi_with_arg: Optional[str] = None   # with an argument
    filter_only: bool = False
    no_transform: bool = False             # ancestor "any" fields: no transformers/val
    output_extractor: Optional[Callable[[Any], Any]] = None  # without argument, in outputs
    #: why the value is not event-true (e.g. read at the process's exec, not updated since)
    approx: Optional[str] = None

    @property
    def arg_form(self) -> str:
        if self.dotted:
            return "dotted" if self.arg == ARG_NONE or self.arg == ARG_KEY else f"{self.arg}|dotted"
        return self.arg


@dataclass(frozen=True)
class BoundField:
    spec: FieldSpec
    text: str                    # as written, e.g. proc.aname[2]
    get: Getter
    multi: Optional[str]

    @property
    def type(self) -> str:
        return self.spec.type


class Registry:
    def __init__(self, specs: Iterable[FieldSpec] = ()) -> None:
        self._by_name: Dict[str, FieldSpec] = {}
        self._dotted: Dict[str, FieldSpec] = {}
        for s in specs:
            self.add(s)

    def add(self, spec: FieldSpec) -> None:
        if spec.name in self._by_name:
            raise ValueError(f"duplicate field {spec.name}")
        self._by_name[spec.name] = spec
        if spec.dotted:
            self._dotted[spec.name] = spec

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(sorted(self._by_name.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: str) -> bool:
        try:
            self.lookup(name)
        except KeyError:
            return False
        return True

    def get(self, name: str) -> Optional[FieldSpec]:
        return self._by_name.get(name)

    def lookup(self, name: str) -> Tuple[FieldSpec, Optional[str]]:
        """(spec, dotted suffix) for a field name as lexed; KeyError if unknown."""
        spec = self._by_name.get(name)
        if spec is not None:
            return spec, None
        # Longest registered prefix that takes a dotted argument: evt.arg.flags.
        head = name
        while "." in head:
            head, _, _ = head.rpartition(".")
            spec = self._dotted.get(head)
            if spec is not None:
                return spec, name[len(head) + 1:]
        raise KeyError(name)

    def bind(self, name: str, arg: Optional[str], offset: int = -1, code: str = "",
             output: bool = False) -> BoundField:
        """Resolve a field reference to its extractor; ConditionError if invalid.
        ``output``: bind for an output format (some fields print differently)."""
        kw = {"code": code} if code else {}
        text = name if arg is None else f"{name}[{arg}]"
        try:
            spec, suffix = self.lookup(name)
        except KeyError:
            raise ConditionError(f"filter_check called with nonexistent field {name}", offset,
                                 field=name, kind="unknown_field", **kw) from None
        if suffix is not None:
            if arg is not None:
                raise ConditionError(f"field {spec.name} takes either a dotted or a bracket argument, "
                                     "not both", offset, kind="argument", **kw)
            arg = suffix
        if arg is None:
            if spec.arg_required:
                raise ConditionError(f"field {spec.name} requires an argument", offset,
                                     kind="argument", **kw)
            if output and spec.output_extractor is not None:
                return BoundField(spec, text, spec.output_extractor, None)
            if spec.arg == ARG_NONE and not spec.dotted:
                return BoundField(spec, text, spec.extractor, spec.multi)
            return BoundField(spec, text, spec.extractor(None), spec.multi)
        if spec.arg == ARG_NONE and not spec.dotted:
            raise ConditionError(f"field {spec.name} does not take an argument", offset,
                                 kind="argument", **kw)
        value: Any = arg
        if spec.arg == ARG_INDEX or (spec.arg == ARG_INDEX_OR_KEY and arg.isdigit()):
            if not arg.isdigit():
                raise ConditionError(f"field {spec.name} needs a numeric index argument, got '{arg}'",
                                     offset, kind="argument", **kw)
            value = int(arg)
        try:
            getter = spec.extractor(value)
        except ValueError as exc:
            raise ConditionError(f"invalid argument for field {spec.name}: {exc}", offset,
                                 kind="argument", **kw) from None
        return BoundField(spec, text, getter, spec.multi_with_arg)
