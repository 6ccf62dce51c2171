from __future__ import annotations

import argparse
import io
import json

from workload_agent.rules.fields import REGISTRY
from workload_agent.rules.fields_cmd import add_fields_parser


def _run(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_fields_parser(sub)
    args = parser.parse_args(argv)
    out = io.StringIO()
    assert args.func(args, out) == 0
    return out.getvalue()


def test_json_lists_every_registry_field():
    rows = json.loads(_run(["fields", "--json"]))
    assert [r["name"] for r in rows] == sorted(s.name for s in REGISTRY)
    by_name = {r["name"]: r for r in rows}
    assert by_name["proc.aname"]["arg"] == "index"
    assert by_name["evt.arg"]["arg_required"] is True
    assert by_name["fd.net"]["filter_only"] is True
    assert by_name["proc.pid"]["type"] == "INT64"


def test_markdown_and_text():
    md = _run(["fields", "--markdown"])
    assert md.startswith("| Field | Type |")
    assert md.count("\n") == len(REGISTRY) + 2
    text = _run(["fields"])
    assert any(line.startswith("proc.name ") for line in text.splitlines())
    assert len(text.splitlines()) == len(REGISTRY)
