"""Compiled-rules cache: what loading a set of rules files gives, kept on disk so
that the next start with the same files skips YAML, parsing, macro substitution
and compilation.

What is kept: each rule as the ruleset holds it (resolved condition tree, event
types, fields, output text...) and the load's warnings. Compiled closures cannot be
stored: a rule's predicate and output format are compiled again on first use, which
cannot fail since the same content compiled when the entry was written (the rule
groups that match events compile from the trees anyway, see group.py).

Key: the files' names and contents, the agent version, the Python version, and the
size and mtime of every module of this package (a changed compiler must not reuse
trees it would build differently). Only successful loads are stored.

Where: $WORKLOAD_AGENT_RULES_CACHE if set to a directory ("off" disables it), else
$XDG_CACHE_HOME/workload-agent, else ~/.cache/workload-agent. The directory is ours
alone (0700, owned by us; an entry in a directory anyone else can write is never
read, since unpickling runs code). Any failure to read or write the cache is
silent and costs only the time it would have saved.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import sys
from typing import List, Optional, Tuple

from .. import __version__

_FORMAT = 1


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


def load_rules_cached(paths, *, min_priority=None, enable=(), disable=()):
    """load_rules(paths, compile_each=False) through the cache: a CachedLoad on a hit,
    else the loader's own result (stored when it succeeded)."""
    from .ruleset import select_rules

    files = read_files(paths) if cache_dir() is not None else None
    key = cache_key(files) if files is not None else None
    if key is not None:
        hit = load(key)
        if hit is not None:
            rules, warnings = hit
            return CachedLoad(select_rules(rules, min_priority=min_priority, enable=enable,
                                           disable=disable), warnings)
    from .loader import load_rules

    result = load_rules(paths, min_priority=min_priority, enable=enable, disable=disable,
                        compile_each=False)
    if key is not None and result.ok:
        store(key, result.ruleset.rules, [m.as_text() for m in result.warnings])
    return result


def cache_dir() -> Optional[str]:
    env = os.environ.get("WORKLOAD_AGENT_RULES_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "no", "false") else env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "workload-agent")


def _code_fingerprint() -> bytes:
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256(here.encode("utf-8", "surrogateescape"))
    for root, dirs, files in os.walk(here):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                st = os.stat(path)
                h.update(f"{path[len(here):]}:{st.st_size}:{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.digest()


def cache_key(files: List[Tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    h.update(f"{_FORMAT}\0{__version__}\0{sys.version}\0".encode())
    h.update(_code_fingerprint())
    for name, data in files:
        h.update(os.path.abspath(name).encode("utf-8", "surrogateescape") + b"\0")
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def _private_dir(path: str, create: bool) -> bool:
    """True if ``path`` is a directory only we can write (made so when ``create``)."""
    try:
        if create:
            os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def read_files(paths) -> Optional[List[Tuple[str, bytes]]]:
    """(name, bytes) of every rules file in load order; None if one cannot be read
    (the full loader then reports it)."""
    from .paths import expand_paths

    out = []
    for name in expand_paths(paths):
        try:
            with open(name, "rb") as fh:
                out.append((name, fh.read()))
        except OSError:
            return None
    return out


def load(key: str):
    """(rules, warning texts) stored under ``key``, or None."""
    d = cache_dir()
    if d is None or not _private_dir(d, create=False):
        return None
    path = os.path.join(d, f"rules-{key}.pickle")
    try:
        st = os.stat(path)
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return None
        with open(path, "rb") as fh:
            doc = pickle.load(fh)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError,
            TypeError, ValueError, MemoryError):
        return None
    if not isinstance(doc, dict) or doc.get("key") != key:
        return None
    rules = doc["rules"]
    for r in rules:
        r.evaluate = LazyPredicate(r.condition)
        r.output = LazyOutput(r.output_text)
    return rules, doc["warnings"]


def store(key: str, rules: list, warnings: List[str]) -> None:
    d = cache_dir()
    if d is None or not _private_dir(d, create=True):
        return
    slim = []
    for r in rules:
        c = _copy(r)
        c.enabled = c.enabled_in_file  # selections are applied on each load
        c.evaluate = c.output = None
        c.condition_text_cache = None
        slim.append(c)
    path = os.path.join(d, f"rules-{key}.pickle")
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            pickle.dump({"key": key, "rules": slim, "warnings": list(warnings)}, fh,
                        protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # readers see a whole entry or none
    except (OSError, pickle.PicklingError, RecursionError, TypeError, AttributeError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return
    _prune(d, keep=path)


def _prune(d: str, keep: str, limit: int = 8) -> None:
    """Keep the most recent few entries: each changed rules file makes a new one."""
    try:
        entries = [os.path.join(d, n) for n in os.listdir(d) if n.startswith("rules-") and n.endswith(".pickle")]
        if len(entries) <= limit:
            return
        entries.sort(key=lambda p: os.stat(p).st_mtime_ns)
        for p in entries[:-limit]:
            if p != keep:
                os.unlink(p)
    except OSError:
        pass


def _copy(rule):
    import copy

    return copy.copy(rule)


class LazyPredicate:
    """A rule's compiled condition, compiled on first call."""
    __slots__ = ("node", "f")

    def __init__(self, node) -> None:
        self.node = node
        self.f = None

    def __call__(self, event) -> bool:
        f = self.f
        if f is None:
            from .compiler import compile_condition

            f = self.f = compile_condition(self.node)
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
