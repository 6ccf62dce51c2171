"""One generated function per event type that evaluates all its candidate rules.

Rules share much of their conditions: upstream, ~20 rules can match an openat and
most of them start with the same macros (open_write, open_read...), which read the
same fields (evt.is_open_write, fd.name...). Evaluated rule by rule, an openat
extracts the open flags ~20 times. Here the candidate rules of an event type are
compiled together into one function in which

- every operand (field or transformer, named by its text) used more than once is
  extracted at most once per event, into a local variable;
- every sub-condition (a check, an and/or/not) that occurs more than once, in one
  rule or across rules, is evaluated at most once per event, into a local variable;
- checks on evt.type are decided when the group is built (the group is for one
  type), and the and/or/not around them simplified: a rule that cannot match the
  type is left out;
- what every evaluation of an earlier rule's condition computes first (its leftmost
  operand, and that operand's own leftmost, down to a field) is known to be computed
  when a later rule runs, since rules run in order: there it is read as the plain
  local, without the "evaluated yet?" test and without its source repeated;
- a field extractor that says how (rules.fields.spec: ``inline``, ``via``) is written
  into the source instead of called: ``e.proc.name`` costs one call less each way, and
  fields derived from one value (the open flags of evt.is_open_read, is_open_write...)
  share that value, extracted once per event (a derivation that says how,
  ``derive_inline``, is written in too);
- a pure test that remembers its answer per string (pmatch, glob) is read from its memo
  in the source, and called only for a string it has not seen.

Both are lazy (a local starts as the marker _U and is filled on first use), so
short-circuiting still skips what is not needed, and the result of each rule is
exactly what its own compiled condition gives (test_group_matches_rules checks it).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Dict, List, Optional

from . import compiler
from .compiler import _check, _Inline
from .condition.ast import And, Check, Field, ListLit, Literal, Node, Not, Or
from .fields import REGISTRY, Registry

GroupMatch = Callable[[Any, bool], list]

_U = object()  # "not evaluated yet"
# The checks an or of several merges into one call with a tuple of strings.
_AFFIX_TESTS = {"startswith": "v.startswith({k})", "endswith": "v.endswith({k})"}


class _Merged:
    """Generated source standing for several children of an or; ``lead``: the memo
    variable its evaluation always fills, if any."""
    __slots__ = ("source", "lead")

    def __init__(self, source: str, lead: Optional[str] = None) -> None:
        self.source = source
        self.lead = lead


def compile_group(rules: list, event_type: Optional[str] = None,
                  registry: Optional[Registry] = None) -> GroupMatch:
    """``match(event, first) -> [rules whose condition holds]`` for ``rules`` in order,
    on events of ``event_type`` only (None: any type); ``first`` stops at the first match."""
    if not rules:
        return lambda e, first: []
    reg = REGISTRY if registry is None else registry
    try:
        return _Builder(reg, event_type).build(rules)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        # Too deeply nested for Python's parser: rule by rule.
        return _one_by_one(rules)


def _one_by_one(rules: list) -> GroupMatch:
    def match(e, first):
        out = []
        for r in rules:
            if r.evaluate(e):
                out.append(r)
                if first:
                    break
        return out
    return match


class _Builder:
    def __init__(self, reg: Registry, event_type: Optional[str]) -> None:
        self.reg = reg
        self.event_type = event_type
        self.ns: Dict[str, Any] = {"_U": _U}
        self.node_uses: Counter = Counter()
        self.key_uses: Counter = Counter()
        self.node_var: Dict[Node, str] = {}
        self.key_var: Dict[str, str] = {}
        self.consts: Dict[int, str] = {}
        self.locals: List[str] = []
        self.known: set = set()                  # memo variables filled by an earlier rule
        self.constant: Dict[int, str] = {}       # id(node) -> "True"/"False" where decided

    def build(self, rules: list) -> GroupMatch:
        # the conditions as each rule's own compile sees them (legacy calls widened where
        # this machine lacks them: compiler._widen_legacy)
        conds = [compiler._widen_legacy(r.condition) for r in rules]
        for c in conds:
            self._count(c)
        lines = []
        for i, r in enumerate(rules):
            self.ns[f"r{i}"] = r
            cond = self._gen(conds[i])
            if cond == "False":
                continue
            if cond != "True":
                self.known.update(self._lead(conds[i]))
            lines.append(f"    if {cond}:\n"
                         f"        out.append(r{i})\n"
                         f"        if first:\n"
                         f"            return out\n")
        head = "def match(e, first):\n    out = []\n"
        if self.locals:
            head += "    " + " = ".join(self.locals) + " = _U\n"
        src = head + "".join(lines) + "    return out\n"
        exec(compile(src, "<rule group>", "exec"), self.ns)  # noqa: S102 - our own code
        return self.ns["match"]

    def _count(self, node: Node) -> None:
        self.node_uses[node] += 1
        if self.node_uses[node] > 1:
            return  # its insides are evaluated once with it
        if isinstance(node, (And, Or)):
            for c in node.children:
                self._count(c)
        elif isinstance(node, Not):
            self._count(node.child)
        elif isinstance(node, Check):
            check = _check(node, self.reg)
            if isinstance(check, _Inline) and check.key is not None:
                self.key_uses[check.key] += 1
                via = getattr(check.get, "via", None)
                while via is not None:   # the values it derives from, shared by key
                    self.key_uses[via[0]] += 1
                    via = getattr(via[1], "via", None)

    def _name(self, obj) -> str:
        """A global name for a constant or callable, shared by identity."""
        name = self.consts.get(id(obj))
        if name is None:
            name = self.consts[id(obj)] = f"k{len(self.consts)}"
            self.ns[name] = obj
        return name

    def _gen(self, node: Node) -> str:
        shared = self.node_uses[node] >= 2
        if shared:
            var = self.node_var.get(node)
            if var is not None and var in self.known:
                return var
        expr = self._gen_plain(node)
        if expr in ("True", "False"):
            self.constant[id(node)] = expr
            return expr
        if not shared:
            return expr
        var = self.node_var.get(node)
        if var is None:
            var = self.node_var[node] = f"s{len(self.node_var)}"
            self.locals.append(var)
        return f"({var} if {var} is not _U else ({var} := bool({expr})))"

    def _gen_plain(self, node: Node) -> str:
        if isinstance(node, (And, Or)):
            # Python's and/or give an operand back, not a bool: only the rule's truth
            # is used, so dropping constant operands keeps it.
            absorbing, neutral = ("False", "True") if isinstance(node, And) else ("True", "False")
            parts = []
            children = node.children
            if isinstance(node, Or):
                children = self._merge_prefixes(children)
            for c in children:
                if isinstance(c, _Merged):
                    parts.append(c.source)
                    continue
                expr = self._gen(c)
                if expr == absorbing:
                    return absorbing
                if expr != neutral:
                    parts.append(expr)
            if not parts:
                return neutral
            return "(" + f" {type(node).__name__.lower()} ".join(parts) + ")"
        if isinstance(node, Not):
            expr = self._gen(node.child)
            if expr in ("True", "False"):
                return "False" if expr == "True" else "True"
            return "(not " + expr + ")"
        if isinstance(node, Check):
            known = self._type_check(node)
            if known is not None:
                return known
            check = _check(node, self.reg)
            if not isinstance(check, _Inline):
                return f"{self._name(check)}(e)"
            return self._test_source(check, check.test, check.const)
        raise ValueError(f"cannot group a {type(node).__name__}")

    def _merge_prefixes(self, children) -> list:
        """`x startswith a or x startswith b or ...` (macros are full of them) as one
        `x.startswith((a, b, ...))`, for the children that are not shared elsewhere; the
        same for endswith."""
        groups: Dict[tuple, list] = {}
        for c in children:
            if isinstance(c, Check) and c.op in _AFFIX_TESTS and c.modifier is None \
                    and isinstance(c.rhs, Literal) and self.node_uses[c] < 2:
                check = _check(c, self.reg)
                if isinstance(check, _Inline) and check.key is not None \
                        and check.test == _AFFIX_TESTS[c.op] and isinstance(check.const, str):
                    groups.setdefault((check.key, check.test), []).append((c, check))
        merged = {key: members for key, members in groups.items() if len(members) > 1}
        if not merged:
            return list(children)
        out, done = [], set()
        for c in children:
            hit = next((k for k, ms in merged.items() if any(m[0] is c for m in ms)), None)
            if hit is None:
                out.append(c)
            elif hit not in done:
                done.add(hit)
                members = merged[hit]
                affixes = tuple(check.const for _, check in members)
                first = members[0][1]
                out.append(_Merged(self._test_source(first, hit[1], affixes), self._field_var(first)))
        return out

    def _field_var(self, check: "_Inline") -> Optional[str]:
        """The memo variable of a check's operand, if it has one."""
        if check.key is not None and self.key_uses[check.key] > 1:
            return self.key_var.get(check.key)
        return None

    def _lead(self, node) -> List[str]:
        """The memo variables that evaluating ``node``'s generated source always fills:
        its own, then its leftmost operand's, down to a field (constant operands are
        dropped from the source, so the leftmost is the first one left). Stops at a
        variable filled before this rule: what lies under it was counted then."""
        out: List[str] = []
        while True:
            if isinstance(node, _Merged):
                if node.lead is not None:
                    out.append(node.lead)
                return out
            if self.node_uses[node] >= 2:
                var = self.node_var.get(node)
                if var is not None:
                    if var in self.known:
                        return out
                    out.append(var)
            if isinstance(node, (And, Or)):
                neutral = "True" if isinstance(node, And) else "False"
                children = node.children if isinstance(node, And) else self._merge_prefixes(node.children)
                node = next((c for c in children
                             if isinstance(c, _Merged) or self.constant.get(id(c)) != neutral), None)
                if node is None:
                    return out
            elif isinstance(node, Not):
                node = node.child
            else:
                if isinstance(node, Check) and id(node) not in self.constant:
                    check = _check(node, self.reg)
                    if isinstance(check, _Inline):
                        var = self._field_var(check)
                        if var is not None:
                            out.append(var)
                return out

    def _test_source(self, check: "_Inline", test: str, const) -> str:
        value = self._operand_source(check.get, check.key)
        memo = getattr(const, "memo", None)
        if test == "{k}(v)" and type(memo) is dict:
            # A pure test remembering its answer per string (pmatch, glob): read the
            # answer here, call the test only for a string it has not seen.
            k = self._name(const)
            return (f"((v := {value}) is not None and (_h if type(v) is str and "
                    f"(_h := {self._name(memo)}.get(v)) is not None else {k}(v)))")
        return f"((v := {value}) is not None and {test.format(k=self._name(const))})"

    def _operand_source(self, get, key: Optional[str]) -> str:
        """Source giving one operand's value, extracted at most once per event when it
        is used more than once (``key`` names it)."""
        inline = getattr(get, "inline", None)
        via = getattr(get, "via", None)
        if inline is not None:
            self.ns.update(getattr(get, "inline_names", ()))
            value = f"({inline})"
        elif via is not None:
            base_key, base_get, derive = via
            base = self._operand_source(base_get, base_key)
            template = getattr(derive, "inline_derive", None)
            if template is not None:
                self.ns.update(getattr(derive, "inline_names", ()))
                value = "(" + template.format(v=base) + ")"
            else:
                value = f"{self._name(derive)}(e, {base})"
        else:
            value = f"{self._name(get)}(e)"
        if key is not None and self.key_uses[key] > 1:
            var = self.key_var.get(key)
            if var is None:
                var = self.key_var[key] = f"f{len(self.key_var)}"
                self.locals.append(var)
            value = var if var in self.known else f"({var} if {var} is not _U else ({var} := {value}))"
        return value

    def _type_check(self, node: Check) -> Optional[str]:
        """ "True"/"False" for a check on evt.type the group's type decides, else None."""
        lhs, rhs = node.lhs, node.rhs
        if self.event_type is None or not isinstance(lhs, Field) or lhs.name != "evt.type" \
                or lhs.arg is not None or node.modifier is not None:
            return None
        if node.op in ("=", "==", "!=") and isinstance(rhs, Literal):
            hit = self.event_type == rhs.value
        elif node.op in ("in", "intersects") and isinstance(rhs, ListLit):
            hit = self.event_type in rhs.values
        else:
            return None
        _check(node, self.reg)  # still validated (an unknown type name is an error)
        return "True" if hit != (node.op == "!=") else "False"
