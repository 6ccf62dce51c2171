"""`workload-agent rules ...`: the rule author's validate / describe / fields commands.

Module-level imports stay light: the loader and compiler are imported only
when a rules subcommand actually runs.
"""
from __future__ import annotations

import json
import os
import sys


def register(subparsers):
    """Adds `rules` and its subcommands; returns its subparsers, so the command layer can add
    subcommands other packages own (`rules test` runs workloads: capture/ruletest.py)."""
    parser = subparsers.add_parser(
        "rules", help="validate and describe Falco rules files, list rule fields",
        description="Work with Falco-syntax rules files.",
    )
    sub = parser.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")

    val = sub.add_parser(
        "validate", help="check rules files as Falco's -V does",
        description="Load the files in order (definitions accumulate, like several -r options) "
                    "and report every error and warning with its file, line and column. "
                    "Exit status 0 only when every file is valid.",
    )
    val.add_argument("--json", action="store_true",
                     help='print Falco\'s validate JSON ({"falco_load_results": [...]})')
    val.add_argument("files", nargs="+", metavar="FILE", help="rules file or directory (*.yaml, *.yml)")
    val.set_defaults(func=cmd_validate)

    desc = sub.add_parser(
        "describe", help="show each rule as compiled: condition, event types, fields, macros, lists",
        description="Load the rules files and describe every rule (or the named ones).",
    )
    desc.add_argument("--json", action="store_true", help="print JSON")
    desc.add_argument("-r", "--rules", dest="rules_files", action="append", required=True,
                      metavar="FILE", help="rules file or directory; repeat for several, in load order")
    desc.add_argument("--min-priority", metavar="PRIORITY",
                      help="rules less severe than this are shown as disabled")
    desc.add_argument("--disable", action="append", default=[], metavar="PATTERN",
                      help="disable rules whose name matches (* wildcards); repeatable")
    desc.add_argument("--disable-tag", action="append", default=[], metavar="TAG",
                      help="disable rules with this tag; repeatable")
    desc.add_argument("--enable", action="append", default=[], metavar="PATTERN",
                      help="enable rules whose name matches, after the disables; repeatable")
    desc.add_argument("--enable-tag", action="append", default=[], metavar="TAG",
                      help="enable rules with this tag, after the disables; repeatable")
    desc.add_argument("names", nargs="*", metavar="RULE", help="rule names to describe (default: all)")
    desc.set_defaults(func=cmd_describe)

    try:
        from .fields_cmd import add_fields_parser
    except ImportError:
        add_fields_parser = None
    if add_fields_parser is not None:
        add_fields_parser(sub)

    parser.set_defaults(func=lambda args: _usage(parser))
    return sub


def _usage(parser) -> int:
    parser.print_help(sys.stderr)
    return 2


def cmd_validate(args) -> int:
    from .loader import load_rules

    result = load_rules(args.files)
    if args.json:
        doc = {"falco_load_results": [_file_json(f) for f in result.files]}
        print(json.dumps(doc, indent=2))
    else:
        print("\n".join(f.as_text() for f in result.files))
    return 0 if result.ok else 1


def _file_json(f) -> dict:
    doc = f.as_json()
    if f.notes:
        doc["notes"] = list(f.notes)  # an addition to Falco's shape: requirements we satisfy natively
    return doc


def cmd_describe(args) -> int:
    from .loader import load_rules

    try:
        result = load_rules(
            args.rules_files, min_priority=args.min_priority,
            disable=args.disable + [{"tag": t} for t in args.disable_tag],
            enable=args.enable + [{"tag": t} for t in args.enable_tag],
        )
    except ValueError as exc:  # a bad --min-priority or selector
        print(f"workload-agent rules describe: {exc}", file=sys.stderr)
        return 2
    if not result.ok:
        for f in result.files:
            if not f.successful:
                print(f.as_text(), file=sys.stderr)
        return 1
    rules = result.ruleset.rules
    if args.names:
        missing = [n for n in args.names if n not in result.ruleset.by_name]
        if missing:
            for n in missing:
                hint = f" (to load it as a rules file, use -r {n})" if os.path.exists(n) else ""
                print(f"workload-agent rules describe: no rule named '{n}'{hint}", file=sys.stderr)
            return 1
        rules = [result.ruleset.by_name[n] for n in args.names]
    if args.json:
        union = result.ruleset.event_types()
        print(json.dumps({
            "rules": [describe_json(r) for r in rules],
            "enabled_event_types": None if union is None else sorted(union),
            "warnings": [w.as_json() for w in result.warnings],
        }, indent=2))
    else:
        for w in result.warnings:
            print(w.as_text(), file=sys.stderr)
        print("\n\n".join(describe_text(r) for r in rules))
        union = result.ruleset.event_types()
        print()
        print("Event types of the enabled rules: "
              + ("all (some rule has no evt.type restriction)" if union is None else ", ".join(sorted(union))))
    return 0


def _types_text(types) -> str:
    return "all (no evt.type restriction)" if types is None else ", ".join(sorted(types))


def describe_text(r) -> str:
    lines = [
        f"Rule: {r.name}",
        f"  defined at: {r.file}:{r.line}",
        f"  priority: {r.priority_name}",
        f"  enabled: {'yes' if r.enabled else 'no'}"
        + ("" if r.enabled == r.enabled_in_file else f" (file says {'yes' if r.enabled_in_file else 'no'})"),
        f"  source: {r.source}",
        f"  tags: {', '.join(r.tags) if r.tags else '-'}",
        f"  event types: {_types_text(r.event_types)}",
        f"  condition: {r.condition_text}",
        f"  output: {r.output_text}",
        f"  fields: {', '.join(r.fields) if r.fields else '-'}",
        f"  macros: {', '.join(r.macros) if r.macros else '-'}",
        f"  lists: {', '.join(r.lists) if r.lists else '-'}",
    ]
    if r.exception_fields:
        lines.append(f"  exception fields: {', '.join(r.exception_fields)}")
    approx = _approximate(r.fields)
    if approx:
        lines.append("  approximate fields: " + "; ".join(f"{n} ({why})" for n, why in approx))
    return "\n".join(lines)


def _approximate(fields) -> list:
    """The rule's fields whose value is not what was true at the event, and why."""
    from .fields import REGISTRY

    out = []
    for name in fields or ():
        try:
            spec, _arg = REGISTRY.lookup(name)
        except Exception:   # an argument form the registry binds differently: not approximate
            continue
        if spec.approx:
            out.append((name, spec.approx))
    return out


def describe_json(r) -> dict:
    return {
        "name": r.name,
        "description": r.desc,
        "file": r.file,
        "line": r.line,
        "priority": r.priority_name,
        "enabled": r.enabled,
        "enabled_in_file": r.enabled_in_file,
        "source": r.source,
        "tags": list(r.tags),
        "event_types": None if r.event_types is None else sorted(r.event_types),
        "condition": r.condition_text,
        "output": r.output_text,
        "fields": list(r.fields),
        "macros": list(r.macros),
        "lists": list(r.lists),
        "exception_fields": list(r.exception_fields),
        "capture": r.capture,
        "capture_duration": r.capture_duration,
    }

