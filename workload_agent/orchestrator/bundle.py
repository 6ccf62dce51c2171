"""The rules bundle the orchestrator serves: read from --rules-dir, validated, watched.

A bundle is every *.yaml / *.yml file directly in the directory (the order the rules
loader uses: alphabetical). A changed directory becomes the new bundle only when it
validates; otherwise the error is reported and the old bundle stays.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from . import protocol

log = logging.getLogger("workload_agent.orchestrator")

RULE_SUFFIXES = (".yaml", ".yml")


@dataclass
class Bundle:
    files: dict                       # name -> content, sorted by name
    hash: str
    frame: dict = field(repr=False)   # the ready-to-send "rules" frame


def read_dir(path: str) -> dict:
    files = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.endswith(RULE_SUFFIXES) and os.path.isfile(full):
            with open(full, encoding="utf-8") as fh:
                files[name] = fh.read()
    return files


def dir_signature(path: str) -> tuple:
    """Cheap change detector: names, sizes and mtimes of the rule files."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        return (("error", str(exc)),)
    sig = []
    for entry in entries:
        if entry.name.endswith(RULE_SUFFIXES):
            try:
                st = entry.stat()
            except OSError:
                continue
            sig.append((entry.name, st.st_size, st.st_mtime_ns))
    return tuple(sig)


def validate_files(files: dict) -> list:
    """The validator hook: problems with a candidate bundle, [] when it is good.

    Uses the project's rules loader when it is installed (on the in-memory snapshot, so
    a file being rewritten while we look cannot make a bad bundle pass), else only checks
    that each file is YAML.
    """
    if not files:
        return ["the rules directory holds no *.yaml or *.yml file"]
    try:
        from workload_agent.rules.loader import load_rules
    except ImportError:
        return _yaml_problems(files)
    try:
        result = load_rules(list(files), contents=dict(files))
    except Exception as exc:  # a loader bug must not take the orchestrator down
        return [f"rules loader failed: {type(exc).__name__}: {exc}"]
    if result.ok:
        return []
    problems = getattr(result, "errors", None) or result.messages
    return [p.as_text() if hasattr(p, "as_text") else str(p) for p in problems] \
        or ["the rules loader refused the bundle"]


def _yaml_problems(files: dict) -> list:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    problems = []
    for name, content in files.items():
        try:
            list(yaml.load_all(content, Loader=loader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
            problems.append(f"{where}: {getattr(exc, 'problem', None) or exc}")
    return problems


def make_bundle(files: dict) -> Bundle:
    frame = protocol.rules(files)
    return Bundle(files=dict(sorted(files.items())), hash=frame["hash"], frame=frame)


def load_bundle(path: str) -> tuple:
    """-> (Bundle or None, problems)."""
    try:
        files = read_dir(path)
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: {exc}"]
    problems = validate_files(files)
    if problems:
        return None, problems
    return make_bundle(files), []
