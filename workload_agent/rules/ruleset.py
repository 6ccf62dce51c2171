"""The loaded ruleset: compiled rules, their enabled state, and the event-type index.

An event only visits the enabled rules that can match its type: rules whose
condition restricts evt.type are indexed under those types, the others
(event_types None) are candidates for every event. Candidates keep load
order, so "first" matching returns the first rule in the files, as Falco does.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Iterable, Optional


@dataclass
class Rule:
    name: str
    desc: str
    priority: int  # 0 = EMERGENCY ... 7 = DEBUG
    source: str
    tags: tuple
    enabled: bool  # after enable/disable selections and the minimum priority
    enabled_in_file: bool  # as the rules files left it
    condition: object  # the resolved condition tree
    evaluate: object  # callable(event) -> bool
    output: object  # compiled output format (.render(event), .fields(event))
    output_text: str
    event_types: Optional[frozenset]  # None: the rule applies to every event type
    fields: tuple
    macros: tuple
    lists: tuple
    exception_fields: tuple = ()
    capture: bool = False
    capture_duration: int = 0
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    file: str = ""
    line: int = 0  # 1-based, for people
    condition_text_cache: Optional[str] = field(default=None, repr=False)

    @property
    def condition_text(self) -> str:
        """The compiled condition, printed (lists expanded, macros substituted)."""
        if self.condition_text_cache is None:
            from .condition import print_condition

            self.condition_text_cache = print_condition(self.condition)
        return self.condition_text_cache

    @property
    def priority_name(self) -> str:
        """Falco's long form: Critical, Warning, Informational, ..."""
        from .priority import Priority

        return Priority(self.priority).long


class Ruleset:
    def __init__(self, rules: list):
        self.rules = list(rules)  # every compiled rule, enabled or not, in load order
        self.by_name = {r.name: r for r in self.rules}
        self._reindex()

    def _reindex(self) -> None:
        self.enabled_rules = [r for r in self.rules if r.enabled]
        self._any_type = [r for r in self.enabled_rules if r.event_types is None]
        index: dict = {}
        for r in self.enabled_rules:
            for t in r.event_types or ():
                index.setdefault(t, []).append(r)
        self._typed = index
        self._candidates: dict = {}
        self._groups: dict = {}

    def candidates(self, event_type: str) -> list:
        """Enabled rules that can match an event of this type, in load order."""
        found = self._candidates.get(event_type)
        if found is None:
            typed = self._typed.get(event_type, [])
            if self._any_type and typed:
                order = {id(r): i for i, r in enumerate(self.enabled_rules)}
                found = sorted(typed + self._any_type, key=lambda r: order[id(r)])
            else:
                found = typed or self._any_type
            self._candidates[event_type] = found
        return found

    def match(self, event, mode: str = "first") -> list:
        """Rules matching the event: at most one in "first" mode, every one in "all" mode.
        (A consumer calling it per event takes ``matcher(mode)``: the same, one call less.)"""
        if mode != "first" and mode != "all":
            raise ValueError(f"unknown matching mode {mode!r} (expected 'first' or 'all')")
        key = event.type if event.source == "syscall" else (event.type, event.source)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = self._group(event.type, event.source)
        return group(event, mode == "first")

    def matcher(self, mode: str = "first"):
        """``match(event)`` for one mode (checked here, once): what a consumer calls per
        event. It follows the ruleset's selections (set_enabled) made later."""
        if mode != "first" and mode != "all":
            raise ValueError(f"unknown matching mode {mode!r} (expected 'first' or 'all')")
        first = mode == "first"
        ruleset = self

        def match(event) -> list:
            key = event.type if event.source == "syscall" else (event.type, event.source)
            group = ruleset._groups.get(key)
            if group is None:
                group = ruleset._groups[key] = ruleset._group(event.type, event.source)
            return group(event, first)
        return match

    def _group(self, event_type: str, source: str):
        from .group import compile_group

        return compile_group([r for r in self.candidates(event_type) if r.source == source], event_type)

    def event_types(self) -> Optional[frozenset]:
        """Union of the enabled rules' event types; None when some rule needs every type."""
        if self._any_type:
            return None
        return frozenset(self._typed)

    def set_enabled(self, selections: Iterable[tuple]) -> None:
        """Apply (action, kind, pattern) selections in order and reindex.

        action: "enable"|"disable"; kind: "rule" (name pattern with * wildcards) or "tag".
        """
        for action, kind, pattern in selections:
            for r in self.rules:
                if _selected(r, kind, pattern):
                    r.enabled = action == "enable"
        self._reindex()

    def __len__(self) -> int:
        return len(self.rules)


