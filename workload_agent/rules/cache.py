"""Compiled-rules cache: what loading a set of rules files gives, kept on disk so
that the next start with the same files skips YAML, parsing, macro substitution
and compilation.

What is kept: each rule as the ruleset holds it (resolved condition tree, event
types, fields, output text...) and the load's warnings. Compiled closures cannot be
stored: a rule's predicate and output format are compiled again on first use, which
cannot fail since the same content compiled when the entry was written (the rule
groups that match events compile from the trees anyway, see group.py). The condition
trees are a pickle of their own, read when a rule's condition is first asked for:
`instrument` needs only the event types to start the workload, so the tree classes
are not even imported before the workload's exec.

Key: the files' names and contents, the agent version, the Python version, and the
size and mtime of every module of the agent (a changed compiler must not reuse trees
it would build differently). Only successful loads are stored.

What a start derives from a ruleset that came through here can be kept beside it
(``derived``): the tracer's prefilter, compiled from the enabled rules for the traced
syscalls, is the costliest part of the start after the rules themselves. Its key is the
rules' key, the rules as selected (name, enabled, event types of each), and what the
caller derived it for (the syscalls, the architecture), so it is never served for other
rules, another selection or another syscall set.

Where: $WORKLOAD_AGENT_RULES_CACHE if set to a directory ("off" disables it), else
$XDG_CACHE_HOME/workload-agent, else ~/.cache/workload-agent. The directory is ours
alone (0700, owned by us; an entry in a directory anyone else can write is never
read, since unpickling runs code). Any failure to read or write the cache is
silent and costs only the time it would have saved.
"""
from __future__ import annotations

import os
import pickle
from typing import List, Optional

from .cache_entries import FORMAT, cache_dir, cache_key, read_entry, read_files, sha256, write_entry
from .ruleset import Rule


class _Text:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def as_text(self) -> str:
        return self.text


class CachedLoad:
    """What load_rules gives, as far as an agent starting up reads it."""
    ok = True
    errors: list = []

    def __init__(self, ruleset, warnings: List[str]) -> None:
        self.ruleset = ruleset
        self.warnings = [_Text(t) for t in warnings]


def load_rules_cached(paths, *, min_priority=None, enable=(), disable=(), files=None):
    """load_rules(paths, compile_each=False) through the cache: a CachedLoad on a hit,
    else the loader's own result (stored when it succeeded).

    files: the (name, bytes) of ``paths`` as read_files gave them earlier: the rules are
    then what those bytes hold, whatever the files hold now (a start that derived its
    syscalls and prefilter from these bytes must judge events by the same rules)."""
    from .ruleset import select_rules

    given = files is not None
    if not given and cache_dir() is not None:
        files = read_files(paths)
    key = cache_key(files) if files is not None and cache_dir() is not None else None
    if key is not None:
        hit = load(key)
        if hit is not None:
            rules, warnings = hit
            ruleset = select_rules(rules, min_priority=min_priority, enable=enable, disable=disable)
            ruleset.cache_key = key
            return CachedLoad(ruleset, warnings)
    from .loader import load_rules

    contents = None
    if given:
        try:   # as the loader reads a file: UTF-8, universal newlines
            contents = {name: data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
                        for name, data in files}
            paths = [name for name, _ in files]
        except UnicodeDecodeError:   # the loader reads the files and says what is wrong
            contents = key = None
    result = load_rules(paths, min_priority=min_priority, enable=enable, disable=disable,
                        compile_each=False, contents=contents)
    if key is not None and result.ok:
        store(key, result.ruleset.rules, [m.as_text() for m in result.warnings])
        result.ruleset.cache_key = key
    return result


def load(key: str):
    """(rules, warning texts) stored under ``key``, or None."""
    doc = read_entry(f"rules-{key}.pickle", key)
    if doc is None:
        return None
    rules = doc["rules"]
    trees = _Trees(doc["trees"])
    for r in rules:
        r._trees = trees
        r.evaluate = LazyPredicate(r)
        r.output = LazyOutput(r.output_text)
    return rules, doc["warnings"]


def store(key: str, rules: list, warnings: List[str]) -> None:
    slim = []
    for i, r in enumerate(rules):
        c = CachedRule.__new__(CachedRule)
        state = dict(r.__dict__)
        state.pop("condition", None)
        state.update(enabled=r.enabled_in_file,  # selections are applied on each load
                     evaluate=None, output=None, condition_text_cache=None, _tree_index=i)
        c.__dict__.update(state)
        slim.append(c)
    try:
        trees = pickle.dumps([r.condition for r in rules], protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, RecursionError, TypeError, AttributeError):
        return
    write_entry(f"rules-{key}.pickle",
                 {"key": key, "rules": slim, "trees": trees, "warnings": list(warnings)})


def derived(ruleset, what: str, params: tuple, build):
    """``build()``, a value derived from ``ruleset`` for ``params``, through the cache when
    the ruleset came from load_rules_cached: the value stored for the same rules files,
    the same selection of rules and the same params, else build()'s (then stored).

    what: a name for the kind of value ("prefilter"); params: a tuple of plain values
    (str, int, tuples of them) naming everything else the value depends on. The value
    must pickle; what build() raises goes to the caller."""
    key = _derived_key(ruleset, what, params)
    if key is not None:
        doc = read_entry(f"{what}-{key}.pickle", key)
        if doc is not None and "value" in doc:
            return doc["value"]
    value = build()
    if key is not None:
        write_entry(f"{what}-{key}.pickle", {"key": key, "value": value})
    return value


def _derived_key(ruleset, what: str, params: tuple) -> Optional[str]:
    rules_key = getattr(ruleset, "cache_key", None)
    if rules_key is None or cache_dir() is None:
        return None
    h = sha256(f"{FORMAT}\0{what}\0{rules_key}\0{params!r}\0".encode("utf-8", "surrogateescape"))
    # the rules as selected now: a selection changed after the load changes the key
    for r in ruleset.rules:
        types = None if r.event_types is None else sorted(r.event_types)
        h.update(f"{r.name!r}\0{r.enabled}\0{r.source}\0{types!r}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


class _Trees:
    """The condition trees of a cache entry, unpickled on first use."""
    __slots__ = ("blob", "trees")

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.trees = None

    def get(self, i: int):
        if self.trees is None:
            self.trees = pickle.loads(self.blob)
            self.blob = b""
        return self.trees[i]


class CachedRule(Rule):
    """A rule read from the cache: its condition tree is read when first asked for."""

    @property  # type: ignore[override]
    def condition(self):
        return self._trees.get(self._tree_index)


class LazyPredicate:
    """A rule's compiled condition, compiled on first call."""
    __slots__ = ("rule", "f")

    def __init__(self, rule) -> None:
        self.rule = rule
        self.f = None

    def __call__(self, event) -> bool:
        f = self.f
        if f is None:
            from .compiler import compile_condition

            f = self.f = compile_condition(self.rule.condition)
        return f(event)


class LazyOutput:
    """A rule's compiled output format, compiled on first use."""
    __slots__ = ("text", "compiled")

    def __init__(self, text: str) -> None:
        self.text = text
        self.compiled = None

    def __getattr__(self, name):
        compiled = self.compiled
        if compiled is None:
            from .output import compile_output

            compiled = self.compiled = compile_output(self.text)
        return getattr(compiled, name)
