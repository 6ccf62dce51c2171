"""`workload-agent rules fields`: print the field registry (like `falco --list`)."""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, TextIO


def add_fields_parser(rules_subparsers) -> Any:
    """Register the `fields` subcommand on the `rules` subparsers."""
    p = rules_subparsers.add_parser(
        "fields", help="list the fields conditions and outputs can use",
        description="List every field the rules engine knows: name, type, argument, description.")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(func=run_fields)
    return p


def _rows() -> List[Dict[str, Any]]:
    from .fields import REGISTRY

    rows = []
    for spec in REGISTRY:
        rows.append({
            "name": spec.name,
            "type": spec.type,
            "arg": spec.arg_form,
            "arg_required": spec.arg_required,
            "description": spec.desc,
            "event_types": None if spec.event_types is None else sorted(spec.event_types),
            "filter_only": spec.filter_only,
            "live": spec.live,
            "approximate": spec.approx,
        })
    return rows


def _arg_text(row: Dict[str, Any]) -> str:
    if row["arg"] == "none":
        return ""
    return row["arg"] + (" (required)" if row["arg_required"] else "")


def run_fields(args, out: TextIO = None) -> int:
    out = sys.stdout if out is None else out
    rows = _rows()
    if getattr(args, "json", False):
        json.dump(rows, out, indent=2)
        out.write("\n")
    elif getattr(args, "markdown", False):
        out.write("| Field | Type | Argument | Description |\n|---|---|---|---|\n")
        for r in rows:
            desc = r["description"].replace("|", "\\|")
            out.write(f"| `{r['name']}` | {r['type']} | {_arg_text(r)} | {desc} |\n")
    else:
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            arg = _arg_text(r)
            extra = f" [{arg}]" if arg else ""
            if r["approximate"]:
                extra += f" (approximate: {r['approximate']})"
            out.write(f"{r['name']:<{width}}  {r['type']:<8} {r['description']}{extra}\n")
    return 0
