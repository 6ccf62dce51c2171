"""Every macro and rule condition of the upstream Falco files parses and prints back."""
from __future__ import annotations

from workload_agent.rules.condition import MacroRef, iter_nodes, parse_condition, print_condition
from tests.rules.upstream_files import conditions


def test_every_upstream_condition_parses_and_round_trips():
    count = 0
    macros = set()
    for fname, kind, name, cond in conditions():
        tree = parse_condition(cond)
        assert parse_condition(print_condition(tree)) == tree, (fname, name)
        if kind == "macro":
            macros.add(name)
        count += 1
    assert count == 445  # 25+31+37 rules and 87+82+183 macros


def test_upstream_identifiers_are_macro_refs_of_known_macros():
    defined = {name for _f, kind, name, _c in conditions() if kind == "macro"}
    for fname, kind, name, cond in conditions():
        for n in iter_nodes(parse_condition(cond)):
            if isinstance(n, MacroRef):
                assert n.name in defined, (fname, name, n.name)
