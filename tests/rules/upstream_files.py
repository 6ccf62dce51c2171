"""Access to the upstream Falco rules files for tests (never copied into the repo)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import yaml

NAMES = ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")


def rules_dir() -> Path:
    repo = Path(__file__).resolve().parents[2]
    for cand in (repo.parent / "shared" / "falco-rules", repo.parent.parent / "shared" / "falco-rules",
                 Path("/work/shared/falco-rules")):
        if (cand / NAMES[0]).is_file():
            return cand
    raise FileNotFoundError("upstream falco-rules directory not found")


def upstream_file(name: str = NAMES[0]) -> Path:
    """One upstream rules file; the calling test skips when they are not here (fails under
    CI=true, which has them)."""
    try:
        return rules_dir() / name
    except FileNotFoundError as exc:
        from tests.conftest import require

        require(False, str(exc))


def load(name: str) -> List[dict]:
    with open(rules_dir() / name, encoding="utf-8") as fh:
        docs = [d for d in yaml.safe_load_all(fh) if d]
    return [item for doc in docs for item in doc]


def lists_of(items: List[dict]) -> Dict[str, List[str]]:
    lists: Dict[str, List[str]] = {}
    for it in items:
        if "list" in it:
            vals: List[str] = []
            for v in it.get("items") or []:
                v = str(v)
                vals.extend(lists.get(v, [v]))  # an item naming a list expands one level
            lists[it["list"]] = vals
    return lists


def substitute_lists(cond: str, lists: Dict[str, List[str]]) -> str:
    """Textual list substitution, as Falco does before parsing: a list name bounded
    by start/end, blanks, parentheses, commas or '=' becomes its items; an empty
    list also takes one neighbouring comma with it."""
    blanks = " \t\n\r"
    delims = blanks + "(),="
    for name, vals in lists.items():
        sub = ", ".join(f'"{v}"' if " " in v and v[:1] not in "\"'" else v for v in vals)
        start = cond.find(name)
        while start != -1:
            end = start + len(name)
            if ((start == 0 or cond[start - 1] in delims)
                    and (end >= len(cond) or cond[end] in delims)):
                while start > 0 and cond[start - 1] in blanks:
                    start -= 1
                while end < len(cond) and cond[end] in blanks:
                    end += 1
                if not sub:
                    if start > 0 and cond[start - 1] == ",":
                        start -= 1
                    elif end < len(cond) and cond[end] == ",":
                        end += 1
                cond = cond[:start] + " " + sub + " " + cond[end:]
                start = cond.find(name, start + len(sub) + 2)
            else:
                start = cond.find(name, end)
    return cond


def conditions() -> Iterator[Tuple[str, str, str, str]]:
    """(file, kind, name, condition with lists substituted) for every macro and rule."""
    for fname in NAMES:
        items = load(fname)
        lists = lists_of(items)
        for it in items:
            for kind in ("macro", "rule"):
                if kind in it and "condition" in it:
                    yield fname, kind, it[kind], substitute_lists(str(it["condition"]), lists)


def outputs() -> Iterator[Tuple[str, str, str]]:
    for fname in NAMES:
        for it in load(fname):
            if "rule" in it and "output" in it:
                yield fname, it["rule"], str(it["output"])


def resolved_rules(fname: str):
    """(rule name, rule item, condition tree with macros substituted) for a file."""
    from workload_agent.rules.condition import parse_condition, substitute_macros

    items = load(fname)
    lists = lists_of(items)
    macros = {}
    for it in items:  # a macro sees the macros defined before it
        if "macro" in it:
            tree = parse_condition(substitute_lists(str(it["condition"]), lists))
            macros[it["macro"]] = substitute_macros(tree, macros)
    out = []
    for it in items:  # rules see all macros
        if "rule" in it and "condition" in it:
            tree = parse_condition(substitute_lists(str(it["condition"]), lists))
            out.append((it["rule"], it, substitute_macros(tree, macros)))
    return out