def _selected(rule: Rule, kind: str, pattern: str) -> bool:
    if kind == "tag":
        return pattern in rule.tags
    return fnmatch.fnmatchcase(rule.name, pattern)


def parse_selections(enable=(), disable=(), rules_config=()) -> list:
    """Normalise enable/disable selectors and a Falco `rules:` block into (action, kind, pattern).

    Raises ValueError on a malformed entry.
    """
    out = []
    for action, selectors in (("disable", disable), ("enable", enable)):
        for sel in selectors:
            out.append((action,) + _selector(sel))
    for entry in rules_config or ():
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"rules config entry must be a one-key mapping (enable or disable): {entry!r}")
        (action, sel), = entry.items()
        if action not in ("enable", "disable"):
            raise ValueError(f"rules config entry must be 'enable' or 'disable', not {action!r}")
        out.append((action,) + _selector(sel))
    return out


def _selector(sel) -> tuple:
    if isinstance(sel, str):
        return ("rule", sel)
    if isinstance(sel, dict) and len(sel) == 1:
        (kind, pattern), = sel.items()
        if kind in ("rule", "tag") and isinstance(pattern, str):
            return (kind, pattern)
    raise ValueError(f"a selector is a rule name pattern or {{'rule': pattern}} / {{'tag': name}}: {sel!r}")


def _priority_threshold(value):
    """None, a Priority/number, or a name -> severity number; ValueError for an unknown name."""
    if value is None or isinstance(value, int):
        return value
    from .priority import parse_priority

    return parse_priority(value)


def build_ruleset(compiled: list, *, min_priority=None, enable=(), disable=(), rules_config=()) -> Ruleset:
    """Ruleset from the compiler's output, with selections and the minimum priority applied."""
    rules = []
    for cr in compiled:
        d = cr.info
        loc = d.ctx[-1]
        rules.append(Rule(
            name=d.name, desc=d.desc, priority=d.priority, source=d.source, tags=tuple(d.tags),
            enabled=d.enabled, enabled_in_file=d.enabled, condition=cr.node, evaluate=cr.evaluate,
            output=cr.output, output_text=cr.output_text, event_types=cr.event_types,
            fields=cr.fields, macros=cr.macros, lists=cr.lists,
            exception_fields=cr.exception_fields, capture=d.capture,
            capture_duration=d.capture_duration, warn_evttypes=d.warn_evttypes,
            skip_if_unknown_filter=d.skip_if_unknown_filter, file=loc.file, line=loc.line + 1,
        ))
    return select_rules(rules, min_priority=min_priority, enable=enable, disable=disable,
                        rules_config=rules_config)


def select_rules(rules: list, *, min_priority=None, enable=(), disable=(), rules_config=()) -> Ruleset:
    """Ruleset of ``rules`` (enabled as their files left them) with the selections and
    the minimum priority applied."""
    threshold = _priority_threshold(min_priority)
    ruleset = Ruleset(rules)
    ruleset.set_enabled(parse_selections(enable, disable, rules_config))
    if threshold is not None:
        # Less severe than the minimum: loaded and compiled, never evaluated.
        for r in ruleset.rules:
            if r.priority > threshold:
                r.enabled = False
        ruleset._reindex()
    return ruleset
