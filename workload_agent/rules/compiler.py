"""Compile condition trees into fast predicates, and infer their event types.

A condition compiles once: every check becomes a closure with its field
extractor and converted right-hand value bound in, and the boolean structure
becomes one generated lambda calling those closures, so evaluation does no
field-name lookups and no tree walking.

Semantics (falco-rules.md "Evaluation semantics"): a field that cannot be
extracted makes its check false, `!=` included; glob/iglob are fnmatch without
FNM_PATHNAME; regex is a whole-string match. We use Python's ``re`` where Falco
uses RE2: RE2 rejects backreferences and lookaround (Python accepts them) and
differs in a few escape/class spellings, so patterns valid for Falco behave the
same here but the converse is not guaranteed.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

from ..events.params import equivalents
from .condition.ast import And, Check, Field, ListLit, ListRef, Literal, MacroRef, Node, Not, Or, Transform
from .condition.walk import fields_used, iter_nodes
from .errors import VALIDATE, ConditionError
from .fields import REGISTRY, Registry
from .fields import types as T
from .fields.evttypes import EVENT_TYPES
from .fields.spec import MULTI_ANY, MULTI_EITHER, MULTI_LIST

Predicate = Callable[[Any], bool]

_AT_FORMS = equivalents()

__all__ = ["compile_condition", "compile_operand", "event_types", "fields_used", "validate_condition",
           "Operand"]

_STRINGY = (T.CHARBUF, T.BYTEBUF)


class Operand:
    """A compiled field or transformer: ``get(event)`` returns its value, a list
    of values (``multi`` set), or None when unavailable."""
    __slots__ = ("get", "type", "multi", "text", "no_transform", "filter_only")

    def __init__(self, get, type_, multi, text, no_transform=False, filter_only=False):
        self.get = get
        self.type = type_
        self.multi = multi
        self.text = text
        self.no_transform = no_transform
        self.filter_only = filter_only


def compile_condition(node: Node, registry: Optional[Registry] = None) -> Predicate:
    """Compile ``node`` into ``predicate(event) -> bool``; ConditionError if invalid."""
    reg = REGISTRY if registry is None else registry
    checks: List[Any] = []
    try:
        node = _widen_legacy(node)
        expr = _gen(node, reg, checks)
    except RecursionError:
        raise ConditionError("condition nested too deeply", getattr(node, "offset", -1)) from None
    if len(checks) == 1 and expr == "c0(e)":
        return _closure(checks[0])
    ns: Dict[str, Any] = {}
    for i, c in enumerate(checks):
        if isinstance(c, _Inline):
            ns[f"g{i}"] = c.get
            ns[f"k{i}"] = c.const
        else:
            ns[f"c{i}"] = c
    try:
        return eval(compile(f"lambda e: {expr}", "<condition>", "eval"), ns)  # noqa: S307 - our own code
    except (SyntaxError, RecursionError, MemoryError):
        # Too deeply nested for Python's own parser: combine closures instead.
        return _combine(node, iter([_closure(c) for c in checks]))


def validate_condition(node: Node, registry: Optional[Registry] = None) -> None:
    """Check every field check of ``node`` (fields, arguments, operators, values)
    without needing its macro references resolved.

    The loader runs this on each macro's and rule's own tree so that an error's
    offset points into the text that holds it; after macro substitution,
    compile_condition can then only fail on undefined macros.
    """
    reg = REGISTRY if registry is None else registry
    for n in iter_nodes(node):
        if isinstance(n, Check):
            _check(n, reg)


class _Inline:
    """A check on one operand value, written into the generated code as
    ``(v := g(e)) is not None and <test on v and k>``, saving a call per check.
    ``key`` names the operand (its text) so that a group of rules evaluated together
    extracts each operand once per event; None when the text does not identify it."""
    __slots__ = ("get", "const", "test", "key")

    def __init__(self, get, const, test: str, key: Optional[str] = None) -> None:
        self.get = get
        self.const = const
        self.test = test
        self.key = key

    def source(self, i: int) -> str:
        return f"((v := g{i}(e)) is not None and {self.test.format(k=f'k{i}')})"


def _closure(check) -> Predicate:
    if isinstance(check, _Inline):
        return eval(compile(f"lambda e: {check.source(0)}", "<check>", "eval"),  # noqa: S307
                    {"g0": check.get, "k0": check.const})
    return check


def _gen(node: Node, reg: Registry, checks: List[Any]) -> str:
    if isinstance(node, And):
        return "(" + " and ".join(_gen(c, reg, checks) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " or ".join(_gen(c, reg, checks) for c in node.children) + ")"
    if isinstance(node, Not):
        return "(not " + _gen(node.child, reg, checks) + ")"
    if isinstance(node, Check):
        check = _check(node, reg)
        checks.append(check)
        i = len(checks) - 1
        return check.source(i) if isinstance(check, _Inline) else f"c{i}(e)"
    if isinstance(node, MacroRef):
        raise ConditionError(f"Undefined macro '{node.name}' used in filter.", node.offset,
                             code=VALIDATE, kind="undefined_macro")
    raise ConditionError(f"expected a check, found {type(node).__name__}",
                         getattr(node, "offset", -1))


def _combine(node: Node, checks) -> Predicate:
    if isinstance(node, And):
        fs = [_combine(c, checks) for c in node.children]
        return lambda e: all(f(e) for f in fs)
    if isinstance(node, Or):
        fs = [_combine(c, checks) for c in node.children]
        return lambda e: any(f(e) for f in fs)
    if isinstance(node, Not):
        f = _combine(node.child, checks)
        return lambda e: not f(e)
    return next(checks)


# -- operands ------------------------------------------------------------------
def compile_operand(node: Node, reg: Optional[Registry] = None, code: str = "",
                    output: bool = False) -> Operand:
    """Compile a Field or Transform node (``output``: for an output format)."""
    reg = REGISTRY if reg is None else reg
    kw = {"code": code} if code else {}
    if isinstance(node, Field):
        bf = reg.bind(node.name, node.arg, node.offset, code, output)
        return Operand(bf.get, bf.type, bf.multi, bf.text,
                       no_transform=bf.spec.no_transform and bf.multi is not None,
                       filter_only=bf.spec.filter_only)
    if isinstance(node, Transform):
        return _transform(node, reg, kw)
    raise ConditionError("expected a field or a transformer", node.offset, kind="syntax", **kw)


def _inner(node: Node, reg: Registry, kw, tname: str) -> Operand:
    op = compile_operand(node, reg, kw.get("code", ""))
    if op.no_transform:
        raise ConditionError(f"field {op.text} without index cannot be used with transformers",
                             node.offset, kind="argument", **kw)
    if op.multi == MULTI_EITHER:
        raise ConditionError(f"filter-only field {op.text} cannot be used with transformers",
                             node.offset, kind="argument", **kw)
    return op


def _elementwise(op: Operand, f: Callable[[Any], Any]):
    get = op.get
    if op.multi:
        def g(e):
            v = get(e)
            if v is None:
                return None
            out = [r for r in (f(x) for x in v) if r is not None]
            return out or None
        return g

    def g1(e):
        v = get(e)
        return None if v is None else f(v)
    return g1


def _b64(v):
    try:
        raw = base64.b64decode(v if isinstance(v, (bytes, bytearray)) else v.encode(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if isinstance(v, (bytes, bytearray)) else raw.decode("utf-8", "surrogateescape")


def _argv(e):
    p = e.proc
    return None if p is None else list(p.args)


def _getopt(tokens, opt: str):
    for i, tok in enumerate(tokens):
        if tok == opt:
            return tokens[i + 1] if i + 1 < len(tokens) else ""
        if opt.startswith("--"):
            if tok.startswith(opt + "="):
                return tok[len(opt) + 1:]
        elif tok.startswith(opt) and len(tok) > len(opt):
            return tok[len(opt):]
    return None


def _transform(node: Transform, reg: Registry, kw) -> Operand:
    name = node.name
    text = None
    if name == "val":
        raise ConditionError("val() can only be used on the right side of a comparison", node.offset,
                             kind="syntax", **kw)
    if name in ("tolower", "toupper", "b64", "basename", "len"):
        op = _inner(node.args[0], reg, kw, name)
        text = f"{name}({op.text})"
        if name == "len":
            if op.type not in _STRINGY and op.multi != MULTI_LIST:
                raise ConditionError(f"len() needs a string or list field, {op.text} is {op.type}",
                                     node.offset, kind="argument", **kw)
            get = op.get
            return Operand(lambda e: None if (v := get(e)) is None else len(v), T.UINT64, None, text)
        if op.type not in _STRINGY:
            raise ConditionError(f"{name}() needs a string field, {op.text} is {op.type}", node.offset,
                                 kind="argument", **kw)
        if name == "tolower":
            f = (lambda v: v.lower())
        elif name == "toupper":
            f = (lambda v: v.upper())
        elif name == "b64":
            f = _b64
        else:
            f = (lambda v: v.rsplit(b"/" if isinstance(v, bytes) else "/", 1)[-1])
        return Operand(_elementwise(op, f), op.type, op.multi, text)
    if name == "join":
        sep = node.args[0].value
        op = _inner(node.args[1], reg, kw, name)
        get = op.get
        text = f"join({sep!r}, {op.text})"
        return Operand(lambda e: None if (v := get(e)) is None else
                       (sep.join(T.to_text(x) for x in v) if isinstance(v, list) else T.to_text(v)),
                       T.CHARBUF, None, text)
    if name == "concat":
        parts = []
        for a in node.args:
            if isinstance(a, Literal):
                parts.append(lambda e, s=a.value: s)
            else:
                op = _inner(a, reg, kw, name)
                parts.append(lambda e, g=op.get: None if (v := g(e)) is None else T.to_text(v))

        def concat(e):
            out = []
            for p in parts:
                v = p(e)
                if v is None:
                    return None
                out.append(v)
            return "".join(out)
        return Operand(concat, T.CHARBUF, None, "concat(...)")
    if name == "getopt":
        op = _inner(node.args[0], reg, kw, name)
        opt = node.args[1].value
        target = node.args[0]
        # For proc.args keep argument boundaries: read argv, not its space-joined text.
        argv = _argv if (isinstance(target, Field) and target.name == "proc.args"
                         and target.arg is None) else op.get

        def getopt(e):
            v = argv(e)
            if v is None:
                return None
            return _getopt(v if isinstance(v, list) else T.to_text(v).split(), opt)
        return Operand(getopt, T.CHARBUF, None, f"getopt({op.text}, {opt})")
    raise ConditionError(f"unknown transformer '{name}'", node.offset, kind="syntax", **kw)


# -- checks --------------------------------------------------------------------
def _conv(ftype: str, value: str, offset: int, field_text: str):
    try:
        return T.convert(ftype, value)
    except T.ValueError_ as exc:
        raise ConditionError(f"{exc} (field {field_text}, type {ftype})", offset,
                             kind="value") from None


def _hex(value: str, offset: int):
    try:
        return T.parse_hex(value)
    except T.ValueError_ as exc:
        raise ConditionError(str(exc), offset, kind="value") from None


def _as_bytes(v) -> bytes:
    return v if isinstance(v, (bytes, bytearray)) else v.encode("utf-8", "surrogateescape")


def glob_to_regex(pattern: str) -> str:
    """fnmatch(3) pattern without FNM_PATHNAME/FNM_PERIOD as a regex: `*` and `?`
    cross `/`, `[...]`/`[!...]` are classes, a backslash quotes the next character
    (Python's fnmatch module has no escapes, hence our own)."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")  # no closing bracket: a literal '['
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[{'^' if negate else ''}{body}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


def _glob(pattern: str, icase: bool):
    return re.compile(glob_to_regex(pattern), re.DOTALL | (re.IGNORECASE if icase else 0)).fullmatch


# Entries a per-value memo of a pure check keeps before it starts over.
_MEMO_LIMIT = 4096


def _remembered(fullmatch) -> Callable[[Any], bool]:
    """A glob's answer remembered per string (a workload names the same paths over and
    over, and a regular expression costs more than a look-up), within a bound."""
    seen: Dict[str, bool] = {}

    def pred(v):
        hit = seen.get(v) if type(v) is str else None
        if hit is None:
            hit = fullmatch(v) is not None
            if type(v) is str:
                if len(seen) >= _MEMO_LIMIT:
                    seen.clear()
                seen[v] = hit
        return hit
    pred.memo = seen   # a rule group reads the answers itself (rules/group.py)
    return pred


def _components(path: str) -> Tuple[str, ...]:
    """Non-empty '/'-separated components: '/a//b/' -> ('a', 'b'), '/' -> ()."""
    return tuple(c for c in path.split("/") if c)


def _pmatch(paths) -> Callable[[Any], bool]:
    """Component-wise path prefix match, like libsinsp's prefix search: a search
    path matches itself and everything below it ('/var' matches '/var/lib' but
    not '/variable'); a component holding ? * or [ is a glob for that component."""
    plain = set()
    globbed = []
    for p in paths:
        comps = _components(p)
        if any(ch in c for c in comps for ch in "?*["):
            globbed.append(tuple(re.compile(glob_to_regex(c), re.DOTALL).fullmatch
                                 if any(ch in c for ch in "?*[") else c for c in comps))
        else:
            plain.add(comps)
    plain_lengths = sorted({len(c) for c in plain})

    def match(v):
        comps = _components(v)
        for n in plain_lengths:
            if n > len(comps):
                break
            if comps[:n] in plain:
                return True
        for g in globbed:
            if len(g) <= len(comps) and all(
                    (m == c) if isinstance(m, str) else (m(c) is not None) for m, c in zip(g, comps)):
                return True
        return False

    # A workload opens the same few paths over and over: remember the answer per path
    # (a pure function of it), within a bound.
    seen: Dict[str, bool] = {}

    def pred(v):
        if not isinstance(v, str):
            return False
        hit = seen.get(v)
        if hit is not None:
            return hit
        hit = match(v)
        if len(seen) >= _MEMO_LIMIT:
            seen.clear()
        seen[str(v)] = hit
        return hit
    pred.memo = seen   # a rule group reads the answers itself (rules/group.py)
    return pred


def _in_networks(nets) -> Callable[[Any], bool]:
    """Membership in any of ``nets`` by integer masking (ipaddress's own
    ``in`` is several times slower on this hot path)."""
    specs = tuple((n.version, int(n.network_address), int(n.netmask)) for n in nets)

    def inside(v):
        ver = v.version
        iv = int(v)
        for nver, base, mask in specs:
            if nver == ver and iv & mask == base:
                return True
        return False
    return inside


def _value_pred(op: str, ftype: str, raw: str, offset: int, field_text: str) -> Callable[[Any], bool]:
    """Predicate on one extracted value for ``op`` against one rule value."""
    if op in ("bcontains", "bstartswith"):
        needle = _hex(raw, offset)
        if op == "bcontains":
            return lambda v: needle in _as_bytes(v)
        return lambda v: _as_bytes(v).startswith(needle)
    if op in ("glob", "iglob"):
        return _remembered(_glob(raw, op == "iglob"))
    if op == "regex":
        try:
            rx = re.compile(raw, re.DOTALL)
        except re.error as exc:
            raise ConditionError(f"invalid regular expression '{raw}': {exc}", offset,
                                 kind="value") from None
        fm = rx.fullmatch
        return lambda v: fm(v) is not None
    c = _conv(ftype, raw, offset, field_text)
    if ftype == T.IPNET:
        inside = _in_networks((c,))
        if op == "=":
            return inside
        if op == "!=":
            return lambda v: not inside(v)
    if ftype == T.DYN:
        return _dyn_pred(op, c)
    if op == "=":
        return lambda v: v == c
    if op == "!=":
        return lambda v: v != c
    if op == "<":
        return lambda v: v < c
    if op == "<=":
        return lambda v: v <= c
    if op == ">":
        return lambda v: v > c
    if op == ">=":
        return lambda v: v >= c
    if op == "contains":
        return lambda v: c in v
    if op == "icontains":
        lc = c.lower()
        return lambda v: lc in v.lower()
    if op == "startswith":
        return lambda v: v.startswith(c)
    if op == "endswith":
        return lambda v: v.endswith(c)
    raise ConditionError(f"operator '{op}' needs a list", offset, kind="operator")


def _dyn_pred(op: str, c) -> Callable[[Any], bool]:
    import operator as o
    fn = {"=": o.eq, "!=": o.ne, "<": o.lt, "<=": o.le, ">": o.gt, ">=": o.ge}[op]

    def pred(v):
        try:
            return bool(fn(v, c))
        except TypeError:
            return False
    return pred


def _list_values(node: Node) -> ListLit:
    if isinstance(node, ListRef):
        raise ConditionError(f"undefined list '{node.name}'", node.offset, kind="undefined_list")
    if not isinstance(node, ListLit):
        raise ConditionError("expected a list", node.offset, kind="syntax")
    return node


def _list_constants(ftype: str, lst: ListLit, field_text: str) -> list:
    offs = lst.item_offsets or (lst.offset,) * len(lst.values)
    return [_conv(ftype, v, o, field_text) for v, o in zip(lst.values, offs)]


def _membership(ftype: str, vals: list) -> Callable[[Any], bool]:
    if ftype == T.IPNET:
        return _in_networks(vals)
    if ftype == T.DYN:
        preds = [_dyn_pred("=", c) for c in vals]
        return lambda v: any(p(v) for p in preds)
    return lambda v, s=frozenset(vals): v in s


_INLINE_TESTS = {"=": "v == {k}", "!=": "v != {k}", "<": "v < {k}", "<=": "v <= {k}",
                 ">": "v > {k}", ">=": "v >= {k}", "contains": "{k} in v",
                 "startswith": "v.startswith({k})", "endswith": "v.endswith({k})"}


def _check(node: Check, reg: Registry):
    """The compiled form of one check; cached per registry, as the same check recurs
    in many rules (through shared macros) and in a rule group (ruleset.py)."""
    cache = reg.__dict__.setdefault("_compiled_checks", {})
    hit = cache.get(node)
    if hit is None:
        if len(cache) > 50_000:  # many rule sets loaded one after another
            cache.clear()
        hit = cache[node] = _compile_check(node, reg)
    return hit


def _compile_check(node: Check, reg: Registry):
    lhs = compile_operand(node.lhs, reg)
    op = "=" if node.op == "==" else node.op
    ftype = lhs.type
    if op not in T.ALLOWED_OPS[ftype]:
        raise ConditionError(f"operator '{node.op}' is not supported for field {lhs.text} "
                             f"(type {ftype})", node.offset, kind="operator")
    get = lhs.get
    multi = lhs.multi
    # concat's text does not say what it concatenates: never shared.
    key = None if "concat(" in lhs.text else lhs.text
    if op == "exists":
        return _Inline(get, None, "True", key)
    rhs = node.rhs
    if isinstance(rhs, Transform):
        return _field_compare(node, lhs, op, rhs, reg)
    if lhs.text == "evt.type":
        _check_event_types(node)
    if node.modifier:
        lst = _list_values(rhs)
        offs = lst.item_offsets or (lst.offset,) * len(lst.values)
        preds = [_value_pred(op, ftype, v, o, lhs.text) for v, o in zip(lst.values, offs)]
        if node.modifier == "allof":
            pred = lambda v, ps=tuple(preds): all(p(v) for p in ps)  # noqa: E731
        else:  # oneof / anyof: some list value satisfies the operator
            pred = lambda v, ps=tuple(preds): any(p(v) for p in ps)  # noqa: E731
    elif op in ("in", "intersects", "pmatch"):
        lst = _list_values(rhs)
        if op == "pmatch":
            pred = _pmatch(lst.values)
        else:
            vals = _list_constants(ftype, lst, lhs.text)
            if multi is None and ftype not in (T.IPNET, T.DYN):
                return _Inline(get, frozenset(vals), "v in {k}", key)
            member = _membership(ftype, vals)
            if multi == MULTI_LIST:
                if op == "in":
                    return _Inline(get, member, "all({k}(x) for x in v)", key)
                return _Inline(get, member, "any({k}(x) for x in v)", key)
            pred = member
    else:
        if not isinstance(rhs, Literal):
            raise ConditionError(f"operator '{node.op}' needs a single value", rhs.offset if rhs else
                                 node.offset, kind="syntax")
        if multi == MULTI_EITHER and op == "!=":
            eq = _value_pred("=", ftype, rhs.value, rhs.offset, lhs.text)
            return _Inline(get, eq, "not any({k}(x) for x in v)", key)
        pred = _value_pred(op, ftype, rhs.value, rhs.offset, lhs.text)
        if multi is None and op in _INLINE_TESTS and ftype not in (T.IPNET, T.DYN, T.BYTEBUF):
            return _Inline(get, _conv(ftype, rhs.value, rhs.offset, lhs.text), _INLINE_TESTS[op], key)
    if multi in (MULTI_ANY, MULTI_EITHER, MULTI_LIST):
        return _Inline(get, pred, "any({k}(x) for x in v)", key)
    return _Inline(get, pred, "{k}(v)", key)


def _family(t: str) -> str:
    if t in _STRINGY:
        return "string"
    if t in T.NUMERIC_TYPES:
        return "number"
    if t in (T.IPADDR, T.IPNET):
        return "ip"
    return t


def _field_compare(node: Check, lhs: Operand, op: str, rhs_node: Transform, reg: Registry) -> Predicate:
    if lhs.no_transform:
        raise ConditionError(f"field {lhs.text} without index cannot be compared with another field",
                             node.offset, kind="argument")
    if op in ("pmatch", "regex", "glob", "iglob", "bcontains", "bstartswith"):
        raise ConditionError(f"operator '{op}' cannot compare with a field value", rhs_node.offset,
                             kind="operator")
    rhs = compile_operand(rhs_node.args[0] if rhs_node.name == "val" else rhs_node, reg)
    if rhs.no_transform or rhs.multi == MULTI_EITHER:
        raise ConditionError(f"field {rhs.text} cannot be used as a comparison value",
                             rhs_node.offset, kind="argument")
    if _family(lhs.type) != _family(rhs.type):
        raise ConditionError(f"cannot compare {lhs.text} ({lhs.type}) with {rhs.text} ({rhs.type})",
                             rhs_node.offset, kind="operator")
    lget, rget = lhs.get, rhs.get
    if op in ("in", "intersects"):
        def rel(a, b):
            return a in b if isinstance(b, list) else a == b
    else:
        import operator as o
        table = {"=": o.eq, "!=": o.ne, "<": o.lt, "<=": o.le, ">": o.gt, ">=": o.ge,
                 "contains": lambda a, b: b in a, "icontains": lambda a, b: b.lower() in a.lower(),
                 "startswith": lambda a, b: a.startswith(b), "endswith": lambda a, b: a.endswith(b)}
        rel = table[op]

    def cmp(a, b):
        if lhs.type == T.BYTEBUF or rhs.type == T.BYTEBUF:
            a, b = _as_bytes(a), _as_bytes(b)
        try:
            return bool(rel(a, b))
        except TypeError:
            return False

    if lhs.multi:
        def check_multi(e):
            a = lget(e)
            if a is None:
                return False
            b = rget(e)
            return b is not None and any(cmp(x, b) for x in a)
        return check_multi

    def check(e):
        a = lget(e)
        if a is None:
            return False
        b = rget(e)
        return b is not None and cmp(a, b)
    return check


def _check_event_types(node: Check) -> None:
    rhs = node.rhs
    if isinstance(rhs, Literal):
        items = [(rhs.value, rhs.offset)]
    elif isinstance(rhs, ListLit):
        items = list(zip(rhs.values, rhs.item_offsets or (rhs.offset,) * len(rhs.values)))
    else:
        return
    if node.op not in ("=", "==", "!=", "in", "intersects"):
        return
    for value, offset in items:
        if value not in EVENT_TYPES:
            raise ConditionError(f"unknown event type '{value}'", offset, field=value,
                                 kind="unknown_evttype")


# -- event types ---------------------------------------------------------------
def event_types(node: Node) -> Optional[FrozenSet[str]]:
    """Event types the condition can match; None means every type.

    Like Falco: evt.type checks give their sets, and/or intersect/unite, and a
    negation is pushed down (De Morgan) so `not evt.type = x` is all-but-x while
    a negated non-evt.type check still allows every type.
    """
    try:
        result = _evttypes(node, False)
    except RecursionError:
        return None  # too deep to analyse: the rule applies to every type
    return None if result == EVENT_TYPES else result


def _evttypes(node: Node, negated: bool) -> FrozenSet[str]:
    if isinstance(node, Not):
        return _evttypes(node.child, not negated)
    if isinstance(node, (And, Or)):
        sets = [_evttypes(c, negated) for c in node.children]
        intersect = isinstance(node, And) != negated
        out = sets[0]
        for s in sets[1:]:
            out = (out & s) if intersect else (out | s)
        return out
    if isinstance(node, Check) and isinstance(node.lhs, Field) and node.lhs.name == "evt.type" \
            and node.lhs.arg is None and node.modifier is None:
        named = _named_types(node)
        if named is None:
            return EVENT_TYPES
        positive = node.op in ("=", "==", "in", "intersects")
        if positive != negated:
            return named & EVENT_TYPES
        return EVENT_TYPES - named
    return EVENT_TYPES


def _named_types(node: Check) -> Optional[FrozenSet[str]]:
    """The types a check names, with the replacements of legacy calls this machine
    lacks (on aarch64 `open` is also `openat`: events/params.py AT_FORMS)."""
    named = _plain_named_types(node)
    if named is None or not _AT_FORMS.keys() & named:
        return named
    return named.union(name for t in named for name, _ in _AT_FORMS.get(t, ()))


def _widen_legacy(node: Node) -> Node:
    """Where this machine lacks a legacy call (aarch64: open, creat, unlink, fork...),
    `evt.type = open` becomes `(evt.type = open or evt.type = openat)`, with the
    condition that makes the replacement that call (creat: an openat with O_CREAT,
    O_TRUNC and O_WRONLY); `!=` negates the whole."""
    if not _AT_FORMS:
        return node
    if isinstance(node, (And, Or)):
        return type(node)(tuple(_widen_legacy(c) for c in node.children), node.offset)
    if isinstance(node, Not):
        return Not(_widen_legacy(node.child), node.offset)
    if not (isinstance(node, Check) and isinstance(node.lhs, Field) and node.lhs.name == "evt.type"
            and node.lhs.arg is None and node.modifier is None and node.op in ("=", "==", "!=", "in")):
        return node
    named = _plain_named_types(node)
    legacy = sorted(named & _AT_FORMS.keys()) if named else []
    if not legacy:
        return node
    at = node.offset
    same = Check(node.lhs, "in", ListLit(tuple(sorted(named)), at), offset=at)
    alts: List[Node] = [same]
    for name in legacy:
        for repl, guard in _AT_FORMS[name]:
            is_repl = Check(node.lhs, "=", Literal(repl, at), offset=at)
            alts.append(And((is_repl, _guard(guard)), at) if guard else is_repl)
    widened = Or(tuple(alts), at)
    return Not(widened, at) if node.op == "!=" else widened


_GUARDS: Dict[str, Node] = {}


def _guard(text: str) -> Node:
    if text not in _GUARDS:
        from .condition.parser import parse_condition

        _GUARDS[text] = parse_condition(text)
    return _GUARDS[text]


def _plain_named_types(node: Check) -> Optional[FrozenSet[str]]:
    rhs = node.rhs
    if node.op in ("=", "==", "!=") and isinstance(rhs, Literal):
        return frozenset((rhs.value,))
    if node.op in ("in", "intersects") and isinstance(rhs, ListLit):
        return frozenset(rhs.values)
    return None
